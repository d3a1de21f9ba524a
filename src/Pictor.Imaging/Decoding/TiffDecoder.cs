using BitMiracle.LibTiff.Classic;

namespace Pictor.Imaging.Decoding;

/// <summary>
/// TIFF through LibTiff.NET (managed; Skia has no TIFF codec): the first directory (page), through libtiff's RGBA
/// interface, which converts every photometric (grey, palette, RGB, CMYK, YCbCr), bit depth (1-16) and compression
/// it knows (LZW, Deflate, PackBits, JPEG, CCITT) to 8-bit RGBA and applies the file's Orientation flips. That
/// interface premultiplies colour by alpha; it is undone here, so alpha stays straight as in every other format.
/// LibTiff.NET reports problems through a process-wide handler: this type installs one that keeps the message (for
/// the exception) instead of writing it to the console.
/// </summary>
internal static class TiffDecoder
{
    static TiffDecoder() => Tiff.SetErrorHandler(new KeepMessages());

    public static Image Decode(ReadOnlySpan<byte> data, string name, long maxPixels)
    {
        const ImageFormat F = ImageFormat.Tiff;
        KeepMessages.Last = null;
        // libtiff sizes its strip tables from the header while opening: a crafted height of 2^31 has it loop over
        // a hundred million strips before any check of ours could run, so the header is read here first.
        var (hw, hh, problem) = ReadHeader(data);
        if (problem != null) throw ImageDecoder.Undecodable(name, F, problem);
        if (hw >= 0 && hh >= 0) ImageDecoder.CheckSize(name, F, hw, hh, maxPixels);
        try
        {
            using var stream = new MemoryStream(data.ToArray(), writable: false);
            using var tif = Tiff.ClientOpen(name, "r", stream, new TiffStream())
                ?? throw ImageDecoder.Undecodable(name, F, KeepMessages.Last ?? "LibTiff.NET cannot open it");
            int w = Field(tif, TiffTag.IMAGEWIDTH), h = Field(tif, TiffTag.IMAGELENGTH);
            ImageDecoder.CheckSize(name, F, w, h, maxPixels);
            // Tiles are decoded whole: a tile size is a buffer size too, so it gets the same cap.
            if (tif.IsTiled())
            {
                int tw = Field(tif, TiffTag.TILEWIDTH), th = Field(tif, TiffTag.TILELENGTH);
                ImageDecoder.CheckSize(name, F, tw, th, maxPixels);
            }
            var raster = new int[(long)w * h];
            if (!tif.ReadRGBAImageOriented(w, h, raster, Orientation.TOPLEFT, true))
                throw ImageDecoder.Undecodable(name, F, KeepMessages.Last ?? "LibTiff.NET cannot read its image data");
            return ToImage(raster, w, h);
        }
        catch (ImageFormatException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A managed decoder fails on a crafted file with its own exception types (out-of-range reads and the like);
            // each means the file does not decode, never that memory was misused.
            throw ImageDecoder.Undecodable(name, F, $"LibTiff.NET: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Bytes per value of each TIFF field type (TIFF 6.0 section 2, BigTIFF's 16-18); 0: unknown (libtiff
    /// skips such entries).</summary>
    private static int TypeBytes(ulong type) => type switch
    {
        1 or 2 or 6 or 7 => 1, 3 or 8 => 2, 4 or 9 or 11 or 13 => 4, 5 or 10 or 12 or 16 or 17 or 18 => 8, _ => 0,
    };

    /// <summary>The first IFD (TIFF 6.0 section 2; BigTIFF's 8-byte offsets and 20-byte entries too), checked before
    /// LibTiff.NET sees it: every entry's values must lie inside the file (a crafted count of 400 million has
    /// LibTiff.NET read for minutes), so must every strip's or tile's byte count (libtiff allocates it before reading),
    /// and the depth is bounded; ImageWidth (tag 256) and ImageLength (257) are returned for the size cap.
    /// A width or height of -1: the header does not say, which leaves the verdict to LibTiff.NET.</summary>
    internal static (long Width, long Height, string? Problem) ReadHeader(ReadOnlySpan<byte> d)
    {
        if (d.Length < 16) return (-1, -1, "truncated: the file ends inside its header");
        bool be = d[0] == 'M', big = d[2] == '+' || d[3] == '+';
        int entry = big ? 20 : 12, countBytes = big ? 8 : 2, inline = big ? 8 : 4;
        ulong ifd = big ? U(d, be, 8, 8) : U(d, be, 4, 4);
        ulong count = ifd >= (ulong)d.Length ? ulong.MaxValue : U(d, be, (long)ifd, countBytes);
        if (count == ulong.MaxValue || (long)ifd + countBytes + (long)Math.Min(count, 1UL << 32) * entry > d.Length)
            return (-1, -1, "its first image directory lies outside the file");
        long width = -1, height = -1, samples = 1, bits = 1;
        for (ulong k = 0; k < count; k++)
        {
            long at = (long)ifd + countBytes + (long)k * entry;
            ulong tag = U(d, be, at, 2), type = U(d, be, at + 2, 2), n = U(d, be, at + 4, big ? 8 : 4);
            long valueAt = at + 4 + (big ? 8 : 4);
            int size = TypeBytes(type);
            if (size == 0) continue;
            bool inlined = (long)n * size <= inline;
            if (n > (ulong)d.Length || !inlined && (long)U(d, be, valueAt, inline) + (long)n * size > d.Length)
                return (-1, -1, $"directory entry {k} (tag {tag}) claims {n} values, more than the file holds");
            if (n == 0 || type is not (3 or 4 or 16)) continue;
            long first = inlined ? valueAt : (long)U(d, be, valueAt, inline);
            long v = (long)Math.Min(U(d, be, first, size), long.MaxValue);
            switch (tag)
            {
                case 256: width = v; break;
                case 257: height = v; break;
                case 277: samples = v; break;
                case 258:
                    for (ulong j = 0; j < Math.Min(n, 16UL); j++)
                        bits = Math.Max(bits, (long)Math.Min(U(d, be, first + (long)j * size, size), long.MaxValue));
                    break;
                case 279 or 325:   // StripByteCounts, TileByteCounts: libtiff allocates each before reading it
                    for (ulong j = 0; j < n; j++)
                        if (U(d, be, first + (long)j * size, size) > (ulong)d.Length)
                        {
                            string what = tag == 279 ? "strip" : "tile";
                            return (-1, -1, $"{what} {j} claims more bytes than the file has");
                        }
                    break;
            }
        }
        // A strip or tile buffer holds its rows at the file's depth: bounding the depth bounds it (with the size cap)
        // by 10 bytes a pixel, and libtiff's RGBA interface reads nothing deeper anyway.
        if (samples > 5)
            return (-1, -1, $"{samples} samples per pixel; Pictor reads up to 5 (grey, RGB or CMYK, and one alpha)");
        if (bits > 16) return (-1, -1, $"{bits}-bit samples; Pictor reads 1 to 16 bits a sample");
        return (width, height, null);
    }

    /// <summary>An unsigned integer of <paramref name="bytes"/> bytes at <paramref name="at"/>; ulong.MaxValue past
    /// the end.</summary>
    private static ulong U(ReadOnlySpan<byte> d, bool bigEndian, long at, int bytes)
    {
        if (at < 0 || at + bytes > d.Length) return ulong.MaxValue;
        ulong v = 0;
        for (int i = 0; i < bytes; i++) v |= (ulong)d[(int)at + (bigEndian ? bytes - 1 - i : i)] << (8 * i);
        return v;
    }

    private static int Field(Tiff tif, TiffTag tag) => tif.GetField(tag) is { Length: > 0 } v ? v[0].ToInt() : 0;

    /// <summary>libtiff's packed ABGR (R in the low byte) with premultiplied colour -> straight RGBA bytes.</summary>
    private static Image ToImage(int[] raster, int w, int h)
    {
        var img = new Image(w, h);
        var o = img.Rgba;
        for (int i = 0; i < raster.Length; i++)
        {
            uint p = (uint)raster[i];
            int r = (int)(p & 0xFF), g = (int)((p >> 8) & 0xFF), b = (int)((p >> 16) & 0xFF), a = (int)(p >> 24);
            if (a is > 0 and < 255) { r = Unpremultiply(r, a); g = Unpremultiply(g, a); b = Unpremultiply(b, a); }
            o[4 * i] = (byte)r; o[4 * i + 1] = (byte)g; o[4 * i + 2] = (byte)b; o[4 * i + 3] = (byte)a;
        }
        return img;
    }

    private static int Unpremultiply(int c, int a) => Math.Min(255, (c * 255 + a / 2) / a);

    /// <summary>Keeps the last error of this thread's decode; warnings (unknown tags and the like) are
    /// dropped.</summary>
    private sealed class KeepMessages : TiffErrorHandler
    {
        [ThreadStatic] public static string? Last;

        public override void ErrorHandler(Tiff tif, string method, string format, params object[] args) =>
            Last = ImageDecoder.OneLine(Format(format, args));

        public override void ErrorHandlerExt(Tiff tif, object clientData, string method, string format,
            params object[] args) { }

        public override void WarningHandler(Tiff tif, string method, string format, params object[] args) { }

        public override void WarningHandlerExt(Tiff tif, object clientData, string method, string format,
            params object[] args) { }

        private static string Format(string format, object[] args)
        {
            try { return string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args); }
            catch (FormatException) { return format; }
        }
    }
}
