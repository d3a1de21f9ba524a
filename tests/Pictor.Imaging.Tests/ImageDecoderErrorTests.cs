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
    public void Corrupt_png_is_refused_by_both_png_decoders()
    {
        var png = Fixture("expected-rgb.png");
        png[png.AsSpan().IndexOf("IDAT"u8) + 6] ^= 0xFF;   // a byte of the image data: IDAT's CRC no longer matches
        Assert.Equal("w.png: not a decodable PNG (corrupt image data); remove it or replace it", Error(png, "w.png"));
        Assert.Contains("fails its CRC check", Assert.Throws<PngFormatException>(() => PngDecoder.Decode(png)).Message);
    }

    [Fact]
    public void Png_pixels_from_skia_equal_our_decoders_on_pngsuite()
    {
        // The reason ImageDecoder may hand PNG to Skia: the same bytes as PngDecoder (which PngSuiteTests checks
        // against the suite's reference pixels) on every valid suite file.
        var dir = Path.Combine(Pictor.TestSupport.Fixtures.Dir, "pngsuite");
        var files = Directory.GetFiles(dir, "*.png").Where(f => !Path.GetFileName(f).StartsWith('x')).ToList();
        Assert.Equal(161, files.Count);
        foreach (var f in files)
            Assert.True(PngDecoder.DecodeFile(f).Rgba8.AsSpan().SequenceEqual(Image.Load(f).Rgba), Path.GetFileName(f));
        foreach (var f in Directory.GetFiles(dir, "x*.png"))   // and it refuses the 14 corrupt ones, as ours does
            Assert.StartsWith(f + ": ", Assert.ThrowsAny<ImageFormatException>(() => Image.Load(f)).Message);
    }

    /// <summary>The fuzzer's TIFF findings (bench/RESULTS.md): headers that made LibTiff.NET loop for minutes or
    /// allocate hundreds of megabytes are refused on the header, at once.</summary>
    [Theory]
    [InlineData(257, 0x7FFFFFFFu, "over the limit")]                                 // ImageLength: strip tables
    [InlineData(279, 318_767_187u, "strip 0 claims more bytes than the file has")]   // StripByteCounts
    [InlineData(277, 60u, "60 samples per pixel; Pictor reads up to 5")]              // SamplesPerPixel
    public void Crafted_tiff_header_is_refused_before_libtiff_reads_it(int tag, uint value, string problem)
    {
        var tif = Fixture("rgb-lzw.tif");
        int entry = TiffEntry(tif, tag);
        BitConverter.TryWriteBytes(tif.AsSpan(entry + 2), (ushort)4);   // as a LONG (type 4), count 1
        BitConverter.TryWriteBytes(tif.AsSpan(entry + 8), value);
        var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        Assert.Contains(problem, Error(tif, "crafted.tif"));
        Assert.True(System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds < 1);
    }

    [Fact]
    public void Tiff_entry_claiming_more_values_than_the_file_holds_is_refused()
    {
        var tif = Fixture("rgb-lzw.tif");
        BitConverter.TryWriteBytes(tif.AsSpan(TiffEntry(tif, 258) + 4), 402_653_185u);   // BitsPerSample count
        Assert.Matches(@"directory entry \d+ \(tag 258\) claims 402653185 values, more than the file holds",
            Error(tif, "crafted.tif"));
    }

    /// <summary>The offset of the first IFD's entry for <paramref name="tag"/> in a little-endian TIFF.</summary>
    private static int TiffEntry(byte[] tif, int tag)
    {
        Assert.Equal((byte)'I', tif[0]);
        int ifd = BitConverter.ToInt32(tif, 4), n = BitConverter.ToUInt16(tif, ifd);
        for (int k = 0; k < n; k++)
            if (BitConverter.ToUInt16(tif, ifd + 2 + 12 * k) == tag) return ifd + 2 + 12 * k;
        throw new InvalidOperationException($"rgb-lzw.tif has no tag {tag}");
    }
}
