using Pictor.Imaging.Png;

namespace Pictor.Imaging.Decoding;

/// <summary>
/// The one way Pictor turns an image file into RGBA8 pixels. The format comes from the first bytes (a photo saved as
/// .png that is really a JPEG decodes as the JPEG it is); each format goes to its library:
///   PNG, JPEG, WebP, GIF, BMP: Skia's codecs through SkiaSharp (<see cref="SkiaDecoder"/>). For PNG pixels Skia's
///   codec gives the same bytes as our <see cref="PngDecoder"/> on all of PngSuite, 1.7-5x faster (bench/RESULTS.md,
///   "PNG: our decoder or Skia's"); ours stays for what only it gives: text chunks (<see cref="GenerationParameters"/>)
///   and 16-bit samples;
///   TIFF: LibTiff.NET (<see cref="TiffDecoder"/>).
/// Every format gets the same size cap (<see cref="PngDecodeOptions.MaxPixels"/>), checked on the header before a
/// pixel buffer is allocated, and every failure is an <see cref="ImageFormatException"/> whose one-line message names
/// the file, the problem and the fix. Conversions: grey, palette, CMYK, 16-bit and premultiplied sources all end as
/// straight-alpha RGBA8; colour profiles and gamma are not applied (as for PNG); an animated GIF or WebP gives its
/// first frame; a JPEG's EXIF orientation (as Skia reports it) is applied, so the pixels are the photo as a viewer
/// shows it.
/// </summary>
public static class ImageDecoder
{
    /// <summary>The formats, as messages list them.</summary>
    public const string Supported = "PNG, JPEG, WebP, GIF, BMP or TIFF";

    /// <summary>Reads and decodes a file; see the type's summary.</summary>
    public static Image DecodeFile(string path, PngDecodeOptions? options = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"image '{path}' does not exist", path);
        long length = new FileInfo(path).Length;
        if (length > int.MaxValue - 64)
            throw new ImageFormatException(
                $"{path}: the file is {length:N0} bytes, larger than Pictor reads; remove it or replace it");
        return Decode(File.ReadAllBytes(path), path, options);
    }

    /// <summary>Decodes an image held in memory; <paramref name="name"/> (its file, usually) starts every
    /// message.</summary>
    public static Image Decode(ReadOnlySpan<byte> data, string name = "image", PngDecodeOptions? options = null)
    {
        options ??= new PngDecodeOptions();
        if (data.Length == 0)
            throw new ImageFormatException($"{name}: the file is empty (0 bytes); remove it or replace it");
        var format = Sniff(data);
        switch (format)
        {
            case ImageFormat.Png or ImageFormat.Jpeg or ImageFormat.WebP or ImageFormat.Gif or ImageFormat.Bmp:
                return SkiaDecoder.Decode(data, name, format, options.MaxPixels);
            case ImageFormat.Tiff: return TiffDecoder.Decode(data, name, options.MaxPixels);
            default: throw new ImageFormatException($"{name}: {Unrecognised(data)}");
        }
    }

    /// <summary>The format the first bytes announce (file signatures: PNG spec 5.2, JPEG SOI + a marker, "GIF8",
    /// "BM", RIFF....WEBP, TIFF's "II*\0" / "MM\0*" and BigTIFF's "+"); <see cref="ImageFormat.Unknown"/>
    /// otherwise.</summary>
    public static ImageFormat Sniff(ReadOnlySpan<byte> d)
    {
        if (d.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G'])) return ImageFormat.Png;
        if (d.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])) return ImageFormat.Jpeg;
        if (d.StartsWith("GIF8"u8)) return ImageFormat.Gif;
        if (d.StartsWith("BM"u8)) return ImageFormat.Bmp;
        if (d.Length >= 12 && d.StartsWith("RIFF"u8) && d[8..12].SequenceEqual("WEBP"u8)) return ImageFormat.WebP;
        if (d.StartsWith("II*\0"u8) || d.StartsWith("MM\0*"u8) || d.StartsWith("II+\0"u8) || d.StartsWith("MM\0+"u8))
            return ImageFormat.Tiff;
        return ImageFormat.Unknown;
    }

    public static string NameOf(ImageFormat f) => f switch
    {
        ImageFormat.Png => "PNG", ImageFormat.Jpeg => "JPEG", ImageFormat.WebP => "WebP", ImageFormat.Gif => "GIF",
        ImageFormat.Bmp => "BMP", ImageFormat.Tiff => "TIFF", _ => "image",
    };

    /// <summary>The error for a file of a known format that its decoder refused.</summary>
    internal static ImageFormatException Undecodable(string name, ImageFormat format, string problem) =>
        new($"{name}: not a decodable {NameOf(format)} ({OneLine(problem)}); remove it or replace it");

    /// <summary>The decompression-bomb guard, on the header's size, before any pixel buffer exists.</summary>
    internal static void CheckSize(string name, ImageFormat format, long width, long height, long maxPixels)
    {
        if (width < 1 || height < 1) throw Undecodable(name, format, $"its header gives the size {width}x{height}");
        if (width * height > maxPixels)
            throw new ImageFormatException($"{name}: the {NameOf(format)} is {width}x{height} = " +
                $"{width * height:N0} pixels, over the limit of {maxPixels:N0} that guards against decompression " +
                "bombs; downscale it, or raise PngDecodeOptions.MaxPixels if it is genuine");
    }

    internal static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    /// <summary>Signatures of formats people meet that Pictor does not read, to name them in the error.</summary>
    private static readonly (byte[] Signature, string What)[] Unsupported =
    [
        ([0xFF, 0x0A], "a JPEG XL image"),
        ([0, 0, 0, 12, (byte)'J', (byte)'X', (byte)'L', (byte)' '], "a JPEG XL image"),
        ([0, 0, 0, 12, (byte)'j', (byte)'P', (byte)' ', (byte)' '], "a JPEG 2000 image"),
        ([0xFF, 0x4F, 0xFF, 0x51], "a JPEG 2000 codestream"), ("8BPS"u8.ToArray(), "a Photoshop document"),
        ("%PDF"u8.ToArray(), "a PDF"),
    ];

    /// <summary>What an unrecognised file is, when its signature says, else its first bytes.</summary>
    private static string Unrecognised(ReadOnlySpan<byte> d)
    {
        const string Fix = "convert it to PNG or JPEG, or remove it";
        if (d.Length >= 12 && d[4..8].SequenceEqual("ftyp"u8))   // ISO base media: HEIF/HEIC, AVIF (the brand says)
        {
            bool avif = d[8..12].SequenceEqual("avif"u8) || d[8..12].SequenceEqual("avis"u8);
            string what = avif ? "an AVIF image" : "an HEIF/HEIC image (or another ISO media file)";
            return $"{what}, which Pictor does not decode; {Fix}";
        }
        foreach (var (sig, what) in Unsupported)
            if (d.StartsWith(sig)) return $"{what}, which Pictor does not decode; {Fix}";
        var head = d[..Math.Min(8, d.Length)];
        if (head.IndexOf("<"u8) >= 0 && d[..Math.Min(1024, d.Length)].IndexOf("<svg"u8) >= 0)
            return $"an SVG drawing, which Pictor does not rasterise; {Fix}";
        string hex = string.Join(' ', head.ToArray().Select(b => b.ToString("X2")));
        return $"not an image Pictor reads: its first bytes ({hex}) start no {Supported} file; {Fix}";
    }
}
