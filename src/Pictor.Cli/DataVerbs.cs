using System.CommandLine;
using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Imaging.Png;
using Pictor.Text;

namespace Pictor.Cli;

/// <summary>Verbs for data, tokenizers and images: parse, call the library, print.</summary>
internal static class DataVerbs
{
    public static Command Data() => new("data", "Make or pack a dataset: procedural shapes, emoji, or your own folder")
    {
        Shapes(), Emoji(), Pack(),
    };

    private static Command Shapes()
    {
        var output = CliOptions.Text("--out", "dataset folder to write (train/ and val/ with metadata.jsonl)",
            required: true);
        var count = CliOptions.Int("--count", "scenes to draw (a tenth go to val)", 10_000, 2, 10_000_000);
        var seed = CliOptions.ULong("--seed", "random seed of the scenes", 0);
        var size = CliOptions.Choice("--size", "image side in pixels", "32", "32", "64");
        var mix = CliOptions.Text("--mix", "weights of the scene kinds single:pair:count", fallback: "1:1:1");
        var c = new Command("shapes", "Procedural scenes of coloured shapes with captions and ground truth")
        {
            output, count, seed, size, mix,
        };
        c.SetAction(p =>
        {
            string dir = p.GetValue(output)!;
            int side = int.Parse(p.GetValue(size)!, System.Globalization.CultureInfo.InvariantCulture);
            var m = ShapesMix.Parse(p.GetValue(mix)!);
            var (train, val) = ConsoleProgress.Run("data shapes", bar =>
                Pictor.Imaging.Datasets.Shapes.WriteDataset(dir, p.GetValue(count), p.GetValue(seed), side,
                    (i, n) => bar.Update(i, n), m));
            Console.WriteLine($"wrote {train} train and {val} val images ({side}x{side}, scene mix "
                + $"single:pair:count {m}) "
                + $"to {dir}");
            return 0;
        });
        return c;
    }

    private static Command Emoji()
    {
        var output = CliOptions.Text("--out", "dataset folder to write", required: true);
        var from = CliOptions.Text("--from", "folder with the npm tarballs already packed (default: npm pack them)");
        var split = CliOptions.Choice("--split",
            "val holds out one style of some emoji (style) or whole emoji (emoji: zero-shot)",
                "style", "style", "emoji");
        var categories = CliOptions.Text("--categories",
            "keep some emoji-datasource categories, e.g. \"Smileys & Emotion,Animals & Nature,Food & Drink\"");
        var skin = CliOptions.Choice("--skin-tones", "every skin-tone variant (all) or the default yellow ones (none)",
            "all", "all", "none");
        var c = new Command("emoji", "Noto and Twemoji images with emojibase captions (from npm)")
        {
            output, from, split, categories, skin,
        };
        c.SetAction(p =>
        {
            string dir = p.GetValue(output)!;
            var mode = p.GetValue(split) == "emoji" ? EmojiSplit.Emoji : EmojiSplit.Style;
            var cats = p.GetValue(categories)?.Split(',',
                StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var s = MakeEmoji(dir, p.GetValue(from), mode, new EmojiSelection(cats, p.GetValue(skin) == "all"));
            Console.WriteLine($"wrote {s.Train} train and {s.Val} val images of {s.Emoji} emoji to {dir} "
                + $"({s.SkippedUnlabelled} images without an emojibase label skipped); see "
                    + $"{Path.Combine(dir, "ATTRIBUTION.md")}");
            return 0;
        });
        return c;
    }

    /// <summary>Builds an emoji dataset in <paramref name="dir"/> from the npm tarballs in <paramref name="from"/>, or
    /// packed from npm when null (progress on standard error).</summary>
    public static EmojiDataset.Summary MakeEmoji(string dir, string? from, EmojiSplit mode, EmojiSelection selection)
    {
        string[] tgz;
        if (from != null) tgz = EmojiDataset.FindTarballs(from);
        else
        {
            var cache = Path.Combine(Path.GetTempPath(), "pictor-npm");
            Console.Error.WriteLine($"npm pack {string.Join(" ", EmojiDataset.Packages)} -> {cache}");
            tgz = EmojiDataset.NpmPack(cache);
        }
        return EmojiDataset.Build(tgz[0], tgz[1], tgz[2], dir, m => Console.Error.WriteLine(m), mode, selection);
    }

    private static Command Pack()
    {
        var data = CliOptions.Text("--data", "image folder with metadata.jsonl", required: true);
        var size = CliOptions.Int("--size", "image side in the cache", 32, 8, 1024);
        var output = CliOptions.Text("--out", "the cache file to write", required: true);
        var strict = CliOptions.Flag("--strict",
            "stop at an image that does not decode, instead of skipping it with a warning");
        var c = new Command("pack", "Decode an image folder once into a memory-mapped cache (PNG, JPEG, WebP, GIF, "
            + "BMP, TIFF)") { data, size, output, strict };
        c.SetAction(p =>
        {
            var items = CaptionedImages.ReadImageFolder(p.GetValue(data)!);
            int side = p.GetValue(size);
            string outFile = p.GetValue(output)!;
            int packed = ConsoleProgress.Run("data pack", bar => PackedDataset.Build(items, side, outFile,
                (i, n) => bar.Update(i, n), new BadImagePolicy(p.GetValue(strict), bar.Log)));
            Console.WriteLine($"packed {packed} images at {side}x{side} into {outFile}"
                + (packed < items.Count ? $" ({items.Count - packed} skipped: they do not decode)" : ""));
            return 0;
        });
        return c;
    }

    public static Command Tokenizer()
    {
        var data = CliOptions.Text("--data", "dataset folder (its train/ when it has one) whose captions to learn",
            required: true);
        var vocab = CliOptions.Int("--vocab", "vocabulary size to stop at", 4096, 260, 1_000_000);
        var output = CliOptions.Text("--out", "folder to write vocab.json and merges.txt", required: true);
        var train = new Command("train", "Byte-level BPE on a dataset's captions") { data, vocab, output };
        train.SetAction(p =>
        {
            string dir = p.GetValue(data)!, outDir = p.GetValue(output)!;
            int v = p.GetValue(vocab);
            var dirs = Directory.Exists(Path.Combine(dir, "train")) ? [Path.Combine(dir, "train")] : new[] { dir };
            var captions = dirs.SelectMany(d => CaptionedImages.ReadImageFolder(d)).SelectMany(i => i.Captions)
                .ToList();
            var tok = BpeTokenizer.Train(captions, v);
            tok.Save(outDir);
            Console.WriteLine($"trained a {tok.VocabSize}-token BPE on {captions.Count} captions; wrote "
                + $"{Path.Combine(outDir, "vocab.json")} and merges.txt");
            if (tok.VocabSize < v)
                Console.WriteLine($"(stopped below {v}: no pair occurs twice any more; the captions are too few for a "
                    + "larger vocabulary)");
            return 0;
        });
        return new Command("tokenizer", "Train a tokenizer") { train };
    }

    public static Command ImageVerb()
    {
        var maxPixels = CliOptions.Int("--max-pixels", "refuse images with more pixels than this", 64 * 1024 * 1024, 1,
            int.MaxValue);
        var info = new Command("info", "Size, type, text chunks and generation parameters of a PNG")
        {
            new Argument<string>("IN") { Description = "the PNG to read" }, maxPixels,
        };
        info.SetAction(p =>
        {
            string file = p.GetValue((Argument<string>)info.Arguments[0])!;
            var png = PngDecoder.DecodeFile(file, new PngDecodeOptions(MaxPixels: p.GetValue(maxPixels)));
            Console.WriteLine($"{file}: {png.Width}x{png.Height}, {png.ColorType}, {png.BitDepth}-bit"
                + (png.Interlaced ? ", interlaced (Adam7)" : ""));
            foreach (var (k, v) in png.Text) Console.WriteLine($"  {k}: {v.Replace("\n", "\n    ")}");
            if (GenerationParameters.FromPng(png) is { } gp)
                Console.WriteLine($"  generated by Pictor: seed {gp.Seed}, {gp.Steps} steps, sampler {gp.Sampler}, "
                    + $"model hash {gp.ModelHash}");
            return 0;
        });
        var src = new Argument<string>("IN") { Description = "the PNG to read" };
        var dst = new Argument<string>("OUT") { Description = "the PNG to write" };
        var convert = new Command("convert", "Any valid PNG to 8-bit RGBA") { src, dst, maxPixels };
        convert.SetAction(p =>
        {
            var png = PngDecoder.DecodeFile(p.GetValue(src)!, new PngDecodeOptions(MaxPixels: p.GetValue(maxPixels)));
            PngEncoder.Save(p.GetValue(dst)!, png.Rgba8, png.Width, png.Height, hasAlpha: true, png.Text);
            Console.WriteLine($"wrote {p.GetValue(dst)}: {png.Width}x{png.Height} RGBA, 8-bit");
            return 0;
        });
        var inputs = new Argument<string[]>("IN") { Description = "the images to tile",
            Arity = ArgumentArity.OneOrMore };
        var output = CliOptions.Text("--out", "the grid PNG to write", required: true);
        var columns = CliOptions.Int("--columns", "images per row", 8, 1, 1000);
        var scale = CliOptions.Int("--scale", "enlarge each image this many times (nearest neighbour)", 1, 1, 16);
        var grid = new Command("grid", "Tile images into one grid PNG") { inputs, output, columns, scale, maxPixels };
        grid.SetAction(p =>
        {
            int k = p.GetValue(scale);
            var options = new PngDecodeOptions(MaxPixels: p.GetValue(maxPixels));
            var imgs = p.GetValue(inputs)!.Select(f => Image.Load(f, options))
                .Select(i => k == 1 ? i : i.ResizeNearest(i.Width * k, i.Height * k)).ToList();
            var g = Image.Grid(imgs, p.GetValue(columns));
            g.Save(p.GetValue(output)!);
            Console.WriteLine($"wrote {p.GetValue(output)}: {g.Width}x{g.Height}, {imgs.Count} images");
            return 0;
        });
        return new Command("image", "Inspect, convert and tile images") { info, convert, grid };
    }
}
