using Pictor.Imaging.Decoding;
using Pictor.TestSupport;
using BitMiracle.LibTiff.Classic;
using SkiaSharp;

namespace Pictor.Imaging.Tests;

/// <summary>Every format <see cref="ImageDecoder"/> reads, on files made by an encoder other than the decoder under
/// test: Pillow's fixtures (tests/fixtures/images, README there) and, at test time, Skia's encoders. Pixels are
/// compared with the picture the file was made from, exactly for lossless formats and within a codec tolerance for
/// lossy ones.</summary>
public class ImageDecoderTests
{
    internal static readonly string Dir = Path.Combine(Fixtures.Dir, "images");
    private static Image Expected(string name) => Image.Load(Path.Combine(Dir, name));

    /// <summary>Largest per-sample difference of RGB (where the expected alpha is not 0; with
    /// <paramref name="interior"/>, only 2 or more pixels inside a fixture's 8x8 blocks, away from the edges that a
    /// lossy codec's chroma subsampling blurs) and of alpha (everywhere).</summary>
    internal static (int Rgb, int Alpha) MaxDiff(Image got, Image want, bool interior = false)
    {
        Assert.Equal((want.Width, want.Height), (got.Width, got.Height));
        int rgb = 0, alpha = 0;
        for (int i = 0; i < want.Width * want.Height; i++)
        {
            alpha = Math.Max(alpha, Math.Abs(got.Rgba[4 * i + 3] - want.Rgba[4 * i + 3]));
            if (want.Rgba[4 * i + 3] == 0) continue;
            if (interior && (i % want.Width % 8 is < 2 or > 5 || i / want.Width % 8 is < 2 or > 5)) continue;
            for (int c = 0; c < 3; c++) rgb = Math.Max(rgb, Math.Abs(got.Rgba[4 * i + c] - want.Rgba[4 * i + c]));
        }
        return (rgb, alpha);
    }

    [Theory]
    [InlineData("rgb.jpg", "expected-rgb.png", 6)]
    [InlineData("progressive.jpg", "expected-rgb.png", 6)]
    [InlineData("cmyk.jpg", "expected-rgb.png", 6)]
    [InlineData("gray.jpg", "expected-gray.png", 2)]
    [InlineData("lossy.webp", "expected-rgb.png", 8)]        // 4:2:0 chroma: compared inside the blocks
    [InlineData("lossless.webp", "expected-rgba.png", 0)]
    [InlineData("animated.webp", "expected-rgb.png", 0)]       // frame 0 of 2 (frame 1 is the inverse)
    [InlineData("rgb.gif", "expected-rgb.png", 0)]
    [InlineData("animated.gif", "expected-rgb.png", 0)]
    [InlineData("rgb24.bmp", "expected-rgb.png", 0)]
    [InlineData("palette8.bmp", "expected-rgb.png", 0)]
    [InlineData("mono1.bmp", "expected-mono.png", 0)]
    [InlineData("rgb-lzw.tif", "expected-rgb.png", 0)]
    [InlineData("rgb-jpeg.tif", "expected-rgb.png", 6)]
    [InlineData("palette.tif", "expected-rgb.png", 0)]
    [InlineData("cmyk.tif", "expected-rgb.png", 0)]
    [InlineData("gray16.tif", "expected-gray.png", 0)]        // 16-bit samples keep their high byte
    [InlineData("rgba-deflate.tif", "expected-rgba.png", 2)]  // libtiff premultiplies; undone, rounding at alpha 64
    public void Fixture_decodes_to_the_picture_it_was_made_from(string file, string expected, int tolerance)
    {
        var got = Image.Load(Path.Combine(Dir, file));
        var (rgb, alpha) = MaxDiff(got, Expected(expected), interior: file == "lossy.webp");
        Assert.True(rgb <= tolerance, $"{file}: max colour difference {rgb}, tolerance {tolerance}");
        Assert.True(alpha == 0, $"{file}: max alpha difference {alpha}");
    }

    [Fact]
    public void Gif_transparent_colour_becomes_alpha_zero()
    {
        var img = Image.Load(Path.Combine(Dir, "transparent.gif"));
        var want = Expected("expected-rgb.png");
        for (int k = 0; k < 6; k++)
        {
            int p = 4 * ((8 * (k / 3) + 4) * 24 + 8 * (k % 3) + 4);
            Assert.Equal(k == 2 ? 0 : 255, img.Rgba[p + 3]);
            if (k != 2) Assert.Equal(want.Rgba.AsSpan(p, 3).ToArray(), img.Rgba.AsSpan(p, 3).ToArray());
        }
    }

    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)]
    [InlineData(5)] [InlineData(6)] [InlineData(7)] [InlineData(8)]
    public void Jpeg_exif_orientation_is_applied(int orientation)
    {
        // Each file stores the picture turned the other way (portrait files for 5-8) with EXIF tag 274 = n.
        var got = Image.Load(Path.Combine(Dir, $"orient-{orientation}.jpg"));
        var (rgb, _) = MaxDiff(got, Expected("expected-rgb.png"));
        Assert.True(rgb <= 6, $"orientation {orientation}: max colour difference {rgb}: the picture is not upright");
    }

    /// <summary>A smooth 64x48 picture with an alpha ramp: the kind a lossy codec keeps well.</summary>
    internal static Image Gradient(bool alpha = false)
    {
        var img = new Image(64, 48);
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 64; x++)
            {
                int p = 4 * (y * 64 + x);
                img.Rgba[p] = (byte)(x * 4); img.Rgba[p + 1] = (byte)(y * 5); img.Rgba[p + 2] = (byte)(255 - x * 2 - y);
                img.Rgba[p + 3] = alpha ? (byte)(64 + y * 4) : (byte)255;
            }
        return img;
    }

    /// <summary>Encodes with Skia (SKImage.Encode): the library's own encoder, not the decoder under test.</summary>
    internal static byte[] SkiaEncode(Image img, SKEncodedImageFormat format, int quality)
    {
        var info = new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var sk = SKImage.FromPixelCopy(info, img.Rgba);
        using var data = sk.Encode(format, quality);
        return data.ToArray();
    }

    private static double Psnr(Image a, Image b)
    {
        double se = 0;
        for (int i = 0; i < a.Rgba.Length; i++) if (i % 4 != 3) se += Math.Pow(a.Rgba[i] - b.Rgba[i], 2);
        return 10 * Math.Log10(255.0 * 255 / (se / (a.Width * a.Height * 3)));
    }

    [Fact]
    public void Skia_encoded_jpeg_and_webp_decode_to_their_pictures()
    {
        var src = Gradient();
        foreach (var (format, q) in new[] { (SKEncodedImageFormat.Jpeg, 90), (SKEncodedImageFormat.Webp, 90) })
        {
            var bytes = SkiaEncode(src, format, q);
            var want = format == SKEncodedImageFormat.Jpeg ? ImageFormat.Jpeg : ImageFormat.WebP;
            Assert.Equal(want, ImageDecoder.Sniff(bytes));
            var got = ImageDecoder.Decode(bytes, $"gradient.{format}");
            double psnr = Psnr(got, src);
            Assert.True(psnr > 35, $"{format}: PSNR {psnr:F1} dB");
        }
        // Lossless WebP keeps straight alpha and the colours exactly.
        var withAlpha = Gradient(alpha: true);
        var lossless = ImageDecoder.Decode(SkiaEncode(withAlpha, SKEncodedImageFormat.Webp, 100), "gradient.webp");
        var (rgb, alpha) = MaxDiff(lossless, withAlpha);
        Assert.True(rgb <= 1 && alpha == 0, $"lossless WebP: colour diff {rgb}, alpha diff {alpha}");
    }

    [Fact]
    public void Bmp_written_by_hand_decodes_exactly()
    {
        // BITMAPINFOHEADER, 24-bit BGR, rows bottom-up padded to 4 bytes (width 5: 15 bytes + 1 pad).
        var src = Gradient().CenterCrop(5, 3);
        int stride = 16, size = 54 + stride * 3;
        var b = new byte[size];
        "BM"u8.CopyTo(b);
        BitConverter.TryWriteBytes(b.AsSpan(2), size); BitConverter.TryWriteBytes(b.AsSpan(10), 54);
        BitConverter.TryWriteBytes(b.AsSpan(14), 40); BitConverter.TryWriteBytes(b.AsSpan(18), 5);
        BitConverter.TryWriteBytes(b.AsSpan(22), 3); BitConverter.TryWriteBytes(b.AsSpan(26), (short)1);
        BitConverter.TryWriteBytes(b.AsSpan(28), (short)24);
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 5; x++)
                for (int c = 0; c < 3; c++) b[54 + (2 - y) * stride + 3 * x + c] = src.Rgba[4 * (y * 5 + x) + 2 - c];
        Assert.Equal(src.Rgba, ImageDecoder.Decode(b, "hand.bmp").Rgba);
    }

    [Fact]
    public void Sixteen_bit_rgb_tiff_written_by_libtiff_keeps_the_high_bytes()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("pictor-tiff").FullName, "rgb16.tif");
        var src = Gradient();
        using (var tif = Tiff.Open(path, "w"))
        {
            tif.SetField(TiffTag.IMAGEWIDTH, 64);
            tif.SetField(TiffTag.IMAGELENGTH, 48);
            tif.SetField(TiffTag.SAMPLESPERPIXEL, 3);
            tif.SetField(TiffTag.BITSPERSAMPLE, 16);
            tif.SetField(TiffTag.PHOTOMETRIC, Photometric.RGB);
            tif.SetField(TiffTag.PLANARCONFIG, PlanarConfig.CONTIG);
            tif.SetField(TiffTag.ROWSPERSTRIP, 48);
            var row = new byte[64 * 6];
            for (int y = 0; y < 48; y++)
            {
                for (int x = 0; x < 64; x++)
                    for (int c = 0; c < 3; c++)
                    {
                        int v = src.Rgba[4 * (y * 64 + x) + c] * 256 + 0x7F;   // the high byte is the 8-bit value
                        row[6 * x + 2 * c] = (byte)v; row[6 * x + 2 * c + 1] = (byte)(v >> 8);   // little-endian file
                    }
                Assert.True(tif.WriteScanline(row, y));
            }
        }
        Assert.Equal(src.Rgba, Image.Load(path).Rgba);
    }

    [Fact]
    public void Format_comes_from_the_content_not_the_extension()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-sniff").FullName;
        var jpegNamedPng = Path.Combine(dir, "photo.png");
        File.Copy(Path.Combine(Dir, "rgb.jpg"), jpegNamedPng);
        Assert.True(MaxDiff(Image.Load(jpegNamedPng), Expected("expected-rgb.png")).Rgb <= 6);
        foreach (var (file, format) in new[] { ("rgb.jpg", ImageFormat.Jpeg), ("lossy.webp", ImageFormat.WebP),
                     ("rgb.gif", ImageFormat.Gif), ("rgb24.bmp", ImageFormat.Bmp), ("rgb-lzw.tif", ImageFormat.Tiff),
                     ("expected-rgb.png", ImageFormat.Png) })
            Assert.Equal(format, ImageDecoder.Sniff(File.ReadAllBytes(Path.Combine(Dir, file))));
    }
}
