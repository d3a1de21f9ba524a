using Pictor.Imaging.Decoding;
using Pictor.Imaging.Png;

namespace Pictor.Imaging.Tests;

/// <summary>A file that does not decode is an <see cref="ImageFormatException"/> with one line naming the file, the
/// problem and the fix; the size cap holds for every format before any pixel buffer is allocated.</summary>
public class ImageDecoderErrorTests
{
    private static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(ImageDecoderTests.Dir, name));

    private static string Error(byte[] data, string name, PngDecodeOptions? options = null)
    {
        var e = Assert.ThrowsAny<ImageFormatException>(() => ImageDecoder.Decode(data, name, options));
        Assert.StartsWith(name + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e.Message;
    }

    [Theory]
    [InlineData("rgb.jpg", "JPEG")]
    [InlineData("progressive.jpg", "JPEG")]
    [InlineData("lossless.webp", "WebP")]
    [InlineData("lossy.webp", "WebP")]
    [InlineData("rgb.gif", "GIF")]
    [InlineData("rgb24.bmp", "BMP")]
    [InlineData("rgb-lzw.tif", "TIFF")]
    [InlineData("expected-rgb.png", "PNG")]
    public void Truncated_file_is_a_one_line_error_naming_it(string file, string format)
    {
        var whole = Fixture(file);
        foreach (int keep in new[] { whole.Length * 2 / 3, whole.Length / 3, 20 })
        {
            var m = Error(whole[..keep], "photos/" + file);
            Assert.Contains($"not a decodable {format} (", m);
            Assert.EndsWith("; remove it or replace it", m);
        }
    }

    [Fact]
    public void Truncated_jpeg_says_truncated()
    {
        foreach (var file in new[] { "rgb.jpg", "progressive.jpg" })
        {
            var whole = Fixture(file);
            int scan = whole.AsSpan().IndexOf((ReadOnlySpan<byte>)[0xFF, 0xDA]);
            foreach (int keep in new[] { whole.Length - 2, (scan + whole.Length) / 2 })
                Assert.Matches(@"^x\.jpg: not a decodable JPEG \(truncated: the file ends (before the image data " +
                    @"does|before its end-of-image marker)\); remove it or replace it$", Error(whole[..keep], "x.jpg"));
        }
    }

    [Fact]
    public void Garbage_after_a_signature_is_an_error_not_a_crash()
    {
        var rng = new Pictor.Engine.Rng(3);
        foreach (var sig in new[] { [0xFF, 0xD8, 0xFF, 0xE0], "RIFF\0\0\0\0WEBPVP8 "u8.ToArray(), "GIF89a"u8.ToArray(),
                     "BM"u8.ToArray(), "II*\0"u8.ToArray(), PngDecoder.Signature })
        {
            var d = sig.Concat(Enumerable.Range(0, 300).Select(_ => (byte)rng.NextInt(256))).ToArray();
            Assert.Matches("not a decodable|over the limit", Error(d, "noise.bin"));   // noise can give a huge size
        }
    }

    [Fact]
    public void Unknown_and_unsupported_formats_say_what_they_are()
    {
        Assert.Equal("notes.jpg: not an image Pictor reads: its first bytes (68 65 6C 6C 6F 20 77 6F) start no PNG, " +
            "JPEG, WebP, GIF, BMP or TIFF file; convert it to PNG or JPEG, or remove it",
            Error("hello world"u8.ToArray(), "notes.jpg"));
        static byte[] Iso(string brand) => [0, 0, 0, 24, .. "ftyp"u8, .. System.Text.Encoding.ASCII.GetBytes(brand),
            0, 0, 0, 0];
        Assert.Contains("an HEIF/HEIC image", Error(Iso("heic"), "IMG_0001.jpg"));
        Assert.Contains("an AVIF image", Error(Iso("avif"), "a.avif"));
        Assert.Contains("an SVG drawing", Error("<?xml version=\"1.0\"?><svg></svg>"u8.ToArray(), "logo.png"));
        Assert.Equal("empty.png: the file is empty (0 bytes); remove it or replace it", Error([], "empty.png"));
    }

    [Fact]
    public void Size_cap_holds_for_every_format_before_decoding()
    {
        var options = new PngDecodeOptions(MaxPixels: 24 * 16 - 1);   // one pixel fewer than the fixtures have
        string[] files = ["rgb.jpg", "lossless.webp", "rgb.gif", "rgb24.bmp", "rgb-lzw.tif", "expected-rgb.png"];
        foreach (var file in files)
        {
            var m = Error(Fixture(file), file, options);
            Assert.Contains("is 24x16 = 384 pixels, over the limit of 383 that guards against decompression bombs", m);
        }
        // A JPEG whose frame header claims 60000 x 60000 (3.6 gigapixels) is refused on the header.
        var jpeg = Fixture("rgb.jpg");
        int sof = jpeg.AsSpan().IndexOf((ReadOnlySpan<byte>)[0xFF, 0xC0]);
        jpeg[sof + 5] = jpeg[sof + 7] = 0xEA; jpeg[sof + 6] = jpeg[sof + 8] = 0x60;
        Assert.Contains("60000x60000 = 3,600,000,000 pixels, over the limit of 67,108,864", Error(jpeg, "bomb.jpg"));
    }

    [Fact]
    public void Png_errors_keep_their_type_and_name_the_file()
    {
        var png = Fixture("expected-rgb.png");
        png[png.AsSpan().IndexOf("IDAT"u8) + 6] ^= 0xFF;   // a byte of the image data: IDAT's CRC no longer matches
        var e = Assert.Throws<PngFormatException>(() => Image.Load(png));
        Assert.StartsWith("image: not a decodable PNG (chunk '", e.Message);
        Assert.Contains("fails its CRC check", e.Message);
    }
}
