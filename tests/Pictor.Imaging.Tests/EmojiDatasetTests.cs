using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Pictor.Imaging.Datasets;
using Pictor.Imaging.Png;

namespace Pictor.Imaging.Tests;

/// <summary>The emoji builder on small synthetic tarballs laid out like the npm packages (no network in tests).</summary>
public class EmojiDatasetTests
{
    private static string Tgz(string dir, string name, Dictionary<string, byte[]> files)
    {
        var path = Path.Combine(dir, name);
        using var fs = File.Create(path);
        using var gz = new GZipStream(fs, CompressionLevel.Fastest);
        using var tar = new TarWriter(gz, TarEntryFormat.Pax);
        foreach (var (n, b) in files)
        {
            var e = new PaxTarEntry(TarEntryType.RegularFile, n) { DataStream = new MemoryStream(b) };
            tar.WriteEntry(e);
        }
        return path;
    }

    private static byte[] Png(byte r, byte a) => PngEncoder.Encode(Enumerable.Range(0, 64 * 64).SelectMany(_ => new[] { r, (byte)0, (byte)0, a }).ToArray(), 64, 64);

    /// <summary>Three emoji in two categories, one with a skin-tone variant, as the three packages; returns the tarballs.</summary>
    private static (string Google, string Twitter, string Emojibase) Packages(string dir)
    {
        var index = JsonSerializer.SerializeToUtf8Bytes(new object[]
        {
            new Dictionary<string, object> { ["unified"] = "1F603", ["image"] = "1f603.png", ["category"] = "Smileys & Emotion", ["has_img_google"] = true, ["has_img_twitter"] = true },
            new Dictionary<string, object>
            {
                ["unified"] = "1F44B", ["image"] = "1f44b.png", ["category"] = "People & Body", ["has_img_google"] = true, ["has_img_twitter"] = false,
                ["skin_variations"] = new Dictionary<string, object> { ["1F3FF"] = new Dictionary<string, object> { ["unified"] = "1F44B-1F3FF", ["image"] = "1f44b-1f3ff.png", ["has_img_google"] = true } },
            },
            new Dictionary<string, object> { ["unified"] = "2764-FE0F", ["image"] = "2764-fe0f.png", ["category"] = "Smileys & Emotion", ["has_img_google"] = true, ["has_img_twitter"] = true },
        });
        var labels = JsonSerializer.SerializeToUtf8Bytes(new object[]
        {
            new Dictionary<string, object> { ["hexcode"] = "1F603", ["label"] = "grinning face with big eyes" },
            new Dictionary<string, object> { ["hexcode"] = "1F44B", ["label"] = "waving hand", ["skins"] = new[] { new Dictionary<string, object> { ["hexcode"] = "1F44B-1F3FF", ["label"] = "waving hand: dark skin tone" } } },
            new Dictionary<string, object> { ["hexcode"] = "2764", ["label"] = "red heart" },
        });
        var lic = Encoding.UTF8.GetBytes("MIT");
        string g = Tgz(dir, "emoji-datasource-google-16.0.0.tgz", new() { ["package/emoji.json"] = index, ["package/LICENSE"] = lic,
            ["package/img/google/64/1f603.png"] = Png(10, 255), ["package/img/google/64/1f44b.png"] = Png(20, 255),
            ["package/img/google/64/1f44b-1f3ff.png"] = Png(30, 0), ["package/img/google/64/2764-fe0f.png"] = Png(40, 255) });
        string t = Tgz(dir, "emoji-datasource-twitter-16.0.0.tgz", new() { ["package/emoji.json"] = index, ["package/LICENSE"] = lic,
            ["package/img/twitter/64/1f603.png"] = Png(50, 255), ["package/img/twitter/64/2764-fe0f.png"] = Png(60, 255) });
        string b = Tgz(dir, "emojibase-data-17.0.0.tgz", new() { ["package/en/data.json"] = labels, ["package/LICENSE"] = lic });
        return (g, t, b);
    }

    [Fact]
    public void Builds_captioned_split_folders_with_skin_tones_and_attribution()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-emoji").FullName;
        try { BuildsEverything(dir); } finally { Directory.Delete(dir, true); }
    }

    private static void BuildsEverything(string dir)
    {
        var (g, t, b) = Packages(dir);
        Assert.Equal(new[] { g, t, b }, EmojiDataset.FindTarballs(dir));

        var outDir = Path.Combine(dir, "out");
        var s = EmojiDataset.Build(g, t, b, outDir);
        Assert.Equal(6, s.Train + s.Val);
        Assert.Equal(3, s.Emoji);
        var all = CaptionedImages.ReadImageFolder(Path.Combine(outDir, "train")).Concat(s.Val > 0 ? CaptionedImages.ReadImageFolder(Path.Combine(outDir, "val")) : [])
                                 .ToDictionary(i => Path.GetFileName(i.ImagePath), i => i.Captions[0]);
        Assert.Equal("grinning face with big eyes, twemoji style", all["twemoji_1f603.png"]);
        Assert.Equal("waving hand: dark skin tone, noto style", all["noto_1f44b-1f3ff.png"]);
        Assert.Equal("red heart, noto style", all["noto_2764-fe0f.png"]);
        // transparent pixels became white
        var path = Directory.GetFiles(outDir, "noto_1f44b-1f3ff.png", SearchOption.AllDirectories).Single();
        Assert.Equal(new byte[] { 255, 255, 255, 255 }, Image.Load(path).Rgba.AsSpan(0, 4).ToArray());
        Assert.True(File.Exists(Path.Combine(outDir, "ATTRIBUTION.md")));
        Assert.Contains("CC-BY 4.0", File.ReadAllText(Path.Combine(outDir, "ATTRIBUTION.md")));
        Assert.Equal(3, Directory.GetFiles(Path.Combine(outDir, "licenses")).Length);

        var e = Assert.Throws<FileNotFoundException>(() => EmojiDataset.FindTarballs(Path.Combine(dir, "out")));
        Assert.Contains("npm pack", e.Message);
    }

    [Fact]
    public void Style_split_holds_out_one_style_of_a_fifth_of_the_emoji_and_emoji_split_whole_emoji()
    {
        var keys = Enumerable.Range(0, 4000).Select(i => (0x1F300 + i).ToString("X4")).ToList();
        int styleVal = 0, emojiVal = 0;
        foreach (var k in keys)
        {
            string noto = EmojiDataset.SplitOf(EmojiSplit.Style, k, 0, true), twemoji = EmojiDataset.SplitOf(EmojiSplit.Style, k, 1, true);
            Assert.False(noto == "val" && twemoji == "val", $"{k}: both styles held out, so val would name an unseen emoji");
            if (noto == "val" || twemoji == "val") styleVal++;
            // an emoji with no image in the other style always trains
            Assert.Equal("train", EmojiDataset.SplitOf(EmojiSplit.Style, k, 0, false));
            Assert.Equal("train", EmojiDataset.SplitOf(EmojiSplit.Style, k, 1, false));
            string a = EmojiDataset.SplitOf(EmojiSplit.Emoji, k, 0, true), b = EmojiDataset.SplitOf(EmojiSplit.Emoji, k, 1, false);
            Assert.Equal(a, b);   // whole emoji: every style shares the split
            if (a == "val") emojiVal++;
        }
        Assert.InRange(styleVal / 4000.0, 0.17, 0.23);   // a fifth of the emoji, one style each: about a tenth of the images
        Assert.InRange(emojiVal / 4000.0, 0.07, 0.13);
        // both styles get held out: each half of the held-out emoji
        int notoVal = keys.Count(k => EmojiDataset.SplitOf(EmojiSplit.Style, k, 0, true) == "val");
        Assert.InRange(notoVal / (double)styleVal, 0.4, 0.6);
    }

    [Fact]
    public void Categories_and_skin_tones_select_emoji_and_a_misspelt_category_is_named_before_anything_is_written()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-emoji").FullName;
        try
        {
            var (g, t, b) = Packages(dir);
            Assert.Equal(new[] { "People & Body", "Smileys & Emotion" }, EmojiDataset.CategoriesOf(g).Order(StringComparer.Ordinal));

            // one category, matched without regard to case: the face and the heart in both styles, no hand
            var faces = Path.Combine(dir, "faces");
            var s = EmojiDataset.Build(g, t, b, faces, select: new EmojiSelection(["smileys & emotion"], SkinTones: true));
            Assert.Equal((4, 2), (s.Train + s.Val, s.Emoji));
            var meta = Directory.GetFiles(faces, "metadata.jsonl", SearchOption.AllDirectories).SelectMany(File.ReadAllLines).Where(l => l.Length > 0).ToList();
            Assert.All(meta, l => Assert.Equal("Smileys & Emotion", JsonDocument.Parse(l).RootElement.GetProperty("category").GetString()));

            // no skin tones: the waving hand stays, its dark-skin variant goes
            var plain = Path.Combine(dir, "plain");
            s = EmojiDataset.Build(g, t, b, plain, select: new EmojiSelection(null, SkinTones: false));
            Assert.Equal(5, s.Train + s.Val);
            Assert.NotEmpty(Directory.GetFiles(plain, "noto_1f44b.png", SearchOption.AllDirectories));
            Assert.Empty(Directory.GetFiles(plain, "noto_1f44b-1f3ff.png", SearchOption.AllDirectories));

            var bad = Path.Combine(dir, "bad");
            var e = Assert.Throws<ArgumentException>(() => EmojiDataset.Build(g, t, b, bad, select: new EmojiSelection(["Smileys", "People & Body"], true)));
            Assert.Contains("'Smileys'", e.Message);
            Assert.Contains("Smileys & Emotion", e.Message);   // the fix: the names there are
            Assert.False(Directory.Exists(bad));
        }
        finally { Directory.Delete(dir, true); }
    }
}
