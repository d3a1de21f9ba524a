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
