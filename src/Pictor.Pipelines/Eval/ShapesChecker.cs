using Pictor.Imaging;
using Pictor.Imaging.Datasets;

namespace Pictor.Pipelines.Eval;

/// <summary>One object the checker found: palette colour, shape, size class, centre and bounding box
/// (pixels).</summary>
public sealed record FoundObject(ShapeColour Colour, ShapeKind Shape, ShapeSize Size, double Cx, double Cy, int Pixels,
    double Fill, double Reach, int X0, int Y0, int X1, int Y1);

/// <summary>
/// Reads a shapes-style image back into objects with fixed rules, no learned parts:
/// 1. Each pixel p is explained as a palette colour c at coverage a = (p . c) / (c . c) (anti-aliased edges are the
///    colour blended with the black background). The best colour is the one with the smallest residual |p - a c|;
///    the pixel belongs to it when a >= 0.5 and the residual is below 60 (else it is background or unreadable).
/// 2. 4-connected components per colour; components under 8 pixels (at 32x32; scaled with area) are noise.
/// 3. Shape from how far the component reaches and how it fills its bounding box: reach = (largest distance of a
///    pixel centre from the centroid + 0.5) / sqrt(pixels) is about 0.56 for a circle, 0.71 for a square and 0.94 for
///    a triangle (its apex is a far corner); bounding-box fill is 1 for a square, pi/4 for a circle, 1/2 for a
///    triangle. Fill >= 0.87 is a square; else reach >= 0.74, or fill &lt; 0.7 with reach >= 0.66, a triangle; else a
///    circle (thresholds set on the generator's own renders at 32 and 64 px, where 8-pixel shapes are coarse).
/// 4. Size: large when the bounding box's longer side is at least 11/32 of the image (small objects are 8/32, large
/// 14/32).
/// </summary>
public static class ShapesChecker
{
    public static List<FoundObject> Analyse(Image img)
    {
        int w = img.Width, h = img.Height;
        var label = new int[w * h];   // palette index + 1, or 0
        var palette = Shapes.Palette.OrderBy(kv => kv.Key).ToArray();
        for (int i = 0; i < w * h; i++)
        {
            double r = img.Rgba[4 * i], g = img.Rgba[4 * i + 1], b = img.Rgba[4 * i + 2];
            double best = double.MaxValue; int bestK = -1; double bestA = 0;
            for (int k = 0; k < palette.Length; k++)
            {
                var (cr, cg, cb) = palette[k].Value;
                double a = Math.Clamp((r * cr + g * cg + b * cb) / (cr * cr + cg * cg + cb * cb), 0, 1.2);
                double er = r - a * cr, eg = g - a * cg, eb = b - a * cb, e = Math.Sqrt(er * er + eg * eg + eb * eb);
                if (e < best) { best = e; bestK = k; bestA = a; }
            }
            if (bestA >= 0.5 && best < 60) label[i] = bestK + 1;
        }
        int minPixels = Math.Max(4, 8 * w * h / 1024);
        var seen = new bool[w * h];
        var found = new List<FoundObject>();
        var stack = new Stack<int>();
        for (int s = 0; s < w * h; s++)
        {
            if (label[s] == 0 || seen[s]) continue;
            int lab = label[s], n = 0, x0 = w, y0 = h, x1 = -1, y1 = -1; double sx = 0, sy = 0;
            var members = new HashSet<int>();
            stack.Push(s); seen[s] = true;
            while (stack.Count > 0)
            {
                int p = stack.Pop(), x = p % w, y = p / w;
                n++; sx += x + 0.5; sy += y + 0.5; members.Add(p);
                x0 = Math.Min(x0, x); x1 = Math.Max(x1, x); y0 = Math.Min(y0, y); y1 = Math.Max(y1, y);
                foreach (int q in new[] { x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1,
                    y < h - 1 ? p + w : -1 })
                    if (q >= 0 && !seen[q] && label[q] == lab) { seen[q] = true; stack.Push(q); }
            }
            if (n < minPixels) continue;
            int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
            double fill = (double)n / (bw * bh);
            // Farthest pixel centre from the centroid, relative to sqrt(area): circle 1/sqrt(pi) = 0.56, square
            // 1/sqrt(2) = 0.71, upright isosceles triangle (apex 2/3 of the height above the centroid) 0.94.
            double cx = sx / n, cy = sy / n, far = 0;
            foreach (int p in members) { double dx = p % w + 0.5 - cx, dy = p / w + 0.5 - cy; far = Math.Max(far,
                dx * dx + dy * dy); }
            double reach = (Math.Sqrt(far) + 0.5) / Math.Sqrt(n);
            var shape = fill >= 0.87 ? ShapeKind.Square : reach >= 0.74 || (fill < 0.7 && reach >= 0.66)
                ? ShapeKind.Triangle : ShapeKind.Circle;
            var size = Math.Max(bw, bh) >= 11.0 * w / 32 ? ShapeSize.Large : ShapeSize.Small;
            found.Add(new FoundObject(palette[lab - 1].Key, shape, size, cx, cy, n, fill, reach, x0, y0, x1, y1));
        }
        return found;
    }

    /// <summary>Whether a centre satisfies a single-object position phrase: within the outer 45% of that
    /// axis.</summary>
    public static bool PositionHolds(string position, double cx, double cy, int size) => position switch
    {
        "on the left" => cx < 0.45 * size,
        "on the right" => cx > 0.55 * size,
        "at the top" => cy < 0.45 * size,
        "at the bottom" => cy > 0.55 * size,
        _ => throw new ArgumentException($"unknown position '{position}'"),
    };

    /// <summary>Whether "a REL b" holds between centres: a is at least 2 px further along the relation's
    /// axis.</summary>
    public static bool RelationHolds(string relation, FoundObject a, FoundObject b) => relation switch
    {
        "left of" => b.Cx - a.Cx >= 2,
        "right of" => a.Cx - b.Cx >= 2,
        "above" => b.Cy - a.Cy >= 2,
        "below" => a.Cy - b.Cy >= 2,
        _ => throw new ArgumentException($"unknown relation '{relation}'"),
    };
}
