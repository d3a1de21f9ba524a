using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Imaging.Png;
using Pictor.Text;

namespace Pictor.Cli;

/// <summary>Verbs for data, tokenizers and images: parse, call the library, print.</summary>
internal static class DataVerbs
{
    public static int Data(string[] args)
    {
        string sub = args.Length > 0 ? args[0] : "";
        var rest = args.Skip(1);
        switch (sub)
        {
            case "shapes":
            {
                var a = new Args("data shapes", rest, ["out", "count", "seed", "size", "mix"]);
                a.NoPositionals();
                string outDir = a.Required("out");
                int count = a.Int("count", 10_000, 2, 10_000_000), size = a.Int("size", 32, 32, 64);
                if (size is not (32 or 64)) throw new ArgumentException($"--size must be 32 or 64, got {size}");
                var mix = ShapesMix.Parse(a.Optional("mix") ?? "1:1:1");
                var (train, val) = Shapes.WriteDataset(outDir, count, a.ULong("seed", 0), size, Progress("shapes"), mix);
                Console.Error.WriteLine();
                Console.WriteLine($"wrote {train} train and {val} val images ({size}x{size}, scene mix single:pair:count {mix}) to {outDir}");
                return 0;
            }
            case "emoji":
            {
                var a = new Args("data emoji", rest, ["out", "from", "split", "categories", "skin-tones"]);
                a.NoPositionals();
                string outDir = a.Required("out");
                var split = a.Optional("split") switch
                {
                    null or "style" => EmojiSplit.Style,
                    "emoji" => EmojiSplit.Emoji,
                    var v => throw new ArgumentException($"--split must be style (hold out one style of some emoji; the default) or emoji (hold out whole emoji: zero-shot), not '{v}'"),
                };
                var categories = a.Optional("categories")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                bool skinTones = a.Optional("skin-tones") switch
                {
                    null or "all" => true,
                    "none" => false,
                    var v => throw new ArgumentException($"--skin-tones must be all (every skin-tone variant of the people emoji; the default) or none (the default yellow ones only), not '{v}'"),
                };
                string[] tgz;
                if (a.Optional("from") is { } from) tgz = EmojiDataset.FindTarballs(from);
                else
                {
                    var cache = Path.Combine(Path.GetTempPath(), "pictor-npm");
                    Console.Error.WriteLine($"npm pack {string.Join(" ", EmojiDataset.Packages)} -> {cache}");
                    tgz = EmojiDataset.NpmPack(cache);
                }
                var s = EmojiDataset.Build(tgz[0], tgz[1], tgz[2], outDir, m => Console.Error.WriteLine(m), split, new EmojiSelection(categories, skinTones));
                Console.WriteLine($"wrote {s.Train} train and {s.Val} val images of {s.Emoji} emoji to {outDir} ({s.SkippedUnlabelled} images without an emojibase label skipped); see {Path.Combine(outDir, "ATTRIBUTION.md")}");
                return 0;
            }
            case "pack":
            {
                var a = new Args("data pack", rest, ["data", "size", "out"]);
                a.NoPositionals();
                var items = CaptionedImages.ReadImageFolder(a.Required("data"));
                int size = a.Int("size", 32, 8, 1024);
                PackedDataset.Build(items, size, a.Required("out"), Progress("pack"));
                Console.Error.WriteLine();
                Console.WriteLine($"packed {items.Count} images at {size}x{size} into {a.Required("out")}");
                return 0;
            }
            default:
                throw new ArgumentException($"'data {sub}' is not a verb; use 'data shapes --out DIR [--count N] [--seed S] [--size 32|64] [--mix S:P:C]', 'data emoji --out DIR [--from DIR] [--split style|emoji] [--categories LIST] [--skin-tones all|none]' or 'data pack --data DIR [--size 32] --out FILE'");
        }
    }

    public static int Tokenizer(string[] args)
    {
        if (args.Length == 0 || args[0] != "train") throw new ArgumentException("use 'tokenizer train --data DIR [--vocab 4096] --out DIR'");
        var a = new Args("tokenizer train", args.Skip(1), ["data", "vocab", "out"]);
        a.NoPositionals();
        string data = a.Required("data"), outDir = a.Required("out");
        int vocab = a.Int("vocab", 4096, 260, 1_000_000);
        var dirs = Directory.Exists(Path.Combine(data, "train")) ? [Path.Combine(data, "train")] : new[] { data };
        var captions = dirs.SelectMany(d => CaptionedImages.ReadImageFolder(d)).SelectMany(i => i.Captions).ToList();
        var tok = BpeTokenizer.Train(captions, vocab);
        tok.Save(outDir);
        Console.WriteLine($"trained a {tok.VocabSize}-token BPE on {captions.Count} captions; wrote {Path.Combine(outDir, "vocab.json")} and merges.txt");
        if (tok.VocabSize < vocab) Console.WriteLine($"(stopped below {vocab}: no pair occurs twice any more; the captions are too few for a larger vocabulary)");
        return 0;
    }

    public static int ImageVerb(string[] args)
    {
        string sub = args.Length > 0 ? args[0] : "";
        var a = new Args("image " + sub, args.Skip(1), ["max-pixels", "columns", "out", "scale"]);
        var options = new PngDecodeOptions(MaxPixels: a.Int("max-pixels", 64 * 1024 * 1024, 1, int.MaxValue));
        switch (sub)
        {
            case "info":
            {
                if (a.Positionals.Count != 1) throw new ArgumentException("use 'image info IN.png'");
                var png = PngDecoder.DecodeFile(a.Positionals[0], options);
                Console.WriteLine($"{a.Positionals[0]}: {png.Width}x{png.Height}, {png.ColorType}, {png.BitDepth}-bit{(png.Interlaced ? ", interlaced (Adam7)" : "")}");
                foreach (var (k, v) in png.Text) Console.WriteLine($"  {k}: {v.Replace("\n", "\n    ")}");
                if (GenerationParameters.FromPng(png) is { } gp) Console.WriteLine($"  generated by Pictor: seed {gp.Seed}, {gp.Steps} steps, sampler {gp.Sampler}, model hash {gp.ModelHash}");
                return 0;
            }
            case "convert":
            {
                if (a.Positionals.Count != 2) throw new ArgumentException("use 'image convert IN.png OUT.png'");
                var png = PngDecoder.DecodeFile(a.Positionals[0], options);
                PngEncoder.Save(a.Positionals[1], png.Rgba8, png.Width, png.Height, hasAlpha: true, png.Text);
                Console.WriteLine($"wrote {a.Positionals[1]}: {png.Width}x{png.Height} RGBA, 8-bit");
                return 0;
            }
            case "grid":
            {
                if (a.Positionals.Count == 0) throw new ArgumentException("use 'image grid --out OUT.png [--columns 8] [--scale 1] IN.png ...'");
                int scale = a.Int("scale", 1, 1, 16);
                var imgs = a.Positionals.Select(p => Image.Load(p, options)).Select(i => scale == 1 ? i : i.ResizeNearest(i.Width * scale, i.Height * scale)).ToList();
                var grid = Image.Grid(imgs, a.Int("columns", 8, 1, 1000));
                grid.Save(a.Required("out"));
                Console.WriteLine($"wrote {a.Required("out")}: {grid.Width}x{grid.Height}, {imgs.Count} images");
                return 0;
            }
            default:
                throw new ArgumentException($"'image {sub}' is not a verb; use 'image info IN.png', 'image convert IN.png OUT.png' or 'image grid --out OUT.png IN.png ...'");
        }
    }

    private static Action<int, int> Progress(string what) => (i, n) =>
    {
        if (i == n || i % 500 == 0) Console.Error.Write($"\r{what}: {i}/{n}");
    };
}
