using Pictor.Engine;
using Pictor.Imaging.Png;
using Pictor.TestSupport;

namespace Pictor.Imaging.Tests;

public class PngEncoderTests
{
    private static byte[] Noise(int n, ulong seed, bool smooth)
    {
        var r = new Rng(seed); var a = new byte[n];
        for (int i = 0; i < n; i++) a[i] = smooth ? (byte)(i / 7 % 256) : (byte)r.NextInt(256);
        return a;
    }

    [Theory]
    [InlineData(1, 1, true)] [InlineData(7, 3, false)] [InlineData(33, 17, true)] [InlineData(64, 64, false)]
    public void Round_trips_rgb_and_rgba(int w, int h, bool alpha)
    {
        foreach (bool smooth in new[] { false, true })
        {
            var px = Noise(w * h * (alpha ? 4 : 3), 1, smooth);
            var png = PngEncoder.Encode(px, w, h, alpha);
            var img = PngDecoder.Decode(png);
            Assert.Equal(w, img.Width); Assert.Equal(h, img.Height);
            var want = alpha ? px : Enumerable.Range(0, w * h).SelectMany(i => new[] { px[3 * i], px[3 * i + 1], px[3 * i + 2], (byte)255 }).ToArray();
            Assert.Equal(want, img.Rgba8);
        }
    }

    [Fact]
    public void Filter_heuristic_compresses_smooth_images_better_than_no_filter()
    {
        // A horizontal gradient: filter 1 (Sub) turns each row into a run of equal bytes.
        int w = 256, h = 64;
        var px = new byte[w * h * 3];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) { px[3 * (y * w + x)] = (byte)x; px[3 * (y * w + x) + 1] = (byte)(x / 2 + y); px[3 * (y * w + x) + 2] = (byte)(255 - x); }
        var png = PngEncoder.Encode(px, w, h, hasAlpha: false);
        using var ms = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(ms, System.IO.Compression.CompressionLevel.Optimal, true))
            for (int y = 0; y < h; y++) { z.WriteByte(0); z.Write(px, y * w * 3, w * 3); }
        Assert.True(png.Length < ms.Length, $"filtered PNG {png.Length} bytes vs unfiltered data {ms.Length}");
    }

    [Fact]
    public void Text_chunks_round_trip_latin1_and_utf8()
    {
        var text = new[] { new KeyValuePair<string, string>("Comment", "plain café"), new("Title", "emoji 😀 and 日本") };
        var img = PngDecoder.Decode(PngEncoder.Encode(new byte[4], 1, 1, true, text));
        Assert.Equal("plain café", img.GetText("Comment"));
        Assert.Equal("emoji 😀 and 日本", img.GetText("Title"));
    }

    [Fact]
    public void Generation_parameters_in_a1111_form_and_json_round_trip()
    {
        var p = new GenerationParameters("a red circle", "blurry", 20, "DPM++ 2M", 3.5f, 42, 32, 32, "abc123", "shapes");
        Assert.Equal("a red circle\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 3.5, Seed: 42, Size: 32x32, Model hash: abc123, Model: shapes", p.ToA1111());
        var img = PngDecoder.Decode(PngEncoder.Encode(new byte[4], 1, 1, true, p.ToPngText()));
        Assert.Equal(p.ToA1111(), img.GetText("parameters"));
        Assert.Equal(p, GenerationParameters.FromPng(img));
        var noNeg = p with { NegativePrompt = null };
        Assert.DoesNotContain("Negative prompt", noNeg.ToA1111());
    }

    [Fact]
    public void Bad_input_gets_clear_errors()
    {
        Assert.Contains("do not make a 2x2 RGBA image", Assert.Throws<ArgumentException>(() => PngEncoder.Encode(new byte[15], 2, 2)).Message);
        Assert.Contains("keyword", Assert.Throws<ArgumentException>(() => PngEncoder.Encode(new byte[4], 1, 1, true, [new("", "x")])).Message);
        var big = PngEncoder.Encode(new byte[4 * 100 * 100], 100, 100);
        var e = Assert.Throws<PngFormatException>(() => PngDecoder.Decode(big, new PngDecodeOptions(MaxPixels: 5000)));
        Assert.Contains("10000 pixels, over the limit of 5000", e.Message);
    }

    [Fact]
    public void Atomic_save_leaves_no_temp_file()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-png").FullName;
        var path = Path.Combine(dir, "a.png");
        PngEncoder.Save(path, new byte[12], 2, 2, hasAlpha: false);
        PngEncoder.Save(path, new byte[12], 2, 2, hasAlpha: false);   // overwrite
        Assert.Equal(new[] { "a.png" }, Directory.GetFiles(dir).Select(Path.GetFileName).ToArray());
    }
}

public class ImageTests
{
    [Fact]
    public void Area_downscale_averages_blocks_exactly()
    {
        var img = new Image(4, 2);
        for (int i = 0; i < 8; i++) { img.Rgba[4 * i] = (byte)(i * 10); img.Rgba[4 * i + 1] = 100; img.Rgba[4 * i + 2] = 7; img.Rgba[4 * i + 3] = 255; }
        var s = img.ResizeArea(2, 1);
        // block 0: pixels 0,1,4,5 -> R (0 + 10 + 40 + 50) / 4 = 25; block 1: 2,3,6,7 -> 45
        Assert.Equal(new byte[] { 25, 100, 7, 255, 45, 100, 7, 255 }, s.Rgba);
        var c = Image.Solid(9, 7, 12, 34, 56).ResizeArea(4, 3);   // fractional coverage keeps constants constant
        Assert.All(Enumerable.Range(0, 12), i => Assert.Equal(new byte[] { 12, 34, 56, 255 }, c.Rgba.AsSpan(4 * i, 4).ToArray()));
    }

    [Fact]
    public void Bilinear_upscale_interpolates_between_centres()
    {
        var img = new Image(2, 1, [0, 0, 0, 255, 200, 200, 200, 255]);
        var u = img.ResizeBilinear(4, 1);
        // output centres map to input x = -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1)
        Assert.Equal(new byte[] { 0, 50, 150, 200 }, Enumerable.Range(0, 4).Select(i => u.Rgba[4 * i]).ToArray());
    }

    [Fact]
    public void Crop_composite_tensor_round_trip_and_grid()
    {
        var img = new Image(5, 3);
        for (int i = 0; i < 15; i++) { img.Rgba[4 * i] = (byte)i; img.Rgba[4 * i + 3] = 255; }
        var c = img.CenterCrop(3, 3);
        Assert.Equal(new byte[] { 1, 2, 3, 6, 7, 8, 11, 12, 13 }, Enumerable.Range(0, 9).Select(i => c.Rgba[4 * i]).ToArray());

        var half = new Image(1, 1, [200, 0, 100, 128]).CompositeOver(255, 255, 255);
        Assert.Equal(new byte[] { 227, 127, 177, 255 }, half.Rgba);   // 200*128/255 + 255*127/255 = 227.4

        var rt = Image.FromTensor(img.ToTensor());
        Assert.Equal(img.Rgba, rt.Rgba);
        var t = Image.Solid(2, 2, 0, 255, 128).ToTensor().ToArray();
        Assert.Equal(-1f, t[0]); Assert.Equal(1f, t[4]); Assert.Equal(128 / 127.5f - 1f, t[8], 6);

        var grid = Image.Grid([Image.Solid(2, 2, 1, 1, 1), Image.Solid(2, 2, 2, 2, 2), Image.Solid(2, 2, 3, 3, 3)], columns: 2, pad: 1);
        Assert.Equal(2 * 2 + 3, grid.Width); Assert.Equal(2 * 2 + 3, grid.Height);
        Assert.Equal(255, grid.Rgba[0]);                              // padding
        Assert.Equal(1, grid.Rgba[4 * (1 * 7 + 1)]);                  // first tile at (1, 1)
        Assert.Equal(2, grid.Rgba[4 * (1 * 7 + 4)]);                  // second at (4, 1)
        Assert.Equal(3, grid.Rgba[4 * (4 * 7 + 1)]);                  // third on row 2
        Assert.Equal(255, grid.Rgba[4 * (4 * 7 + 4)]);                // empty slot stays background
    }
}
