using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Pipelines;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Eval;

namespace Pictor.Cli;

/// <summary>'pictor eval shapes': generate the fixed prompt set, score it, print the table, optionally save JSON and a grid.
/// 'pictor eval clip': CLIP score, R-precision and Fréchet distance on val prompts, for any model family.</summary>
internal static class EvalVerbs
{
    public static int Eval(string[] args)
    {
        if (args.Length > 0 && args[0] == "clip") return Clip(args);
        if (args.Length == 0 || args[0] != "shapes") throw new ArgumentException("use 'eval shapes --model DIR [--sampler dpm++] [--steps 20] [--cfg S] [--seed 0] [--temperature T] [--top-k K] [--top-p P] [--repeats K] [--report FILE.json] [--grid FILE.png]'");
        var a = new Args("eval shapes", args.Skip(1), ["model", "sampler", "steps", "cfg", "seed", "report", "grid", "batch", "temperature", "top-k", "top-p", "repeats"]);
        a.NoPositionals();
        string model = a.Required("model");
        var pipe = TextToImage.Load(GenerateVerbs.ResolveModel(model));
        var o = GenerateVerbs.Options(a, pipe, "");
        int repeats = a.Int("repeats", 1, 1, 100);
        var (r, images) = ShapesEval.Run(pipe, o, a.Int("batch", 32, 1, 256), (d, n) => Console.Error.Write($"\rgenerating {d}/{n}"), repeats);
        Console.Error.WriteLine();
        Console.WriteLine($"pictor eval shapes: {model} ({pipe.WeightsHash}), {o.Sampler} {o.Steps} steps, CFG {o.CfgScale}{(o.Seed != 0 ? $", seeds from {o.Seed}" : "")}"
            + (repeats > 1 ? $", every prompt {repeats} times" : ""));
        Console.WriteLine($"| group | seen pairs | held-out pairs |");
        Console.WriteLine($"|---|---|---|");
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
        if (a.Optional("report") is { } rep) { AtomicFile.WriteAllText(rep, ShapesEval.ToJson(r, o, pipe.WeightsHash)); Console.WriteLine($"wrote {rep}"); }
        if (a.Optional("grid") is { } grid) { Image.Grid(images, 15).Save(grid); Console.WriteLine($"wrote {grid} (prompt order as in the report)"); }
        return 0;
    }

    private static int Clip(string[] args)
    {
        var a = new Args("eval clip", args.Skip(1), ["model", "clip", "data", "images", "candidates", "report", "sampler", "steps", "cfg", "temperature", "top-k", "top-p", "batch", "rerank"]);
        a.NoPositionals();
        string model = a.Required("model"), data = a.Required("data");
        var pipe = TextToImage.Load(GenerateVerbs.ResolveModel(model));
        var clip = ClipPipeline.Load(GenerateVerbs.ResolveModel(a.Required("clip")));
        string valDir = Path.Combine(data, "val");
        if (!Directory.Exists(valDir)) throw new DirectoryNotFoundException($"'{data}' has no val/ folder; pass --data with a dataset made by 'pictor data emoji' or 'pictor data shapes'");
        var val = new ImageCaptionSet(CaptionedImages.ReadImageFolder(valDir), pipe.ImageSize);
        var o = GenerateVerbs.Options(a, pipe, "");
        var r = ClipEval.Run(pipe, clip, val, o, a.Int("images", 100, 2, 100_000), a.Int("candidates", 100, 2, 100_000), a.Int("batch", 32, 1, 256),
            (d, n) => Console.Error.Write($"\rgenerating {d}/{n}"), a.Int("rerank", 1, 1, GenerateOptions.MaxCount));
        Console.Error.WriteLine();
        Console.WriteLine($"pictor eval clip: {model} ({pipe.Family}, {pipe.WeightsHash}) on {r.Images} val prompts of {data}, {o.Sampler}, CFG {o.CfgScale}{(r.Rerank > 1 ? $", best of {r.Rerank} by this CLIP" : "")}");
        Console.WriteLine(ClipEval.Table(r));
        if (a.Optional("report") is { } rep) { AtomicFile.WriteAllText(rep, r.ToJson(pipe.WeightsHash, o)); Console.WriteLine($"wrote {rep}"); }
        return 0;
    }
}
