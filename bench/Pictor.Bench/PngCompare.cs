using System.Diagnostics;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Imaging.Decoding;
using Pictor.Imaging.Png;
using SkiaSharp;

namespace Pictor.Bench;

/// <summary>
/// Our PNG decoder (<see cref="PngDecoder"/>) against Skia's PNG codec (<see cref="SkiaDecoder"/> on PNG), the two
/// candidates for PNG in <see cref="ImageDecoder"/>: (1) decode speed, median of N runs each, timed in alternation, in
/// megapixels per second of RGBA8 output, on the images Pictor meets: a 32x32 training image as 'pictor data shapes'
/// writes it, photo-like 256x256 and 1024x1024 pictures written by our encoder and by Skia's, and the whole PngSuite;
/// (2) PngSuite conformance: each valid file's 8-bit pixels against tests/fixtures/pngsuite/expected.safetensors (the
/// 8-bit reference, or the 16-bit samples' high bytes), and whether each of the 14 corrupt x* files is refused.
/// Napkin limit: an inflate-bound decode of an RGB image moves about 3 bytes per pixel in and 4 out; at a few GB/s
/// of memory traffic per core that is some hundreds of megapixels per second, so both are far from memory-bound.
/// </summary>
internal static class PngCompare
{
    public static void Run(string suiteDir, int repeats)
    {
        Console.WriteLine($"# PNG decode, ours vs Skia {typeof(SKCodec).Assembly.GetName().Version} (libpng), " +
            $"median of {repeats} timed in alternation, one thread");
        Console.WriteLine("| image | bytes | ours ms | ours MP/s | Skia ms | Skia MP/s | Skia / ours (speed) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        var shapes = Shapes.Render(Shapes.Generate(new Rng(1), 32, heldOut: false), 32);
        Row("32x32 shapes scene (our encoder)", EncodeOurs(shapes), repeats * 50);
        foreach (int n in new[] { 256, 1024 })
        {
            var photo = Photo(n);
            Row($"{n}x{n} photo-like RGB (our encoder)", EncodeOurs(photo), repeats);
            Row($"{n}x{n} photo-like RGB (Skia's encoder)", EncodeSkia(photo), repeats);
        }
        var suite = Directory.GetFiles(suiteDir, "*.png").Where(f => !Path.GetFileName(f).StartsWith('x')).Order()
            .Select(File.ReadAllBytes).ToList();
        SuiteRow(suite, repeats);
        Console.WriteLine();
        Conformance(suiteDir);
        var differ = suite.Where(f => !PngDecoder.Decode(f).Rgba8.AsSpan()
            .SequenceEqual(SkiaDecoder.Decode(f, "s", ImageFormat.Png, long.MaxValue).Rgba)).ToList();
        var sixteen = differ.Count(f => f[24] == 16);
        Console.WriteLine($"Skia's RGBA8 equals ours byte for byte on {suite.Count - differ.Count} of {suite.Count} " +
            $"valid files; of the {differ.Count} that differ, {sixteen} are 16-bit (8-bit reduction: ours keeps the " +
            "high byte)");
    }

    private static byte[] EncodeOurs(Image img)
    {
        var rgb = new byte[img.Width * img.Height * 3];
        for (int i = 0; i < img.Width * img.Height; i++)
            for (int c = 0; c < 3; c++) rgb[3 * i + c] = img.Rgba[4 * i + c];
        return PngEncoder.Encode(rgb, img.Width, img.Height, hasAlpha: false);
    }

    private static byte[] EncodeSkia(Image img)
    {
        var info = new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var sk = SKImage.FromPixelCopy(info, img.Rgba);
        using var data = sk.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Smooth gradients, a textured band and sharp-edged discs: what a photo's PNG filters and deflate
    /// see.</summary>
    private static Image Photo(int n)
    {
        var img = new Image(n, n);
        var rng = new Rng(7);
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                int p = 4 * (y * n + x);
                double u = (double)x / n, v = (double)y / n;
                bool disc = Math.Pow(u - 0.3, 2) + Math.Pow(v - 0.6, 2) < 0.04
                         || Math.Pow(u - 0.7, 2) + Math.Pow(v - 0.3, 2) < 0.02;
                int grain = v is > 0.8 and < 0.9 ? rng.NextInt(40) - 20 : rng.NextInt(5) - 2;
                img.Rgba[p] = Clamp(disc ? 220 : 255 * u + grain);
                img.Rgba[p + 1] = Clamp(disc ? 60 : 200 * v + grain);
                img.Rgba[p + 2] = Clamp(disc ? 40 : 128 + 100 * Math.Sin(6 * u + 3 * v) + grain);
                img.Rgba[p + 3] = 255;
            }
        return img;
    }

    private static byte Clamp(double v) => (byte)Math.Clamp(Math.Round(v), 0, 255);

    private static void Row(string what, byte[] png, int repeats)
    {
        var check = SkiaDecoder.Decode(png, what, ImageFormat.Png, long.MaxValue);
        if (!check.Rgba.AsSpan().SequenceEqual(PngDecoder.Decode(png).Rgba8))
            Console.WriteLine($"  ({what}: the two differ)");
        double mp = check.Width * (double)check.Height / 1e6;
        var (ours, skia) = Medians(repeats, () => PngDecoder.Decode(png),
            () => SkiaDecoder.Decode(png, what, ImageFormat.Png, long.MaxValue));
        Console.WriteLine($"| {what} | {png.Length:N0} | {ours * 1e3:F3} | {mp / ours:F1} | {skia * 1e3:F3} | " +
            $"{mp / skia:F1} | {ours / skia:F2} |");
    }

    private static void SuiteRow(List<byte[]> files, int repeats)
    {
        double mp = files.Sum(f => { var d = PngDecoder.Decode(f); return d.Width * (double)d.Height; }) / 1e6;
        var (ours, skia) = Medians(repeats, () => { foreach (var f in files) PngDecoder.Decode(f); },
            () => { foreach (var f in files) SkiaDecoder.Decode(f, "s", ImageFormat.Png, long.MaxValue); });
        Console.WriteLine($"| PngSuite, all {files.Count} valid files | {files.Sum(f => f.Length):N0} | " +
            $"{ours * 1e3:F3} | {mp / ours:F1} | {skia * 1e3:F3} | {mp / skia:F1} | {ours / skia:F2} |");
    }

    /// <summary>Median seconds of each of two runs, timed in alternation (a, b, a, b, ...) after a warm-up of each, so
    /// a change in the machine's load falls on both alike.</summary>
    private static (double A, double B) Medians(int repeats, Action a, Action b)
    {
        a(); b();
        var ta = new double[repeats]; var tb = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            a();
            ta[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            t0 = Stopwatch.GetTimestamp();
            b();
            tb[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        Array.Sort(ta); Array.Sort(tb);
        return (ta[repeats / 2], tb[repeats / 2]);
    }

    /// <summary>Each PngSuite file through both decoders: exact, off by one (16-bit reductions round differently),
    /// wrong, or refused; corrupt files refused or accepted.</summary>
    private static void Conformance(string suiteDir)
    {
        var expected = SafeTensorsFile.Read(Path.Combine(suiteDir, "expected.safetensors"));
        var decoders = new (string Name, Func<byte[], byte[]> Decode)[]
        {
            ("ours", b => PngDecoder.Decode(b).Rgba8),
            ("Skia", b => SkiaDecoder.Decode(b, "s", ImageFormat.Png, long.MaxValue).Rgba),
        };
        var files = Directory.GetFiles(suiteDir, "*.png").Order().ToList();
        Console.WriteLine("| decoder | valid: exact | valid: off by 1 | valid: wrong | valid: refused | " +
            "corrupt: refused | corrupt: accepted |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var (name, decode) in decoders)
        {
            int exact = 0, offBy1 = 0, refusedCorrupt = 0;
            var wrong = new List<string>(); var refused = new List<string>(); var accepted = new List<string>();
            foreach (var f in files)
            {
                string stem = Path.GetFileNameWithoutExtension(f);
                var bytes = File.ReadAllBytes(f);
                byte[]? got = null;
                try { got = decode(bytes); }
                catch (ImageFormatException) { }
                if (stem.StartsWith('x'))
                {
                    if (got == null) refusedCorrupt++; else accepted.Add(stem);
                    continue;
                }
                if (got == null) { refused.Add(stem); continue; }
                var want = Reference8(expected, stem, bytes[24]);
                int max = 0;
                for (int i = 0; i < want.Length; i++) max = Math.Max(max, Math.Abs(want[i] - got[i]));
                if (max == 0) exact++; else if (max == 1) offBy1++; else wrong.Add($"{stem} (max diff {max})");
            }
            Console.WriteLine($"| {name} | {exact} | {offBy1} | {wrong.Count} | {refused.Count} | {refusedCorrupt} | " +
                $"{accepted.Count} |");
            if (wrong.Count > 0) Console.WriteLine($"  {name} wrong: {string.Join(", ", wrong)}");
            if (refused.Count > 0) Console.WriteLine($"  {name} refused valid: {string.Join(", ", refused)}");
            if (accepted.Count > 0) Console.WriteLine($"  {name} accepted corrupt: {string.Join(", ", accepted)}");
        }
    }

    /// <summary>The 8-bit reference: NAME_to8 when the fixture has it, else the 16-bit samples' high bytes, else the
    /// 8-bit samples themselves.</summary>
    private static int[] Reference8(SafeTensorsFile expected, string stem, byte bitDepth)
    {
        if (expected.Contains(stem + "_to8")) return expected.ReadInt32(stem + "_to8");
        var want = expected.ReadInt32(stem);
        return bitDepth == 16 ? want.Select(v => v >> 8).ToArray() : want;
    }
}
