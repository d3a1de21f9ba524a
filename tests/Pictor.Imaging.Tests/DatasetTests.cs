using Pictor.Imaging.Datasets;

namespace Pictor.Imaging.Tests;

public class DatasetTests
{
    private static string Folder(params (string File, string? Line)[] entries)
    {
        var dir = Directory.CreateTempSubdirectory("pictor-ds").FullName;
        var lines = new List<string>();
        foreach (var (f, line) in entries)
        {
            if (f.Length > 0) Image.Solid(4, 6, 200, 10, 10).Save(Path.Combine(dir, f));
            if (line != null) lines.Add(line);
        }
        File.WriteAllLines(Path.Combine(dir, "metadata.jsonl"), lines);
        return dir;
    }

    [Fact]
    public void Image_folder_reads_strings_and_lists_of_captions()
    {
        var dir = Folder(("a.png", "{\"file_name\": \"a.png\", \"text\": \"a red thing\"}"), ("b.png", "{\"file_name\": \"b.png\", \"text\": [\"one\", \"two\"]}"));
        var items = CaptionedImages.ReadImageFolder(dir);
        Assert.Equal(2, items.Count);
        Assert.Equal(new[] { "one", "two" }, items[1].Captions);
    }

    [Fact]
    public void Image_folder_errors_name_the_line_and_the_fix()
    {
        var e = Assert.Throws<DatasetFormatException>(() => CaptionedImages.ReadImageFolder(Folder(("a.png", "{\"file_name\": \"a.png\", \"text\": \"ok\"}"), ("", "{not json"))));
        Assert.Contains("line 2: not valid JSON", e.Message);
        e = Assert.Throws<DatasetFormatException>(() => CaptionedImages.ReadImageFolder(Folder(("a.png", "{\"file_name\": \"a.png\", \"text\": \"  \"}"))));
        Assert.Contains("line 1: empty or missing \"text\" for 'a.png'", e.Message);
        e = Assert.Throws<DatasetFormatException>(() => CaptionedImages.ReadImageFolder(Folder(("", "{\"file_name\": \"gone.png\", \"text\": \"x\"}"))));
        Assert.Contains("image 'gone.png' does not exist", e.Message);
        var empty = Directory.CreateTempSubdirectory("pictor-ds").FullName;
        e = Assert.Throws<DatasetFormatException>(() => CaptionedImages.ReadImageFolder(empty));
        Assert.Contains("has no metadata.jsonl", e.Message);
    }

    [Fact]
    public void Image_folder_reads_object_boxes_and_the_words_that_name_them()
    {
        var dir = Folder(
            ("a.png", "{\"file_name\": \"a.png\", \"text\": \"a red circle\", \"objects\": [{\"colour\": \"Red\", \"shape\": \"circle\", \"centre\": [2, 3], \"bbox\": [1, 2.5, 3, 4]}, {\"colour\": \"blue\"}]}"),
            ("b.png", "{\"file_name\": \"b.png\", \"text\": \"no objects\"}"));
        var items = CaptionedImages.ReadImageFolder(dir);
        var o = Assert.Single(items[0].Objects!);   // the entry without a bbox is skipped
        Assert.Equal(new[] { "red", "circle" }, o.Words);
        Assert.Equal((1f, 2.5f, 3f, 4f), (o.X0, o.Y0, o.X1, o.Y1));
        Assert.Null(items[1].Objects);

        foreach (var bad in new[] { "[1, 2, 3]", "[3, 2, 1, 4]", "\"box\"" })
        {
            var e = Assert.Throws<DatasetFormatException>(() => CaptionedImages.ReadImageFolder(Folder(("a.png", $"{{\"file_name\": \"a.png\", \"text\": \"x\", \"objects\": [{{\"bbox\": {bad}}}]}}"))));
            Assert.Contains("line 1: objects[0].bbox must be [x0, y0, x1, y1]", e.Message);
        }
    }

    [Fact]
    public void Coco_captions_group_by_image_and_report_bad_entries()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-coco").FullName;
        Image.Solid(8, 8, 1, 2, 3).Save(Path.Combine(dir, "1.png"));
        Image.Solid(8, 8, 1, 2, 3).Save(Path.Combine(dir, "2.png"));
        var json = Path.Combine(dir, "captions.json");
        File.WriteAllText(json, """{"images":[{"id":1,"file_name":"1.png"},{"id":2,"file_name":"2.png"}],"annotations":[{"image_id":2,"caption":"b one"},{"image_id":1,"caption":"a"},{"image_id":2,"caption":" b two "}]}""");
        var items = CaptionedImages.ReadCoco(json, dir);
        Assert.Equal(new[] { "a" }, items[0].Captions);
        Assert.Equal(new[] { "b one", "b two" }, items[1].Captions);
        File.WriteAllText(json, """{"images":[{"id":1,"file_name":"1.png"}],"annotations":[{"image_id":7,"caption":"x"}]}""");
        Assert.Contains("refers to image 7", Assert.Throws<DatasetFormatException>(() => CaptionedImages.ReadCoco(json, dir)).Message);
        File.WriteAllText(json, """{"images":[{"id":1,"file_name":"1.png"}],"annotations":[{"image_id":1,"caption":""}]}""");
        Assert.Contains("annotations[0] (image 1) has an empty caption", Assert.Throws<DatasetFormatException>(() => CaptionedImages.ReadCoco(json, dir)).Message);
    }

    [Fact]
    public void Packed_cache_round_trips_and_shuffles_deterministically()
    {
        var dir = Folder(("a.png", "{\"file_name\": \"a.png\", \"text\": \"red\"}"), ("b.png", "{\"file_name\": \"b.png\", \"text\": [\"x\", \"ünï\"]}"));
        var items = CaptionedImages.ReadImageFolder(dir);
        var path = Path.Combine(dir, "cache.bin");
        PackedDataset.Build(items, 4, path);
        using var ds = PackedDataset.Open(path);
        Assert.Equal(2, ds.Count);
        Assert.Equal(new[] { "x", "ünï" }, ds.Captions(1));
        var px = new float[3 * 16];
        ds.ReadImage(0, px);
        Assert.Equal(200 / 127.5f - 1f, px[0], 5);   // red channel of the 4x6 -> 4x4 crop
        Assert.Equal(10 / 127.5f - 1f, px[16], 5);
        Assert.Equal(ds.Shuffle(5, 0), ds.Shuffle(5, 0));
        Assert.Equal(new[] { 0, 1 }, ds.Shuffle(5, 0).Order());

        var bad = Path.Combine(dir, "bad.bin");
        File.WriteAllBytes(bad, File.ReadAllBytes(path)[..60]);
        var e = Assert.Throws<DatasetFormatException>(() => PackedDataset.Open(bad));
        Assert.Contains("not a valid packed dataset", e.Message);
    }
}
