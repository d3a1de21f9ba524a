using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Decoding;
using Pictor.Imaging.Png;
using SkiaSharp;

namespace Pictor.Bench;

/// <summary>
/// Mutation fuzzing of <see cref="ImageDecoder"/>, the path every dataset image takes, one format at a time. Seeds:
/// tests/fixtures/images (Pillow-made) plus files Skia encodes here (several sizes and qualities); for png, the
/// PngSuite. Mutations: 1-4 of bit flips, byte overwrites with random or boundary values (00, 01, 7F, 80, FF),
/// inserted, deleted or repeated runs, truncation, and the format's own length and size fields set to extremes (JPEG
/// segment lengths and SOF sizes; WebP RIFF/chunk sizes and canvas/frame sizes; PNG chunk lengths and IHDR sizes,
/// with the CRCs recomputed for half the cases; TIFF IFD entries' counts and values; GIF and BMP header sizes).
/// Pass: every failure is an <see cref="ImageFormatException"/> (the decoder's own error), no case over 1 s, no case
/// allocating over 64 MiB of managed memory, the process's peak resident memory under 1 GiB. Decoding runs with a
/// 4-megapixel cap (16 MiB of RGBA). A native crash ends the process: the input being decoded is kept in a
/// memory-mapped file (its path is printed first; a u32 length, then the bytes), which the kernel writes out even
/// then; a case running over 10 s is stopped the same way, as a hang. "png-ours" runs our <see cref="PngDecoder"/>
/// on the same mutations as "png" (Skia's codec, the one <see cref="ImageDecoder"/> uses), for the PNG comparison.
/// </summary>
internal static class ImageFuzz
{
    private const int Slot = 1 << 24;   // the largest input kept for reproduction

    public static int Run(string format, int cases, ulong seed, string fixtures, string pngSuite)
    {
        bool ours = format == "png-ours";
        var kind = ParseFormat(ours ? "png" : format);
        var seeds = Seeds(kind, fixtures, pngSuite);
        var options = new PngDecodeOptions(MaxPixels: 4L * 1024 * 1024);
        Action<byte[]> decode = ours ? d => PngDecoder.Decode(d, options)
                                     : d => ImageDecoder.Decode(d, "case", options);
        string current = Path.Combine(Path.GetTempPath(), $"pictor-fuzz-{format}-{seed}.bin");
        Console.WriteLine($"# fuzz-image {format}: {cases} cases, seed {seed}, {seeds.Count} seed files; " +
            $"the input being decoded is kept in {current}");
        var stats = new Stats();
        using (var mmf = MemoryMappedFile.CreateFromFile(current, FileMode.Create, null, Slot + 4))
        using (var keep = mmf.CreateViewAccessor())
        using (new Timer(_ => stats.StopIfHung(current), null, 1000, 1000))
        {
            var rng = new Rng(seed);
            for (int i = 0; i < cases; i++)
            {
                var data = Mutate(seeds[rng.NextInt(seeds.Count)], kind, rng);
                keep.Write(0, Math.Min(data.Length, Slot));
                keep.WriteArray(4, data, 0, Math.Min(data.Length, Slot));
                stats.Case(i, data, decode);
                if ((i + 1) % 10_000 == 0) Console.Error.WriteLine($"  {i + 1} cases, {stats.Seconds:F0} s");
            }
        }
        File.Delete(current);
        return stats.Report(format, cases);
    }

    /// <summary>Counts, worst cases and the rejection kinds of one fuzz run.</summary>
    private sealed class Stats
    {
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private readonly List<string> otherExamples = [];
        private readonly Dictionary<string, int> kinds = [];
        private readonly Dictionary<string, int> wrapped = [];   // TiffDecoder's wrapped exceptions, by type
        private int decoded, rejected, other, index = -1;
        private double worstMs;
        private long worstBytes, caseStart;

        public double Seconds => clock.Elapsed.TotalSeconds;

        public void Case(int i, byte[] data, Action<byte[]> decode)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            index = i;
            long t0 = Stopwatch.GetTimestamp();
            Interlocked.Exchange(ref caseStart, t0);
            string outcome = "decoded";
            try { decode(data); decoded++; }
            catch (ImageFormatException e)
            {
                rejected++;
                outcome = e.Message;
                int lt = e.Message.IndexOf("(LibTiff.NET: ", StringComparison.Ordinal);
                if (lt >= 0)
                {
                    string type = e.Message[(lt + 14)..].Split(':')[0];
                    wrapped[type] = wrapped.GetValueOrDefault(type) + 1;
                }
                string key = Kind(e.Message);
                kinds[key] = kinds.GetValueOrDefault(key) + 1;
            }
            catch (Exception e)
            {
                other++;
                if (otherExamples.Count < 5) otherExamples.Add($"case {i}: {e.GetType().Name}: {e.Message}");
            }
            Interlocked.Exchange(ref caseStart, 0);
            worstMs = Math.Max(worstMs, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            worstBytes = Math.Max(worstBytes, bytes);
            if (bytes >= 64L * 1024 * 1024 && otherExamples.Count < 5)
                otherExamples.Add($"case {i} allocated {bytes:N0} bytes: {outcome}");
        }

        public void StopIfHung(string current)
        {
            long t0 = Interlocked.Read(ref caseStart);
            if (t0 == 0 || Stopwatch.GetElapsedTime(t0).TotalSeconds <= 10) return;
            Console.WriteLine($"HANG: case {index} ran over 10 s; its input is kept in {current}");
            Environment.Exit(3);
        }

        public int Report(string format, int cases)
        {
            long peakRss = Process.GetCurrentProcess().PeakWorkingSet64;
            Console.WriteLine("| format | cases | decoded | rejected (ImageFormatException) | other exceptions | " +
                "worst ms/case | worst managed bytes/case | peak RSS MiB | total s |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
            Console.WriteLine($"| {format} | {cases} | {decoded} | {rejected} | {other} | {worstMs:F1} | " +
                $"{worstBytes:N0} | {peakRss / (1 << 20)} | {Seconds:F1} |");
            foreach (var e in otherExamples) Console.WriteLine("  " + e);
            var byType = wrapped.OrderByDescending(w => w.Value).Select(w => $"{w.Key} {w.Value}");
            if (wrapped.Count > 0)
                Console.WriteLine($"of the rejections, {wrapped.Values.Sum()} are LibTiff.NET exceptions that " +
                    $"TiffDecoder wraps: {string.Join(", ", byType)}");
            Console.WriteLine("rejections by kind: " + string.Join(", ",
                kinds.OrderByDescending(m => m.Value).Take(8).Select(m => $"{m.Key} {m.Value}")));
            bool ok = other == 0 && worstMs < 1000 && worstBytes < 64L * 1024 * 1024 && peakRss < 1L << 30;
            Console.WriteLine(ok ? "PASS" : "FAIL");
            return ok ? 0 : 1;
        }
    }

    private static ImageFormat ParseFormat(string f) => f switch
    {
        "jpeg" => ImageFormat.Jpeg, "webp" => ImageFormat.WebP, "png" => ImageFormat.Png, "gif" => ImageFormat.Gif,
        "bmp" => ImageFormat.Bmp, "tiff" => ImageFormat.Tiff,
        _ => throw new ArgumentException($"fuzz-image takes jpeg, webp, png, png-ours, gif, bmp or tiff, not '{f}'"),
    };

    /// <summary>The problem part of a rejection ("truncated", "corrupt image data", ...), for the summary
    /// line.</summary>
    private static string Kind(string message)
    {
        message = message.Replace("case: ", "", StringComparison.Ordinal);   // the name, and LibTiff.NET's echo of it
        if (message.Contains("over the limit", StringComparison.Ordinal)) return "size cap";
        if (message.Contains("not an image Pictor reads", StringComparison.Ordinal)) return "unknown format";
        int open = message.IndexOf('(');
        var inner = open < 0 ? message : message[(open + 1)..];
        int cut = inner.IndexOfAny([':', ';', ')', '(', ',']);
        return (cut > 0 ? inner[..cut] : inner).Trim();
    }

    private static List<byte[]> Seeds(ImageFormat kind, string fixtures, string pngSuite)
    {
        if (kind == ImageFormat.Png)
            return Directory.GetFiles(pngSuite, "*.png").Order().Select(File.ReadAllBytes).ToList();
        var ext = kind switch
        {
            ImageFormat.Jpeg => ".jpg", ImageFormat.WebP => ".webp", ImageFormat.Gif => ".gif",
            ImageFormat.Bmp => ".bmp", _ => ".tif",
        };
        var seeds = Directory.GetFiles(fixtures, "*" + ext).Order().Select(File.ReadAllBytes).ToList();
        var sk = kind switch
        {
            ImageFormat.Jpeg => SKEncodedImageFormat.Jpeg, ImageFormat.WebP => SKEncodedImageFormat.Webp,
            _ => (SKEncodedImageFormat?)null,
        };
        if (sk is { } f)
            foreach (var (w, h) in new[] { (1, 1), (17, 9), (64, 48), (200, 150) })
                foreach (int q in new[] { 30, 90, 100 })   // WebP 100: lossless
                    seeds.Add(Encode(Picture(w, h, q == 100), f, q));
        if (seeds.Count == 0) throw new ArgumentException($"no {ext} seed files in {fixtures}");
        return seeds;
    }

    /// <summary>A gradient with a noisy square and, when asked, an alpha ramp: edges and flat parts for a
    /// codec.</summary>
    private static Image Picture(int w, int h, bool alpha)
    {
        var img = new Image(w, h);
        var rng = new Rng((ulong)(w * 1000 + h));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int p = 4 * (y * w + x);
                bool noisy = x > w / 4 && x < w / 2 && y > h / 4 && y < h / 2;
                img.Rgba[p] = (byte)(noisy ? rng.NextInt(256) : x * 255 / w);
                img.Rgba[p + 1] = (byte)(y * 255 / h);
                img.Rgba[p + 2] = (byte)(noisy ? rng.NextInt(256) : 128);
                img.Rgba[p + 3] = alpha ? (byte)(255 - y * 200 / h) : (byte)255;
            }
        return img;
    }

    private static byte[] Encode(Image img, SKEncodedImageFormat format, int quality)
    {
        var info = new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var sk = SKImage.FromPixelCopy(info, img.Rgba);
        using var data = sk.Encode(format, quality);
        return data.ToArray();
    }

    private static readonly byte[] Boundary = [0x00, 0x01, 0x7F, 0x80, 0xFF];

    private static byte[] Mutate(byte[] src, ImageFormat kind, Rng r)
    {
        var d = new List<byte>(src);
        int n = 1 + r.NextInt(4);
        for (int k = 0; k < n && d.Count > 0; k++)
        {
            int at = r.NextInt(d.Count);
            switch (r.NextInt(9))
            {
                case 0: d[at] ^= (byte)(1 << r.NextInt(8)); break;
                case 1: d[at] = (byte)r.NextInt(256); break;
                case 2: d[at] = Boundary[r.NextInt(Boundary.Length)]; break;
                case 3: d.InsertRange(at, Enumerable.Range(0, 1 + r.NextInt(16)).Select(_ => (byte)r.NextInt(256)));
                    break;
                case 4: d.RemoveRange(at, Math.Min(d.Count - at, 1 + r.NextInt(16))); break;
                case 5: d.RemoveRange(at, d.Count - at); break;                                          // truncate
                case 6:
                    int len = Math.Min(d.Count - at, 1 + r.NextInt(64));
                    d.InsertRange(r.NextInt(d.Count), d.GetRange(at, len));   // repeat a run
                    break;
                default: MutateField(d, kind, r); break;                                                 // 2 in 9
            }
        }
        var outp = d.ToArray();
        if (kind == ImageFormat.Png && r.NextInt(2) == 0) FixPngCrcs(outp);
        return outp;
    }

    /// <summary>Sets one of the format's length or size fields to an extreme or random value.</summary>
    private static void MutateField(List<byte> d, ImageFormat kind, Rng r)
    {
        var fields = Fields(d, kind);
        if (fields.Count == 0) return;
        var (pos, bytes, bigEndian) = fields[r.NextInt(fields.Count)];
        ulong max = bytes >= 8 ? ulong.MaxValue : (1UL << (8 * bytes)) - 1;
        ulong[] picks = [0, 1, 2, max, max - 1, max / 2, max / 2 + 1, (ulong)r.NextInt(1 << 16), 16384, 65535, 65536];
        ulong v = picks[r.NextInt(picks.Length)] & max;
        if (r.NextInt(4) == 0) v = (Read(d, pos, bytes, bigEndian) + (ulong)(r.NextInt(33) - 16)) & max;   // nearby
        for (int b = 0; b < bytes; b++)
            d[pos + (bigEndian ? bytes - 1 - b : b)] = (byte)(v >> (8 * b));
    }

    private static ulong Read(List<byte> d, int pos, int bytes, bool bigEndian)
    {
        ulong v = 0;
        for (int b = 0; b < bytes; b++) v |= (ulong)d[pos + (bigEndian ? bytes - 1 - b : b)] << (8 * b);
        return v;
    }

    /// <summary>Positions of the format's length and size fields: (offset, width in bytes, big-endian).</summary>
    private static List<(int Pos, int Bytes, bool BigEndian)> Fields(List<byte> d, ImageFormat kind)
    {
        var f = new List<(int, int, bool)>();
        switch (kind)
        {
            case ImageFormat.Jpeg:   // marker segments up to the first scan: length; SOFn: height, width, components
                for (int pos = 2; pos + 4 <= d.Count && d[pos] == 0xFF;)
                {
                    byte m = d[pos + 1];
                    if (m is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7) or 0xFF) { pos += m == 0xFF ? 1 : 2; continue; }
                    f.Add((pos + 2, 2, true));
                    if (m is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC && pos + 10 <= d.Count)
                    {
                        f.Add((pos + 5, 2, true)); f.Add((pos + 7, 2, true)); f.Add((pos + 9, 1, true));
                    }
                    if (m == 0xDA) break;
                    pos += 2 + (d[pos + 2] << 8 | d[pos + 3]);
                }
                break;
            case ImageFormat.WebP:   // RIFF size; each chunk's size; VP8X canvas width-1 and height-1 (24-bit)
                if (d.Count >= 12) f.Add((4, 4, false));
                for (int pos = 12; pos + 8 <= d.Count;)
                {
                    f.Add((pos + 4, 4, false));
                    bool vp8 = d[pos] == 'V' && d[pos + 1] == 'P' && d[pos + 2] == '8';
                    if (vp8 && d[pos + 3] == 'X' && pos + 18 <= d.Count)   // canvas width-1, height-1
                    {
                        f.Add((pos + 12, 3, false)); f.Add((pos + 15, 3, false));
                    }
                    if (vp8 && d[pos + 3] == ' ' && pos + 18 <= d.Count)   // frame width, height (14 bits + scale)
                    {
                        f.Add((pos + 14, 2, false)); f.Add((pos + 16, 2, false));
                    }
                    if (vp8 && d[pos + 3] == 'L' && pos + 13 <= d.Count) f.Add((pos + 9, 4, false));   // packed sizes
                    long size = (long)Read(d, pos + 4, 4, bigEndian: false);
                    pos += 8 + (int)Math.Min(size + (size & 1), int.MaxValue - pos - 16);
                }
                break;
            case ImageFormat.Png:    // chunk lengths; IHDR width and height
                for (int pos = 8; pos + 12 <= d.Count;)
                {
                    f.Add((pos, 4, true));
                    uint len = (uint)(d[pos] << 24 | d[pos + 1] << 16 | d[pos + 2] << 8 | d[pos + 3]);
                    if (pos == 8 && d.Count >= 24) { f.Add((16, 4, true)); f.Add((20, 4, true)); }
                    if (len > (uint)(d.Count - pos - 12)) break;
                    pos += 12 + (int)len;
                }
                break;
            case ImageFormat.Tiff:   // first IFD: entry count, and each entry's count and value
                if (d.Count < 8) break;
                bool be = d[0] == 'M';
                long at0 = (long)Read(d, 4, 4, be);
                if (at0 + 2 > d.Count) break;
                int ifd = (int)at0;
                f.Add((ifd, 2, be));
                int entries = (int)Read(d, ifd, 2, be);
                for (int e = 0; e < entries && ifd + 2 + 12 * e + 12 <= d.Count; e++)
                {
                    f.Add((ifd + 2 + 12 * e + 4, 4, be)); f.Add((ifd + 2 + 12 * e + 8, 4, be));
                }
                break;
            case ImageFormat.Gif:    // logical screen and first image descriptor sizes are at fixed places
                if (d.Count >= 10) { f.Add((6, 2, false)); f.Add((8, 2, false)); }
                break;
            case ImageFormat.Bmp:    // file size, pixel offset, header size, width, height, bit count, compression
                (int, int)[] bmp = [(2, 4), (10, 4), (14, 4), (18, 4), (22, 4), (28, 2), (30, 4), (46, 4)];
                foreach (var (pos, bytes) in bmp)
                    if (pos + bytes <= d.Count) f.Add((pos, bytes, false));
                break;
        }
        return f;
    }

    /// <summary>Recomputes every PNG chunk's CRC so mutations reach the parsers behind the checksum.</summary>
    private static void FixPngCrcs(byte[] d)
    {
        int pos = 8;
        while (pos + 12 <= d.Length)
        {
            uint len = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(pos));
            if (len > (uint)(d.Length - pos - 12)) break;
            uint crc = Crc32.Compute(d.AsSpan(pos + 4, 4), d.AsSpan(pos + 8, (int)len));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(pos + 8 + (int)len), crc);
            pos += 12 + (int)len;
        }
    }
}
