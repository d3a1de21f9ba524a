using Pictor.Imaging.Datasets;
using SkiaSharp;

namespace Pictor.Imaging.Tests;

/// <summary>An image folder of the formats people have (JPEG photos, WebP, TIFF, ...) packs like one of PNGs; a file
/// that does not decode is skipped with its captions and one warning line naming it, or is an error in strict
/// mode.</summary>
public class DatasetDecodingTests
{
    /// <summary>A folder of JPEG photos (Skia-encoded solid colours), a WebP, a TIFF and a PNG, each with a caption,
    /// plus <paramref name="bad"/>: files listed in metadata.jsonl that do not decode.</summary>
    internal static string PhotoFolder(params (string File, byte[] Bytes)[] bad)
    {
        var dir = Directory.CreateTempSubdirectory("pictor-photos").FullName;
        var lines = new List<string>();
        void Add(string file, byte[] bytes, string caption)
        {
            File.WriteAllBytes(Path.Combine(dir, file), bytes);
            lines.Add($"{{\"file_name\": \"{file}\", \"text\": \"{caption}\"}}");
        }
        static byte[] Jpeg(Image img) => ImageDecoderTests.SkiaEncode(img, SKEncodedImageFormat.Jpeg, 95);
        Add("IMG_0001.JPG", Jpeg(Image.Solid(40, 30, 220, 20, 20)), "red");
        foreach (var (file, bytes) in bad) Add(file, bytes, "lost with " + file);
        Add("IMG_0002.jpeg", Jpeg(Image.Solid(30, 40, 20, 200, 20)), "green");
        var webp = ImageDecoderTests.SkiaEncode(Image.Solid(16, 16, 20, 20, 220), SKEncodedImageFormat.Webp, 100);
        Add("b.webp", webp, "blue");
        Add("scan.tif", File.ReadAllBytes(Path.Combine(ImageDecoderTests.Dir, "rgb-lzw.tif")), "blocks");
        var png = Path.Combine(dir, "w.png");
        Image.Solid(8, 8, 250, 250, 250).Save(png);
        lines.Add("{\"file_name\": \"w.png\", \"text\": \"white\"}");
        File.WriteAllLines(Path.Combine(dir, "metadata.jsonl"), lines);
        return dir;
    }

    internal static byte[] TruncatedJpeg()
    {
        var whole = ImageDecoderTests.SkiaEncode(ImageDecoderTests.Gradient(), SKEncodedImageFormat.Jpeg, 90);
        return whole[..(whole.Length * 3 / 4)];
    }

    [Fact]
    public void Folder_of_photos_packs_and_skips_each_bad_file_with_one_warning()
    {
        var dir = PhotoFolder(("broken.jpg", TruncatedJpeg()), ("notes.jpg", "not a photo"u8.ToArray()));
        var warnings = new List<string>();
        var path = Path.Combine(dir, "cache.bin");
        var items = CaptionedImages.ReadImageFolder(dir);
        int packed = PackedDataset.Build(items, 8, path, badImages: new BadImagePolicy(Warn: warnings.Add));
        Assert.Equal(5, packed);
        Assert.Equal(2, warnings.Count);
        Assert.StartsWith($"warning: skipped {Path.Combine(dir, "broken.jpg")}: not a decodable JPEG (truncated",
            warnings[0]);
        Assert.StartsWith($"warning: skipped {Path.Combine(dir, "notes.jpg")}: not an image Pictor reads", warnings[1]);
        Assert.All(warnings, w => Assert.EndsWith("(its 1 caption dropped with it; --strict makes this an error)", w));
        Assert.All(warnings, w => Assert.DoesNotContain('\n', w));
        using var ds = PackedDataset.Open(path);
        Assert.Equal(5, ds.Count);
        Assert.Equal(["red", "green", "blue", "blocks", "white"],
            Enumerable.Range(0, 5).Select(i => ds.Captions(i)[0]));
        var px = new float[3 * 64];
        ds.ReadImage(1, px);   // the green JPEG: its captions stayed with it
        Assert.True(px[0] < -0.7f && px[64] > 0.4f && px[128] < -0.7f,
            $"image 1 is not green: {px[0]}, {px[64]}, {px[128]}");
    }

    [Fact]
    public void Strict_mode_makes_a_bad_file_an_error_that_names_it()
    {
        var dir = PhotoFolder(("broken.jpg", TruncatedJpeg()));
        var items = CaptionedImages.ReadImageFolder(dir);
        var e = Assert.Throws<DatasetFormatException>(() =>
            PackedDataset.Build(items, 8, Path.Combine(dir, "cache.bin"), badImages: new BadImagePolicy(Strict: true)));
        Assert.StartsWith($"{Path.Combine(dir, "broken.jpg")}: not a decodable JPEG (truncated", e.Message);
        Assert.EndsWith("Strict mode (--strict) stops at an image that does not decode; leave --strict out to " +
            "skip such files with a warning", e.Message);
        Assert.False(File.Exists(Path.Combine(dir, "cache.bin")), "a failed pack must leave no cache behind");
    }

    [Fact]
    public void A_set_where_nothing_decodes_is_an_error()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-photos").FullName;
        File.WriteAllBytes(Path.Combine(dir, "a.jpg"), TruncatedJpeg());
        File.WriteAllLines(Path.Combine(dir, "metadata.jsonl"), ["{\"file_name\": \"a.jpg\", \"text\": \"x\"}"]);
        var warnings = new List<string>();
        var e = Assert.Throws<DatasetFormatException>(() => PackedDataset.Build(CaptionedImages.ReadImageFolder(dir), 8,
            Path.Combine(dir, "cache.bin"), badImages: new BadImagePolicy(Warn: warnings.Add)));
        Assert.StartsWith("none of the 1 images in the set packed into", e.Message);
        Assert.Single(warnings);
    }
}
