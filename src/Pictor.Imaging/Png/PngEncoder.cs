using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Pictor.Engine.IO;

namespace Pictor.Imaging.Png;

/// <summary>
/// PNG encoder for 8-bit RGB and RGBA. Each row gets the filter (0-4) whose output has the smallest sum of absolute
/// values taken as signed bytes (the heuristic the PNG spec suggests in 12.8 and libpng uses), then zlib deflate.
/// Text goes in tEXt when it is Latin-1 and in iTXt (UTF-8) otherwise.
/// </summary>
public static class PngEncoder
{
    /// <param name="rgba">Width * Height * 4 bytes (RGBA) or * 3 (RGB, when <paramref name="hasAlpha"/> is
    /// false).</param>
    public static byte[] Encode(ReadOnlySpan<byte> pixels, int width, int height, bool hasAlpha = true,
                                IEnumerable<KeyValuePair<string, string>>? text = null,
                                CompressionLevel level = CompressionLevel.Optimal)
    {
        int ch = hasAlpha ? 4 : 3;
        if (width < 1 || height < 1)
            throw new ArgumentException($"image size {width}x{height} is invalid; both must be >= 1");
        if ((long)width * height * ch != pixels.Length)
            throw new ArgumentException($"{pixels.Length} bytes do not make a {width}x{height} "
                + $"{(hasAlpha ? "RGBA" : "RGB")} image ({(long)width * height * ch} expected)");
        using var ms = new MemoryStream();
        ms.Write(PngDecoder.Signature);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr[4..], (uint)height);
        ihdr[8] = 8; ihdr[9] = (byte)(hasAlpha ? 6 : 2); ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
        WriteChunk(ms, "IHDR", ihdr);
        foreach (var (k, v) in text ?? []) WriteText(ms, k, v);
        WriteChunk(ms, "IDAT", Compress(Filter(pixels, width, height, ch), level));
        WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>Encodes and writes atomically (temp file in the same folder, flush, rename).</summary>
    public static void Save(string path, ReadOnlySpan<byte> pixels, int width, int height, bool hasAlpha = true,
                            IEnumerable<KeyValuePair<string, string>>? text = null)
        => AtomicFile.WriteAllBytes(path, Encode(pixels, width, height, hasAlpha, text));

    private static byte[] Filter(ReadOnlySpan<byte> px, int w, int h, int bpp)
    {
        int row = w * bpp;
        var outp = new byte[(long)h * (row + 1)];
        var cand = new byte[5][];
        for (int f = 0; f < 5; f++) cand[f] = new byte[row];
        for (int y = 0; y < h; y++)
        {
            var cur = px.Slice(y * row, row);
            ReadOnlySpan<byte> prev = y == 0 ? new byte[row] : px.Slice((y - 1) * row, row);
            int best = 0; long bestScore = long.MaxValue;
            for (int f = 0; f < 5; f++)
            {
                var c = cand[f];
                long score = 0;
                for (int i = 0; i < row; i++)
                {
                    byte a = i >= bpp ? cur[i - bpp] : (byte)0, b = prev[i], cc = i >= bpp ? prev[i - bpp] : (byte)0;
                    byte v = f switch
                    {
                        0 => cur[i],
                        1 => (byte)(cur[i] - a),
                        2 => (byte)(cur[i] - b),
                        3 => (byte)(cur[i] - ((a + b) >> 1)),
                        _ => (byte)(cur[i] - PngDecoder.Paeth(a, b, cc)),
                    };
                    c[i] = v;
                    score += Math.Abs((int)(sbyte)v);   // widen first: |(sbyte)-128| overflows sbyte
                }
                if (score < bestScore) { bestScore = score; best = f; }
            }
            outp[y * (row + 1)] = (byte)best;
            cand[best].CopyTo(outp, y * (row + 1) + 1);
        }
        return outp;
    }

    private static byte[] Compress(byte[] data, CompressionLevel level)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, level, leaveOpen: true)) z.Write(data);
        return ms.ToArray();
    }

    private static void WriteText(Stream s, string key, string value)
    {
        if (key.Length is < 1 or > 79 || key.Any(c => c < 32 || c > 255))
            throw new ArgumentException($"PNG text keyword '{key}' must be 1-79 Latin-1 characters");
        var kb = Encoding.Latin1.GetBytes(key);
        bool latin1 = value.All(c => c <= 255 && c != 0);
        using var d = new MemoryStream();
        d.Write(kb); d.WriteByte(0);
        if (latin1)
        {
            d.Write(Encoding.Latin1.GetBytes(value));
            WriteChunk(s, "tEXt", d.ToArray());
        }
        else
        {
            d.WriteByte(0); d.WriteByte(0);   // uncompressed, method 0
            d.WriteByte(0);                   // empty language tag
            d.WriteByte(0);                   // empty translated keyword
            d.Write(Encoding.UTF8.GetBytes(value));
            WriteChunk(s, "iTXt", d.ToArray());
        }
    }

    private static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> b4 = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b4, (uint)data.Length);
        s.Write(b4);
        var t = Encoding.ASCII.GetBytes(type);
        s.Write(t);
        s.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(b4, Crc32.Compute(t, data));
        s.Write(b4);
    }
}
