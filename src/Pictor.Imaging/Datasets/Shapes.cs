using System.Text.Json;
using Pictor.Engine;

namespace Pictor.Imaging.Datasets;

public enum ShapeKind { Circle, Square, Triangle }
public enum ShapeColour { Red, Green, Blue, Yellow, Purple, Orange, Cyan, White }
public enum ShapeSize { Small, Large }
public enum SceneKind { Single, Pair, Count }

/// <summary>
/// Relative weights of the three scene kinds in a generated set ("S:P:C" on the command line; the default 1:1:1).
/// Only pairs hold two different objects, so only they teach which shape goes with which colour: a mix such as 1:3:2
/// gives that binding more of the data at the cost of single-object scenes. The weights are those of the draw: a scene
/// that cannot be placed (or, in the training split, holds a held-out colour-shape pair) is drawn again from the kind
/// up, and pairs are rejected most, so 1:1:1 yields about 36 % single, 27 % pair and 38 % count scenes, and 1:4:2
/// about 17 / 47 / 36 % (the shares a 1:3:2 draw would promise).
/// </summary>
public readonly record struct ShapesMix(int Single, int Pair, int Count)
{
    public static readonly ShapesMix Uniform = new(1, 1, 1);
    public int Total => Single + Pair + Count;

    /// <summary>Parses "S:P:C" (non-negative integers, at least one positive, each at most 1000).</summary>
    public static ShapesMix Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 3 || !parts.All(p => int.TryParse(p, out int w) && w is >= 0 and <= 1000))
            throw new ArgumentException("--mix must be three weights SINGLE:PAIR:COUNT, whole numbers 0..1000 such as "
                + $"1:3:2, not '{text}'");
        var m = new ShapesMix(int.Parse(parts[0]), int.Parse(parts[1]), int.Parse(parts[2]));
        if (m.Total == 0) throw new ArgumentException($"--mix '{text}' gives every scene kind weight 0; "
            + "make at least one positive, e.g. 1:1:1");
        return m;
    }

    /// <summary>Draws a kind with these weights: one NextInt(Total), so the uniform mix draws exactly what the
    /// generator drew before mixes existed (the same scenes for the same seed).</summary>
    public SceneKind Draw(Rng rng)
    {
        int r = rng.NextInt(Total);
        return r < Single ? SceneKind.Single : r < Single + Pair ? SceneKind.Pair : SceneKind.Count;
    }

    public override string ToString() => $"{Single}:{Pair}:{Count}";
}

/// <summary>One drawn object: its colour, shape, size class, centre and bounding box [x0, y0, x1, y1) in
/// pixels.</summary>
public sealed record ShapeObject(ShapeColour Colour, ShapeKind Shape, ShapeSize Size, double Cx, double Cy,
    double Diameter)
{
    public double[] Bbox => [Cx - Diameter / 2, Cy - Diameter / 2, Cx + Diameter / 2, Cy + Diameter / 2];
}

/// <summary>A generated scene: the caption, its kind and the exact ground truth.</summary>
public sealed record ShapeScene(string Caption, SceneKind Kind, ShapeObject[] Objects, string? Position = null,
    string? Relation = null);

/// <summary>
/// Procedural scenes with exact ground truth (the data issue's spec): black background, anti-aliased by 4x4
/// supersampling, 8 colours, circles / squares / upright triangles, small (8 px across at 32x32) and large (14 px),
/// three scene kinds and caption grammars:
///   single: "a {small|large} {colour} {shape}" + optionally " on the left|on the right|at the top|at the bottom"
///   pair:   "a {colour} {shape} {left of|right of|above|below} a {colour} {shape}" (centres >= 8 px apart on that
///           axis, at most half as far apart on the other, no overlap)
///   count:  "{two|three} {colour} {shape}s" (same colour and shape, small, no overlap)
/// Held out of every training split: purple triangles, orange circles, cyan squares (<see cref="IsHeldOut"/>).
/// Sizes scale with the image: at 64x64 everything doubles.
/// </summary>
public static class Shapes
{
    public static readonly IReadOnlyDictionary<ShapeColour, (byte R, byte G, byte B)> Palette =
        new Dictionary<ShapeColour, (byte, byte, byte)>
    {
        [ShapeColour.Red] = (220, 40, 40), [ShapeColour.Green] = (40, 180, 60), [ShapeColour.Blue] = (50, 90, 230),
        [ShapeColour.Yellow] = (230, 210, 40), [ShapeColour.Purple] = (150, 60, 200),
        [ShapeColour.Orange] = (240, 140, 30),
        [ShapeColour.Cyan] = (40, 200, 210), [ShapeColour.White] = (235, 235, 235),
    };

    public static bool IsHeldOut(ShapeColour c, ShapeKind s) =>
        (c, s) is (ShapeColour.Purple, ShapeKind.Triangle) or (ShapeColour.Orange, ShapeKind.Circle)
            or (ShapeColour.Cyan, ShapeKind.Square);

    public static string Name(ShapeColour c) => c.ToString().ToLowerInvariant();
    public static string Name(ShapeKind s) => s.ToString().ToLowerInvariant();

    private const int Supersample = 4;

    /// <summary>Generates one scene. <paramref name="heldOut"/>: null = any pair allowed; false = never a held-out
    /// colour-shape pair (training); true = at least one object is a held-out pair. <paramref name="mix"/>: the
    /// scene kinds' weights (default 1:1:1).</summary>
    public static ShapeScene Generate(Rng rng, int size, bool? heldOut, ShapesMix? mix = null)
    {
        var m = mix ?? ShapesMix.Uniform;
        if (m.Single < 0 || m.Pair < 0 || m.Count < 0 || m.Total == 0)
            throw new ArgumentException($"scene mix {m} needs non-negative weights, at least one positive");
        if (size is not (32 or 64)) throw new ArgumentException($"shapes images are 32 or 64 pixels, not {size}");
        for (int attempt = 0; ; attempt++)
        {
            var scene = m.Draw(rng) switch
            {
                SceneKind.Single => Single(rng, size),
                SceneKind.Pair => Pair(rng, size),
                _ => Count(rng, size),
            };
            if (scene == null) continue;   // placement failed; draw again
            bool any = scene.Objects.Any(o => IsHeldOut(o.Colour, o.Shape));
            if (heldOut == null || heldOut == any) return scene;
            if (attempt > 10_000)
                throw new InvalidOperationException("could not draw a scene with the requested held-out property");
        }
    }

    private static double Diameter(ShapeSize s, int size) => (s == ShapeSize.Small ? 8 : 14) * size / 32.0;

    private static (ShapeColour, ShapeKind) Pick(Rng r) => ((ShapeColour)r.NextInt(8), (ShapeKind)r.NextInt(3));

    private static ShapeScene? Single(Rng r, int size)
    {
        var (c, s) = Pick(r);
        var sz = (ShapeSize)r.NextInt(2);
        double d = Diameter(sz, size), lo = d / 2 + 1, hi = size - d / 2 - 1;
        string? pos = r.NextInt(2) == 0 ? null
            : new[] { "on the left", "on the right", "at the top", "at the bottom" }[r.NextInt(4)];
        double third = size / 3.0;
        double cx = Uniform(r, lo, hi), cy = Uniform(r, lo, hi);
        switch (pos)
        {
            case "on the left": cx = Uniform(r, lo, Math.Max(lo, third)); break;
            case "on the right": cx = Uniform(r, Math.Min(hi, size - third), hi); break;
            case "at the top": cy = Uniform(r, lo, Math.Max(lo, third)); break;
            case "at the bottom": cy = Uniform(r, Math.Min(hi, size - third), hi); break;
        }
        var caption = $"a {sz.ToString().ToLowerInvariant()} {Name(c)} {Name(s)}" + (pos == null ? "" : " " + pos);
        return new ShapeScene(caption, SceneKind.Single, [new ShapeObject(c, s, sz, cx, cy, d)], Position: pos);
    }

    private static ShapeScene? Pair(Rng r, int size)
    {
        var (c1, s1) = Pick(r); var (c2, s2) = Pick(r);
        if (c1 == c2 && s1 == s2) return null;   // two identical objects make the relation unreadable
        var z1 = (ShapeSize)r.NextInt(2); var z2 = (ShapeSize)r.NextInt(2);
        double d1 = Diameter(z1, size), d2 = Diameter(z2, size), minSep = 8.0 * size / 32;
        string rel = new[] { "left of", "right of", "above", "below" }[r.NextInt(4)];
        for (int t = 0; t < 200; t++)
        {
            var a = new ShapeObject(c1, s1, z1, Uniform(r, d1 / 2 + 1, size - d1 / 2 - 1),
                Uniform(r, d1 / 2 + 1, size - d1 / 2 - 1), d1);
            var b = new ShapeObject(c2, s2, z2, Uniform(r, d2 / 2 + 1, size - d2 / 2 - 1),
                Uniform(r, d2 / 2 + 1, size - d2 / 2 - 1), d2);
            double dx = b.Cx - a.Cx, dy = b.Cy - a.Cy;   // a is the subject: "a left of b" means a.Cx < b.Cx
            double main = rel switch { "left of" => dx, "right of" => -dx, "above" => dy, _ => -dy };
            double other = rel is "left of" or "right of" ? Math.Abs(dy) : Math.Abs(dx);
            if (main < minSep || other > main / 2 || Overlap(a, b)) continue;
            return new ShapeScene($"a {Name(c1)} {Name(s1)} {rel} a {Name(c2)} {Name(s2)}", SceneKind.Pair, [a, b],
                Relation: rel);
        }
        return null;
    }

    private static ShapeScene? Count(Rng r, int size)
    {
        var (c, s) = Pick(r);
        int n = 2 + r.NextInt(2);
        double d = Diameter(ShapeSize.Small, size);
        var objs = new List<ShapeObject>();
        for (int t = 0; t < 500 && objs.Count < n; t++)
        {
            var o = new ShapeObject(c, s, ShapeSize.Small, Uniform(r, d / 2 + 1, size - d / 2 - 1),
                Uniform(r, d / 2 + 1, size - d / 2 - 1), d);
            if (objs.All(p => !Overlap(p, o))) objs.Add(o);
        }
        if (objs.Count < n) return null;
        return new ShapeScene($"{(n == 2 ? "two" : "three")} {Name(c)} {Name(s)}s", SceneKind.Count, objs.ToArray());
    }

    private static double Uniform(Rng r, double lo, double hi) => lo + (hi - lo) * r.NextDouble();

    /// <summary>Bounding boxes closer than one pixel count as overlapping.</summary>
    private static bool Overlap(ShapeObject a, ShapeObject b)
    {
        var p = a.Bbox; var q = b.Bbox;
        return p[0] < q[2] + 1 && q[0] < p[2] + 1 && p[1] < q[3] + 1 && q[1] < p[3] + 1;
    }

    /// <summary>Whether the point (x, y) (pixel units, y down) lies inside the object.</summary>
    public static bool Contains(ShapeObject o, double x, double y)
    {
        double h = o.Diameter / 2, dx = x - o.Cx, dy = y - o.Cy;
        return o.Shape switch
        {
            ShapeKind.Circle => dx * dx + dy * dy <= h * h,
            ShapeKind.Square => Math.Abs(dx) <= h && Math.Abs(dy) <= h,
            // upright triangle: apex (cx, cy - h), base from (cx - h, cy + h) to (cx + h, cy + h)
            _ => dy <= h && dy >= -h && Math.Abs(dx) <= (dy + h) / 2,
        };
    }

    /// <summary>Renders a scene on black with 4x4 supersampling per pixel.</summary>
    public static Image Render(ShapeScene scene, int size)
    {
        var img = Image.Solid(size, size, 0, 0, 0);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double r = 0, g = 0, b = 0;
                for (int sy = 0; sy < Supersample; sy++)
                    for (int sx = 0; sx < Supersample; sx++)
                    {
                        double px = x + (sx + 0.5) / Supersample, py = y + (sy + 0.5) / Supersample;
                        foreach (var o in scene.Objects)
                            if (Contains(o, px, py)) { var c = Palette[o.Colour]; r += c.R; g += c.G; b += c.B; break; }
                    }
                const double n = Supersample * Supersample;
                int p = 4 * (y * size + x);
                img.Rgba[p] = (byte)Math.Round(r / n); img.Rgba[p + 1] = (byte)Math.Round(g / n);
                img.Rgba[p + 2] = (byte)Math.Round(b / n);
            }
        return img;
    }

    /// <summary>The metadata.jsonl line for a scene: file_name, text and the ground truth.</summary>
    public static string MetadataLine(string fileName, ShapeScene s) =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["file_name"] = fileName,
        ["text"] = s.Caption,
        ["scene"] = s.Kind.ToString().ToLowerInvariant(),
        ["position"] = s.Position,
        ["relation"] = s.Relation,
        ["objects"] = s.Objects.Select(o => new Dictionary<string, object>
        {
            ["colour"] = Name(o.Colour), ["shape"] = Name(o.Shape), ["size"] = o.Size.ToString().ToLowerInvariant(),
            ["centre"] = new[] { Math.Round(o.Cx, 3), Math.Round(o.Cy, 3) },
            ["bbox"] = o.Bbox.Select(v => Math.Round(v, 3)).ToArray(),
        }).ToArray(),
    });

    /// <summary>
    /// Writes DIR/train and DIR/val image folders (metadata.jsonl + PNGs). Val gets a tenth of <paramref name="count"/>
    /// (at least 1), half of it forced to contain a held-out pair; train never contains one. Both splits draw scene
    /// kinds with <paramref name="mix"/> (default 1:1:1), so the val loss measures the distribution trained on.
    /// </summary>
    public static (int Train, int Val) WriteDataset(string dir, int count, ulong seed, int size = 32,
        Action<int, int>? progress = null, ShapesMix? mix = null)
    {
        if (count < 2)
            throw new ArgumentException($"--count must be at least 2 (one train and one val image), got {count}");
        int val = Math.Max(1, count / 10), train = count - val;
        var rng = new Rng(seed);
        WriteSplit(Path.Combine(dir, "train"), train, i => Generate(rng, size, heldOut: false, mix), size, progress);
        WriteSplit(Path.Combine(dir, "val"), val, i => Generate(rng, size, heldOut: i % 2 == 0 ? true : null, mix),
            size, progress);
        return (train, val);
    }

    private static void WriteSplit(string dir, int n, Func<int, ShapeScene> make, int size, Action<int, int>? progress)
    {
        Directory.CreateDirectory(dir);
        var lines = new List<string>(n);
        for (int i = 0; i < n; i++)
        {
            var scene = make(i);
            string file = $"{i:D6}.png";
            Render(scene, size).Save(Path.Combine(dir, file));
            lines.Add(MetadataLine(file, scene));
            progress?.Invoke(i + 1, n);
        }
        Engine.IO.AtomicFile.WriteAllText(Path.Combine(dir, "metadata.jsonl"), string.Join("\n", lines) + "\n");
    }
}
