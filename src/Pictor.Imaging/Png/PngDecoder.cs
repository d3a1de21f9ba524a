using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Pictor.Imaging.Png;

/// <summary>
/// PNG decoder (W3C PNG Specification, 2nd edition): colour types 0/2/3/4/6, bit depths 1-16, PLTE, tRNS, Adam7
/// interlace, IDAT split across chunks, filter types 0-4. Every chunk CRC is verified. Refused with a
/// <see cref="PngFormatException"/>: a bad signature, a missing or misplaced IHDR/PLTE/IDAT/IEND, IDAT chunks that are
/// not consecutive, unknown critical chunks, bad filter bytes, image data that inflates to anything but exactly the
/// expected size, images over <see cref="PngDecodeOptions.MaxPixels"/>, and text chunks over MaxTextBytes.
/// gAMA, cHRM, sRGB and iCCP are read past, not applied (as browsers' raw canvas data and most decoders do).
/// </summary>
public static class PngDecoder
{
    internal static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    public static PngImage DecodeFile(string path, PngDecodeOptions? options = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"image '{path}' does not exist", path);
        var info = new FileInfo(path);
        if (info.Length > int.MaxValue - 64)
            throw new PngFormatException($"'{path}' is {info.Length} bytes, larger than Pictor reads");
        try { return Decode(File.ReadAllBytes(path), options); }
        catch (PngFormatException e) { throw new PngFormatException($"'{path}': {e.Message}"); }
    }

    public static PngImage Decode(ReadOnlySpan<byte> png, PngDecodeOptions? options = null)
    {
        options ??= new PngDecodeOptions();
        if (png.Length < 8 || !png[..8].SequenceEqual(Signature))
            Fail("not a PNG file: the 8-byte signature is wrong (a corrupted transfer, e.g. a text-mode copy, "
                + "changes it)");

        int pos = 8;
        Header? ihdr = null;
        byte[]? palette = null;     // RGB triples
        byte[]? trns = null;
        var idat = new MemoryStream();
        bool idatSeen = false, idatEnded = false, iendSeen = false;
        var text = new List<KeyValuePair<string, string>>();
        int chunkIndex = 0;

        while (pos < png.Length)
        {
            if (png.Length - pos < 12) Fail($"chunk {chunkIndex} at byte {pos} is truncated (needs at least 12 bytes, "
                + $"{png.Length - pos} left)");
            uint len = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            if (len > int.MaxValue)
                Fail($"chunk {chunkIndex} at byte {pos} declares length {len}, over the PNG limit of 2^31-1");
            var typeBytes = png.Slice(pos + 4, 4);
            string type = ChunkType(typeBytes, chunkIndex, pos);
            if ((long)pos + 12 + len > png.Length) Fail($"chunk '{type}' at byte {pos} declares {len} data bytes but "
                + "the file ends first; the file is truncated");
            var data = png.Slice(pos + 8, (int)len);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + (int)len)..]);
            if (Crc32.Compute(typeBytes, data) != crc)
                Fail($"chunk '{type}' at byte {pos} fails its CRC check; the file is corrupt");
            pos += 12 + (int)len;

            if (chunkIndex == 0 && type != "IHDR") Fail($"first chunk is '{type}', must be IHDR");
            if (iendSeen) Fail($"chunk '{type}' after IEND");
            if (idatSeen && type != "IDAT") idatEnded = true;

            switch (type)
            {
                case "IHDR":
                    if (ihdr != null) Fail("second IHDR chunk");
                    ihdr = ParseHeader(data, options);
                    break;
                case "PLTE":
                    if (idatSeen) Fail("PLTE after IDAT");
                    if (palette != null) Fail("second PLTE chunk");
                    if (len % 3 != 0 || len == 0 || len > 768)
                        Fail($"PLTE has {len} bytes; it must hold 1-256 RGB triples");
                    if (ihdr!.ColorType is PngColorType.Grayscale or PngColorType.GrayscaleAlpha)
                        Fail("PLTE in a grayscale image");
                    if (ihdr.ColorType == PngColorType.Palette && len / 3 > (1 << ihdr.BitDepth))
                        Fail($"PLTE has {len / 3} entries, more than bit depth {ihdr.BitDepth} can index");
                    palette = data.ToArray();
                    break;
                case "tRNS":
                    if (idatSeen) Fail("tRNS after IDAT");
                    trns = ParseTrns(data, ihdr!, palette);
                    break;
                case "IDAT":
                    if (idatEnded) Fail("IDAT chunks are not consecutive; another chunk sits between them");
                    if (ihdr!.ColorType == PngColorType.Palette && palette == null)
                        Fail("palette image without a PLTE chunk before IDAT");
                    idatSeen = true;
                    idat.Write(data);
                    break;
                case "IEND":
                    if (len != 0) Fail($"IEND has {len} data bytes, must be empty");
                    iendSeen = true;
                    break;
                case "tEXt": text.Add(ParseTextChunk(data)); break;
                case "zTXt": text.Add(ParseZtxt(data, options.MaxTextBytes)); break;
                case "iTXt": text.Add(ParseItxt(data, options.MaxTextBytes)); break;
                default:
                    if ((typeBytes[0] & 0x20) == 0)
                        Fail($"unknown critical chunk '{type}'; this decoder cannot safely skip it");
                    break;   // ancillary: skip
            }
            chunkIndex++;
            if (iendSeen) break;
        }
        if (ihdr == null) Fail("no IHDR chunk");
        if (!idatSeen) Fail("no IDAT chunk: the file has no image data");
        if (!iendSeen) Fail("no IEND chunk: the file is truncated");

        var raw = Inflate(idat.GetBuffer().AsSpan(0, (int)idat.Length), ihdr.ExpectedRawBytes());
        var samples = ihdr.Interlaced ? Deinterlace(raw, ihdr) : Unfilter(raw, ihdr, ihdr.Width, ihdr.Height);
        var (rgba8, rgba16) = ToRgba(samples, ihdr, palette, trns, options.Want16Bit);
        return new PngImage
        {
            Width = ihdr.Width, Height = ihdr.Height, BitDepth = ihdr.BitDepth, ColorType = ihdr.ColorType,
            Interlaced = ihdr.Interlaced, Rgba8 = rgba8, Rgba16 = rgba16, Text = text,
        };
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Fail(string message) => throw new PngFormatException(message);

    private static string ChunkType(ReadOnlySpan<byte> t, int index, int pos)
    {
        foreach (byte b in t)
            if (!((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z')))
                Fail($"chunk {index} at byte {pos} has an invalid type "
                    + $"(bytes {t[0]:X2} {t[1]:X2} {t[2]:X2} {t[3]:X2}); the file is corrupt");
        return Encoding.ASCII.GetString(t);
    }

    internal sealed record Header(int Width, int Height, int BitDepth, PngColorType ColorType, bool Interlaced)
    {
        public int Channels => ColorType switch { PngColorType.Grayscale or PngColorType.Palette => 1,
            PngColorType.GrayscaleAlpha => 2, PngColorType.Rgb => 3, _ => 4 };
        public int BitsPerPixel => Channels * BitDepth;
        public long RowBytes(int width) => ((long)width * BitsPerPixel + 7) / 8;

        public long ExpectedRawBytes()
        {
            if (!Interlaced) return Height * (1 + RowBytes(Width));
            long total = 0;
            foreach (var (x0, y0, dx, dy) in Adam7)
            {
                long w = (Width - x0 + dx - 1) / dx, h = (Height - y0 + dy - 1) / dy;
                if (w > 0 && h > 0) total += h * (1 + RowBytes((int)w));
            }
            return total;
        }
    }

    /// <summary>Adam7 passes: (x start, y start, x step, y step), PNG spec 8.2.</summary>
    internal static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    private static Header ParseHeader(ReadOnlySpan<byte> d, PngDecodeOptions o)
    {
        if (d.Length != 13) Fail($"IHDR has {d.Length} bytes, must have 13");
        uint w = BinaryPrimitives.ReadUInt32BigEndian(d), h = BinaryPrimitives.ReadUInt32BigEndian(d[4..]);
        if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue)
            Fail($"image size {w}x{h} is invalid; both must be 1..2^31-1");
        if ((long)w * h > o.MaxPixels)
            Fail($"image is {w}x{h} = {(long)w * h} pixels, over the limit of {o.MaxPixels}; "
                + "raise PngDecodeOptions.MaxPixels if it is genuine");
        int depth = d[8], ct = d[9];
        bool ok = ct switch
        {
            0 => depth is 1 or 2 or 4 or 8 or 16,
            2 or 4 or 6 => depth is 8 or 16,
            3 => depth is 1 or 2 or 4 or 8,
            _ => Fail2($"colour type {ct} is not a PNG colour type (0, 2, 3, 4 or 6)"),
        };
        if (!ok) Fail($"bit depth {depth} is not allowed for colour type {ct}");
        if (d[10] != 0) Fail($"compression method {d[10]} is unknown (only 0, deflate)");
        if (d[11] != 0) Fail($"filter method {d[11]} is unknown (only 0)");
        if (d[12] > 1) Fail($"interlace method {d[12]} is unknown (0 none, 1 Adam7)");
        return new Header((int)w, (int)h, depth, (PngColorType)ct, d[12] == 1);
    }

    private static bool Fail2(string m) { Fail(m); return false; }

    private static byte[] ParseTrns(ReadOnlySpan<byte> d, Header h, byte[]? palette)
    {
        switch (h.ColorType)
        {
            case PngColorType.Grayscale:
                if (d.Length != 2) Fail($"tRNS for grayscale has {d.Length} bytes, must have 2"); break;
            case PngColorType.Rgb: if (d.Length != 6) Fail($"tRNS for RGB has {d.Length} bytes, must have 6"); break;
            case PngColorType.Palette:
                if (palette == null) Fail("tRNS before PLTE");
                if (d.Length > palette.Length / 3)
                    Fail($"tRNS has {d.Length} entries, more than the {palette.Length / 3} palette entries");
                break;
            default: Fail("tRNS in an image that already has an alpha channel"); break;
        }
        return d.ToArray();
    }

    private static byte[] Inflate(ReadOnlySpan<byte> z, long expected)
    {
        if (expected > int.MaxValue - 64) Fail($"image needs {expected} bytes of raw data, more than Pictor decodes");
        var buf = new byte[expected];
        using var ms = new MemoryStream(z.ToArray());
        int got = 0;
        try
        {
            using var zs = new ZLibStream(ms, CompressionMode.Decompress);
            while (got < buf.Length)
            {
                int n = zs.Read(buf, got, buf.Length - got);
                if (n == 0) break;
                got += n;
            }
            if (got < expected)
                Fail($"image data inflates to {got} bytes, expected {expected}; the file is truncated or corrupt");
            Span<byte> extra = stackalloc byte[1];
            if (zs.Read(extra) != 0)
                Fail($"image data inflates to more than the expected {expected} bytes; the file is corrupt");
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            Fail($"image data is not valid zlib data ({e.Message})");
        }
        return buf;
    }

    /// <summary>Reverses the per-row filters (PNG spec 9.2), returning the packed sample rows without filter
    /// bytes.</summary>
    private static byte[] Unfilter(ReadOnlySpan<byte> raw, Header h, int width, int height, int rawOffset = 0)
    {
        int rowBytes = (int)h.RowBytes(width);
        int bpp = Math.Max(1, h.BitsPerPixel / 8);   // bytes per complete pixel, at least 1
        var outp = new byte[(long)rowBytes * height];
        for (int y = 0; y < height; y++)
        {
            int src = rawOffset + y * (rowBytes + 1);
            byte filter = raw[src];
            var line = raw.Slice(src + 1, rowBytes);
            var cur = outp.AsSpan(y * rowBytes, rowBytes);
            ReadOnlySpan<byte> prev = y == 0 ? default : outp.AsSpan((y - 1) * rowBytes, rowBytes);
            switch (filter)
            {
                case 0: line.CopyTo(cur); break;
                case 1:
                    for (int i = 0; i < rowBytes; i++) cur[i] = (byte)(line[i] + (i >= bpp ? cur[i - bpp] : 0));
                    break;
                case 2: for (int i = 0; i < rowBytes; i++) cur[i] = (byte)(line[i] + (y > 0 ? prev[i] : 0)); break;
                case 3:
                    for (int i = 0; i < rowBytes; i++)
                        cur[i] = (byte)(line[i] + (((i >= bpp ? cur[i - bpp] : 0) + (y > 0 ? prev[i] : 0)) >> 1));
                    break;
                case 4:
                    for (int i = 0; i < rowBytes; i++)
                        cur[i] = (byte)(line[i] + Paeth(i >= bpp ? cur[i - bpp] : (byte)0, y > 0 ? prev[i] : (byte)0,
                            i >= bpp && y > 0 ? prev[i - bpp] : (byte)0));
                    break;
                default: Fail($"row {y} has filter type {filter}; only 0-4 exist"); break;
            }
        }
        return outp;
    }

    /// <summary>Paeth predictor (PNG spec 9.4): the neighbour a, b or c closest to a + b - c.</summary>
    internal static byte Paeth(byte a, byte b, byte c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>Unfilters each Adam7 pass and scatters its pixels into a full-size packed image (one sample row per
    /// image row, at the non-interlaced row stride).</summary>
    private static byte[] Deinterlace(ReadOnlySpan<byte> raw, Header h)
    {
        int rowBytes = (int)h.RowBytes(h.Width);
        var full = new byte[(long)rowBytes * h.Height];
        int off = 0;
        foreach (var (x0, y0, dx, dy) in Adam7)
        {
            int w = (h.Width - x0 + dx - 1) / dx, ht = (h.Height - y0 + dy - 1) / dy;
            if (w <= 0 || ht <= 0) continue;
            var pass = Unfilter(raw, h, w, ht, off);
            int passRow = (int)h.RowBytes(w);
            for (int y = 0; y < ht; y++)
                for (int x = 0; x < w; x++)
                    CopyPixel(pass, y * passRow, x, full, (y0 + y * dy) * rowBytes, x0 + x * dx, h.BitsPerPixel);
            off += ht * (passRow + 1);
        }
        return full;
    }

    private static void CopyPixel(byte[] src, int srcRow, int sx, byte[] dst, int dstRow, int dx, int bits)
    {
        if (bits >= 8)
        {
            int n = bits / 8;
            Buffer.BlockCopy(src, srcRow + sx * n, dst, dstRow + dx * n, n);
            return;
        }
        int ppb = 8 / bits, mask = (1 << bits) - 1;
        int v = (src[srcRow + sx / ppb] >> (8 - bits * (sx % ppb + 1))) & mask;
        int shift = 8 - bits * (dx % ppb + 1);
        ref byte d = ref dst[dstRow + dx / ppb];
        d = (byte)((d & ~(mask << shift)) | (v << shift));
    }

    /// <summary>Packed samples to RGBA. Low bit depths scale to 8 bits by v * 255 / (2^depth - 1); 16-bit samples
    /// reduce to 8 bits by keeping the high byte; tRNS colour keys become alpha 0.</summary>
    private static (byte[], ushort[]?) ToRgba(byte[] s, Header h, byte[]? palette, byte[]? trns, bool want16)
    {
        int w = h.Width, ht = h.Height, depth = h.BitDepth, rowBytes = (int)h.RowBytes(w);
        var rgba8 = new byte[(long)w * ht * 4];
        var rgba16 = want16 ? new ushort[(long)w * ht * 4] : null;
        int maxV = (1 << depth) - 1;
        int keyGray = -1, keyR = -1, keyG = -1, keyB = -1;
        if (trns != null && h.ColorType == PngColorType.Grayscale)
            keyGray = BinaryPrimitives.ReadUInt16BigEndian(trns) & maxV;
        if (trns != null && h.ColorType == PngColorType.Rgb)
        {
            keyR = BinaryPrimitives.ReadUInt16BigEndian(trns);
            keyG = BinaryPrimitives.ReadUInt16BigEndian(trns.AsSpan(2));
            keyB = BinaryPrimitives.ReadUInt16BigEndian(trns.AsSpan(4));
        }
        for (int y = 0; y < ht; y++)
        {
            var row = s.AsSpan(y * rowBytes, rowBytes);
            for (int x = 0; x < w; x++)
            {
                int r, g, b, a;   // at the source depth
                switch (h.ColorType)
                {
                    case PngColorType.Grayscale:
                        r = g = b = Sample(row, x, depth);
                        a = r == keyGray ? 0 : maxV;
                        break;
                    case PngColorType.Palette:
                        int idx = Sample(row, x, depth);
                        if (idx * 3 >= palette!.Length) Fail($"pixel ({x}, {y}) uses palette index {idx}, but PLTE has "
                            + $"{palette.Length / 3} entries");
                        r = palette[idx * 3]; g = palette[idx * 3 + 1]; b = palette[idx * 3 + 2];
                        a = trns != null && idx < trns.Length ? trns[idx] : 255;
                        Put(rgba8, rgba16, y * w + x, r, g, b, a, 8);
                        continue;
                    case PngColorType.GrayscaleAlpha:
                        r = g = b = Sample(row, 2 * x, depth); a = Sample(row, 2 * x + 1, depth);
                        break;
                    case PngColorType.Rgb:
                        r = Sample(row, 3 * x, depth); g = Sample(row, 3 * x + 1, depth);
                        b = Sample(row, 3 * x + 2, depth);
                        a = r == keyR && g == keyG && b == keyB ? 0 : maxV;
                        break;
                    default:
                        r = Sample(row, 4 * x, depth); g = Sample(row, 4 * x + 1, depth);
                        b = Sample(row, 4 * x + 2, depth); a = Sample(row, 4 * x + 3, depth);
                        break;
                }
                Put(rgba8, rgba16, y * w + x, r, g, b, a, depth);
            }
        }
        return (rgba8, rgba16);
    }

    private static int Sample(ReadOnlySpan<byte> row, int i, int depth) => depth switch
    {
        8 => row[i],
        16 => (row[2 * i] << 8) | row[2 * i + 1],
        _ => (row[i * depth / 8] >> (8 - depth * (i % (8 / depth) + 1))) & ((1 << depth) - 1),
    };

    private static void Put(byte[] rgba8, ushort[]? rgba16, int p, int r, int g, int b, int a, int depth)
    {
        rgba8[4 * p] = To8(r, depth); rgba8[4 * p + 1] = To8(g, depth);
        rgba8[4 * p + 2] = To8(b, depth); rgba8[4 * p + 3] = To8(a, depth);
        if (rgba16 == null) return;
        rgba16[4 * p] = To16(r, depth); rgba16[4 * p + 1] = To16(g, depth);
        rgba16[4 * p + 2] = To16(b, depth); rgba16[4 * p + 3] = To16(a, depth);
    }

    internal static byte To8(int v, int depth) => depth switch
    {
        8 => (byte)v,
        16 => (byte)(v >> 8),   // the high byte, as libpng's png_set_strip_16 and the PngSuite references do
        _ => (byte)(v * 255 / ((1 << depth) - 1)),
    };

    private static ushort To16(int v, int depth) => depth == 16 ? (ushort)v : (ushort)(To8(v, depth) * 257);

    // ------------------------------------------------------------ text chunks (PNG spec 11.3.4)

    private static KeyValuePair<string, string> ParseTextChunk(ReadOnlySpan<byte> d)
    {
        int z = d.IndexOf((byte)0);
        if (z < 1 || z > 79) Fail("tEXt keyword must be 1-79 bytes followed by a zero byte");
        return new(Encoding.Latin1.GetString(d[..z]), Encoding.Latin1.GetString(d[(z + 1)..]));
    }

    private static KeyValuePair<string, string> ParseZtxt(ReadOnlySpan<byte> d, int max)
    {
        int z = d.IndexOf((byte)0);
        if (z < 1 || z > 79 || d.Length < z + 2)
            Fail("zTXt keyword must be 1-79 bytes followed by a zero byte and a method byte");
        if (d[z + 1] != 0) Fail($"zTXt compression method {d[z + 1]} is unknown");
        return new(Encoding.Latin1.GetString(d[..z]), Encoding.Latin1.GetString(InflateText(d[(z + 2)..], max)));
    }

    private static KeyValuePair<string, string> ParseItxt(ReadOnlySpan<byte> d, int max)
    {
        int z = d.IndexOf((byte)0);
        if (z < 1 || z > 79 || d.Length < z + 3)
            Fail("iTXt keyword must be 1-79 bytes followed by a zero byte, a flag and a method");
        bool compressed = d[z + 1] == 1;
        if (d[z + 1] > 1 || (compressed && d[z + 2] != 0)) Fail("iTXt has an unknown compression flag or method");
        var rest = d[(z + 3)..];
        int lang = rest.IndexOf((byte)0); if (lang < 0) Fail("iTXt language tag is not terminated");
        rest = rest[(lang + 1)..];
        int tk = rest.IndexOf((byte)0); if (tk < 0) Fail("iTXt translated keyword is not terminated");
        rest = rest[(tk + 1)..];
        var bytes = compressed ? InflateText(rest, max) : rest.ToArray();
        if (bytes.Length > max) Fail($"iTXt text is {bytes.Length} bytes, over the {max}-byte limit");
        try { return new(Encoding.Latin1.GetString(d[..z]), new UTF8Encoding(false, true).GetString(bytes)); }
        catch (DecoderFallbackException) { Fail("iTXt text is not valid UTF-8"); return default; }
    }

    private static byte[] InflateText(ReadOnlySpan<byte> z, int max)
    {
        using var ms = new MemoryStream(z.ToArray());
        var outp = new MemoryStream();
        try
        {
            using var zs = new ZLibStream(ms, CompressionMode.Decompress);
            var buf = new byte[8192];
            int n;
            while ((n = zs.Read(buf, 0, buf.Length)) > 0)
            {
                outp.Write(buf, 0, n);
                if (outp.Length > max) Fail($"compressed text chunk inflates past the {max}-byte limit");
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            Fail($"compressed text chunk is not valid zlib data ({e.Message})");
        }
        return outp.ToArray();
    }
}
