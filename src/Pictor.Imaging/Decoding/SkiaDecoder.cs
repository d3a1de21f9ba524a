using SkiaSharp;

namespace Pictor.Imaging.Decoding;

/// <summary>
/// PNG, JPEG, WebP, GIF and BMP through Skia's codecs (SkiaSharp's SKCodec: libpng, libjpeg-turbo, libwebp, Skia's
/// GIF and BMP readers), decoded straight into straight-alpha RGBA8 with no colour-space conversion (a null
/// destination colour space: the file's samples as stored; gAMA, iCCP and ICC profiles are not applied). Frame 0 of an
/// animated file. Only a complete decode is accepted: Skia fills the rows a truncated file lacks and reports
/// IncompleteInput, which is an error here.
/// </summary>
internal static class SkiaDecoder
{
    public static unsafe Image Decode(ReadOnlySpan<byte> data, string name, ImageFormat format, long maxPixels)
    {
        using var bytes = SKData.CreateCopy(data);
        // The codec takes the stream over (and frees it itself when creation fails).
        using var codec = SKCodec.Create(new SKMemoryStream(bytes), out var created);
        if (codec == null) throw ImageDecoder.Undecodable(name, format, Problem(created, header: true));
        int w = codec.Info.Width, h = codec.Info.Height;
        ImageDecoder.CheckSize(name, format, w, h, maxPixels);
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[(long)w * h * 4];
        SKCodecResult result;
        var options = new SKCodecOptions(SKZeroInitialized.Yes);   // frame 0; the array is zeroed already
        fixed (byte* p = rgba) result = codec.GetPixels(info, (IntPtr)p, w * 4, options);
        if (result != SKCodecResult.Success)
            throw ImageDecoder.Undecodable(name, format, Problem(result, header: false));
        if (format == ImageFormat.Jpeg && !JpegHasEnd(data))
            throw ImageDecoder.Undecodable(name, format, "truncated: the file ends before its end-of-image marker");
        return Orient(new Image(w, h, rgba), codec.EncodedOrigin);
    }

    /// <summary>Whether an end-of-image marker (FF D9) follows the first scan (ITU T.81 B.2). libjpeg-turbo decodes a
    /// progressive JPEG cut short to a blurred picture and Skia reports success, so a missing end is checked here.
    /// The walk skips the segments before the first scan by their lengths, as an EXIF thumbnail inside APP1 has its
    /// own scan and end marker; entropy-coded data cannot hold FF D9 (FF is stuffed as FF 00).</summary>
    internal static bool JpegHasEnd(ReadOnlySpan<byte> d)
    {
        int pos = 2;
        while (pos + 4 <= d.Length && d[pos] == 0xFF)
        {
            byte marker = d[pos + 1];
            if (marker == 0xFF) { pos++; continue; }                                   // fill byte
            if (marker == 0xDA) return d[pos..].IndexOf((ReadOnlySpan<byte>)[0xFF, 0xD9]) >= 0;
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) { pos += 2; continue; }       // no length field
            pos += 2 + (d[pos + 2] << 8 | d[pos + 3]);
        }
        return false;
    }

    private static string Problem(SKCodecResult r, bool header) => r switch
    {
        SKCodecResult.IncompleteInput => header ? "truncated: the file ends inside its header"
                                                : "truncated: the file ends before the image data does",
        SKCodecResult.ErrorInInput => "corrupt image data",
        SKCodecResult.InvalidInput => header ? "its header is not valid" : "its image data is not valid",
        SKCodecResult.Unimplemented => "a variant of the format that Skia's decoder does not implement",
        SKCodecResult.InvalidConversion => "its pixel layout cannot be converted to RGBA",
        _ => $"Skia's decoder failed: {r}",
    };

    /// <summary>The stored pixels turned into the picture a viewer shows, for EXIF orientation tag 274 (TIFF 6.0
    /// section 8 / Exif 2.3 4.6.4): value n says where stored row 0 and column 0 belong, e.g. 6 (RightTop): row 0 is
    /// the right edge and column 0 the top, so the picture is the stored one rotated 90 degrees clockwise.</summary>
    internal static Image Orient(Image src, SKEncodedOrigin origin)
    {
        if (origin is < SKEncodedOrigin.TopRight or > SKEncodedOrigin.LeftBottom) return src;   // TopLeft: as stored
        int w = src.Width, h = src.Height;
        bool swap = origin >= SKEncodedOrigin.LeftTop;
        int ow = swap ? h : w, oh = swap ? w : h;
        var o = new Image(ow, oh);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
            {
                var (sx, sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (w - 1 - x, y),
                    SKEncodedOrigin.BottomRight => (w - 1 - x, h - 1 - y),
                    SKEncodedOrigin.BottomLeft => (x, h - 1 - y),
                    SKEncodedOrigin.LeftTop => (y, x),
                    SKEncodedOrigin.RightTop => (y, h - 1 - x),
                    SKEncodedOrigin.RightBottom => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x),   // LeftBottom
                };
                Buffer.BlockCopy(src.Rgba, 4 * (sy * w + sx), o.Rgba, 4 * (y * ow + x), 4);
            }
        return o;
    }
}
