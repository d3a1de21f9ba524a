using System.CommandLine;
using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Pipelines;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Editing;
using Pictor.Pipelines.Eval;
using Pictor.Pipelines.Training;

namespace Pictor.Cli;

/// <summary>'pictor eval shapes': generate the fixed prompt set, score it, print the table, optionally save JSON and a
/// grid. 'pictor eval clip': CLIP score, R-precision and Fréchet distance on val prompts, for any model
/// family.</summary>
internal static class EvalVerbs
{
    public static Command Eval()
        => new("eval", "Evaluate a model: the shapes benchmark, or CLIP metrics on val prompts")
    {
        Shapes(), Clip(), EditEvalVerb.Edits(), VariationsVerb(), Families(),
    };

    /// <summary>The emoji categories of the shipped emoji models' data (data/emoji-faf), which 'eval families' makes
    /// when it is missing.</summary>
    private static readonly string[] FafCategories = ["Smileys & Emotion", "Animals & Nature", "Food & Drink"];

    /// <summary>'pictor eval families': every shipped emoji model on the same val prompts and seeds, one table and one
    /// grid (<see cref="FamilyEval"/>).</summary>
    private static Command Families()
    {
        var models = CliOptions.Text("--models", "folder of model folders; those named --prefix* are compared",
            fallback: "models");
        var prefix = CliOptions.Text("--prefix", "compare the models whose folder name starts with this",
            fallback: "emoji");
        var clip = CliOptions.Text("--clip", "the CLIP model that judges (left out of the table)",
            fallback: "models/emoji-clip");
        var data = CliOptions.Text("--data", "dataset folder whose val/ gives the prompts and real images (made "
            + "with the shipped models' emoji categories when it is the default and missing)",
            fallback: "data/emoji-faf");
        var images = CliOptions.Int("--images", "val prompts to generate for", 88, 2, 100_000);
        var candidates = CliOptions.Int("--candidates", "captions ranked per image for R-precision", 100, 2, 100_000);
        var rerank = CliOptions.Int("--rerank", "DALL-E's second row: best of this many by the judge (1 = none)", 8,
            1, GenerationRequest.MaxCount);
        var gridRows = CliOptions.Int("--grid-prompts", "prompts (rows) in the grid", 6, 1, 64);
        var grid = CliOptions.Text("--grid", "write the grid here: one column per model, then the real image");
        var report = CliOptions.Text("--report", "write the table as JSON here");
        var c = new Command("families",
            "Every model family side by side: R-precision, CLIP score, FD, speed, training time, parameters, a grid")
        {
            models, prefix, clip, data, images, candidates, rerank, gridRows, grid, report,
        };
        c.SetAction(p =>
        {
            var judge = ClipPipeline.Load(GenerateVerbs.ResolveModel(p.GetValue(clip)!));
            string dataDir = GenerateVerbs.ResolveModel(p.GetValue(data)!), valDir = Path.Combine(dataDir, "val");
            if (!Directory.Exists(valDir))
            {
                if (p.Given(data))
                    throw new DirectoryNotFoundException($"'{dataDir}' has no val/ folder; pass --data with a dataset "
                        + "made by 'pictor data emoji'");
                Console.Error.WriteLine($"{dataDir} is missing: making it (the shipped emoji models' data, about a "
                    + "minute)");
                DataVerbs.MakeEmoji(dataDir, null, EmojiSplit.Style, new EmojiSelection(FafCategories, false));
            }
            var val = new ImageCaptionSet(CaptionedImages.ReadImageFolder(valDir), judge.ImageSize);
            var entries = FamilyEval.Discover(GenerateVerbs.ResolveModel(p.GetValue(models)!), p.GetValue(prefix)!,
                judge.ImageSize, p.GetValue(rerank));
            var (r, picture) = ConsoleProgress.Run("eval families", bar => FamilyEval.Run(entries, judge,
                p.GetValue(clip)!, val, p.GetValue(data)!, p.GetValue(images), p.GetValue(candidates),
                p.GetValue(gridRows), (name, d, n) => bar.Update(d, n, name)));
            Console.WriteLine($"pictor eval families: {r.Rows.Count} models on {r.Images} val prompts of "
                + $"{p.GetValue(data)} (seed = prompt index), judged by {p.GetValue(clip)}; each model's default "
                + "sampling");
            Console.WriteLine(r.Table());
            Console.WriteLine(r.SamplingLine);
            if (p.GetValue(grid) is { } g)
            {
                picture.Save(g);
                Console.WriteLine($"wrote {g}: columns {string.Join(", ", r.Rows.Select(x => x.Entry.Name))}, real");
            }
            if (p.GetValue(report) is { } rep)
            {
                AtomicFile.WriteAllText(rep, r.ToJson());
                Console.WriteLine($"wrote {rep}");
            }
            return 0;
        });
        return c;
    }

    private static Command Shapes()
    {
        var model = CliOptions.Text("--model", "model directory (or training run) to evaluate", required: true);
        var seed = CliOptions.ULong("--seed", "seed of the first prompt; prompt i uses seed + i", 0);
        var report = CliOptions.Text("--report", "write the per-prompt verdicts as JSON here");
        var grid = CliOptions.Text("--grid", "write every generated image as one grid PNG here");
        var batch = CliOptions.Int("--batch", "images sampled together", 32, 1, 256);
        var repeats = CliOptions.Int("--repeats", "generate every prompt this many times, on consecutive seeds", 1, 1,
            100);
        var s = new GenerateVerbs.Sampling();
        var c = new Command("shapes", "The rule-based shapes benchmark: single objects, pairs and counting")
        {
            model, seed, report, grid, batch, repeats,
        };
        s.AddTo(c);
        c.SetAction(p =>
        {
            string name = p.GetValue(model)!;
            var t2i = TextToImage.Load(GenerateVerbs.ResolveModel(name));
            var (_, o) = t2i.Resolve(s.Request(p, new GenerationRequest("") { Seed = p.GetValue(seed) }));
            int k = p.GetValue(repeats);
            var (r, images) = ConsoleProgress.Run("eval shapes", bar =>
                ShapesEval.Run(t2i.Pipeline, o, p.GetValue(batch), (d, n) => bar.Update(d, n), k));
            Console.WriteLine($"pictor eval shapes: {name} ({t2i.WeightsHash}), {o.Sampler} {o.Steps} steps, "
                + $"CFG {o.Guidance}"
                + (o.Seed != 0 ? $", seeds from {o.Seed}" : "") + (k > 1 ? $", every prompt {k} times" : ""));
            Console.WriteLine("| group | seen pairs | held-out pairs |");
            Console.WriteLine("|---|---|---|");
            Console.WriteLine($"| single (all rules) | {r.Single} | {r.HeldOutSingle} |");
            Console.WriteLine($"|   colour | {r.SingleColour} | |");
            Console.WriteLine($"|   shape | {r.SingleShape} | |");
            Console.WriteLine($"|   position | {r.SinglePosition} | |");
            Console.WriteLine($"| pairs | {r.Pairs} | {r.HeldOutPairs} |");
            Console.WriteLine($"|   both colours | {r.PairColours} | |");
            Console.WriteLine($"|   both objects (shape on the right colour) | {r.PairObjects} | |");
            Console.WriteLine($"|   relation, given both objects | {r.PairRelation} | |");
            Console.WriteLine($"|   relation of the two colours, given both colours | {r.PairColourRelation} | |");
            Console.WriteLine($"| counting | {r.Counting} | {r.HeldOutCounting} |");
            if (p.GetValue(report) is { } rep)
            {
                AtomicFile.WriteAllText(rep, ShapesEval.ToJson(r, o, t2i.WeightsHash));
                Console.WriteLine($"wrote {rep}");
            }
            if (p.GetValue(grid) is { } g)
            {
                Image.Grid(images, 15).Save(g);
                Console.WriteLine($"wrote {g} (prompt order as in the report)");
            }
            return 0;
        });
        return c;
    }

    /// <summary>'pictor eval variations': how close an image's variations stay to it, by a judge CLIP.</summary>
    private static Command VariationsVerb()
    {
        var model = CliOptions.Text("--model", "an unCLIP or diffusion model", required: true);
        var clip = CliOptions.Text("--clip", "the CLIP model that judges", required: true);
        var data = CliOptions.Text("--data", "dataset folder whose val/ images are varied", required: true);
        var images = CliOptions.Int("--images", "val images to vary", 88, 2, 100_000);
        var count = CliOptions.Int("--count", "variations per image", 4, 1, GenerationRequest.MaxCount, "-n");
        var strength = CliOptions.Float("--strength", "a diffusion model's image-to-image strength",
            EditRequest.DefaultStrength, 0.01f, 1f);
        var s = new GenerateVerbs.Sampling();
        var c = new Command("variations",
            "Variation faithfulness: CLIP image similarity of inputs and their variations, against random val pairs")
        {
            model, clip, data, images, count, strength,
        };
        s.AddTo(c);
        c.SetAction(p =>
        {
            string name = p.GetValue(model)!, dataDir = p.GetValue(data)!;
            var t2i = TextToImage.Load(GenerateVerbs.ResolveModel(name));
            t2i.Name = name;
            var judge = ClipPipeline.Load(GenerateVerbs.ResolveModel(p.GetValue(clip)!));
            string valDir = Path.Combine(dataDir, "val");
            if (!Directory.Exists(valDir))
                throw new DirectoryNotFoundException($"'{dataDir}' has no val/ folder; pass --data with a dataset made "
                    + "by 'pictor data emoji'");
            var val = new ImageCaptionSet(CaptionedImages.ReadImageFolder(valDir), t2i.ImageSize);
            var r = ConsoleProgress.Run("eval variations", bar => VariationEval.Run(t2i, judge, val,
                p.GetValue(images), p.GetValue(count), s.Request(p, new GenerationRequest("")), p.GetValue(strength),
                (d, n) => bar.Update(d, n)));
            Console.WriteLine($"pictor eval variations: {name} ({t2i.Family}, {t2i.WeightsHash}) on {r.Images} val "
                + $"images of {dataDir}, {r.Variations} variations each, judged by {p.GetValue(clip)}");
            Console.WriteLine(r.Table());
            return 0;
        });
        return c;
    }

    private static Command Clip()
    {
        var model = CliOptions.Text("--model", "model directory (or training run) to evaluate", required: true);
        var clip = CliOptions.Text("--clip", "the CLIP model that scores", required: true);
        var data = CliOptions.Text("--data", "dataset folder whose val/ gives the prompts and real images",
            required: true);
        var images = CliOptions.Int("--images", "val prompts to generate for", 100, 2, 100_000);
        var candidates = CliOptions.Int("--candidates", "captions ranked per image for R-precision", 100, 2, 100_000);
        var report = CliOptions.Text("--report", "write the figures as JSON here");
        var batch = CliOptions.Int("--batch", "images sampled together", 32, 1, 256);
        var rerank = CliOptions.Int("--rerank", "generate this many per prompt and keep the best by this CLIP", 1, 1,
            GenerationRequest.MaxCount);
        var s = new GenerateVerbs.Sampling();
        var c = new Command("clip", "CLIP score, CLIP R-precision and Fréchet distance on val prompts (any family)")
        {
            model, clip, data, images, candidates, report, batch, rerank,
        };
        s.AddTo(c);
        c.SetAction(p =>
        {
            string name = p.GetValue(model)!, dataDir = p.GetValue(data)!;
            var t2i = TextToImage.Load(GenerateVerbs.ResolveModel(name));
            var scorer = ClipPipeline.Load(GenerateVerbs.ResolveModel(p.GetValue(clip)!));
            string valDir = Path.Combine(dataDir, "val");
            if (!Directory.Exists(valDir))
                throw new DirectoryNotFoundException($"'{dataDir}' has no val/ folder; pass --data with a "
                    + $"dataset made by "
                    + "'pictor data emoji' or 'pictor data shapes'");
            var val = new ImageCaptionSet(CaptionedImages.ReadImageFolder(valDir), t2i.ImageSize);
            var (_, o) = t2i.Resolve(s.Request(p, new GenerationRequest("")));
            var r = ConsoleProgress.Run("eval clip", bar => ClipEval.Run(t2i.Pipeline, scorer, val,
                o, p.GetValue(images),
                p.GetValue(candidates), p.GetValue(batch), (d, n) => bar.Update(d, n), p.GetValue(rerank)));
            Console.WriteLine($"pictor eval clip: {name} ({t2i.Family}, {t2i.WeightsHash}) on {r.Images} "
                + $"val prompts of "
                + $"{dataDir}, {o.Sampler}, CFG {o.Guidance}{(r.Rerank > 1 ? $", best of {r.Rerank} by "
                    + $"this CLIP" : "")}");
            Console.WriteLine(ClipEval.Table(r));
            if (p.GetValue(report) is { } rep)
            {
                AtomicFile.WriteAllText(rep, r.ToJson(t2i.WeightsHash, o));
                Console.WriteLine($"wrote {rep}");
            }
            return 0;
        });
        return c;
    }
}
