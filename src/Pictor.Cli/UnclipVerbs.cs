using System.CommandLine;
using Pictor.Imaging;
using Pictor.Pipelines;
using Pictor.Pipelines.Unclip;

namespace Pictor.Cli;

/// <summary>'pictor vary' and 'pictor interpolate': an unCLIP model's image variations and embedding interpolation
/// (<see cref="Variations"/>), written as PNGs with metadata that 'pictor verify --source A [--source2 B]'
/// regenerates.</summary>
internal static class UnclipVerbs
{
    public const string DefaultModel = "models/emoji-unclip";

    private static Option<string> PngOut(string description)
    {
        var o = CliOptions.Text("--out", description, required: true);
        o.Validators.Add(r =>
        {
            string? v = r.Tokens.Count > 0 ? r.Tokens[^1].Value : null;
            if (v != null && !v.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                r.AddError($"--out must name a .png file, got '{v}'");
        });
        return o;
    }

    private static TextToImage LoadModel(string modelArg)
    {
        var t2i = TextToImage.Load(GenerateVerbs.ResolveModel(modelArg));
        t2i.Name = modelArg;   // metadata records the model as given, as generate does
        return t2i;
    }

    public static Command Vary()
    {
        var image = new Argument<string>("IMAGE") { Description = "the PNG to make variations of (any size)" };
        var output = PngOut("the PNG to write (-n N without --grid writes OUT-0.png ... OUT-(N-1).png)");
        var model = CliOptions.Text("--model", "an unCLIP model directory", fallback: DefaultModel);
        var seed = CliOptions.ULong("--seed", "seed of the first variation; variation i uses seed + i", 0);
        var count = CliOptions.Int("--count", "variations to make", 4, 1, GenerationRequest.MaxCount, "-n");
        var grid = CliOptions.Flag("--grid", "write one grid image instead of one file per image");
        var s = new GenerateVerbs.Sampling();
        var c = new Command("vary", "Image variations (unCLIP): decode new images from an image's CLIP embedding")
        {
            image, output, model, seed, count, grid,
        };
        s.AddTo(c);
        c.SetAction(p =>
        {
            var t2i = LoadModel(p.GetValue(model)!);
            var source = EditVerbs.LoadPng(p.GetValue(image)!, "source image");
            var request = s.Request(p, new GenerationRequest("")
            {
                Seed = p.GetValue(seed), Count = p.GetValue(count),
            });
            var result = ConsoleProgress.Run("vary", bar => t2i.Vary(source, request,
                new Reporter(g => bar.Update(g.Step, g.Total, "decoder")), Program.Cancel));
            Write(result, p.GetValue(output)!, p.GetValue(grid) ? result.Grid() : null);
            return 0;
        });
        return c;
    }

    public static Command Interpolate()
    {
        var a = new Argument<string>("A") { Description = "the first image (frame 0)" };
        var b = new Argument<string>("B") { Description = "the last image" };
        var output = PngOut("the strip to write: the frames in one row");
        var model = CliOptions.Text("--model", "an unCLIP model directory", fallback: DefaultModel);
        var seed = CliOptions.ULong("--seed", "the seed every frame is decoded from", 0);
        var frames = CliOptions.Int("--frames", "frames from A to B, both included", 8, 2, Variations.MaxFrames);
        var each = CliOptions.Flag("--each", "also write every frame as OUT-0.png ... OUT-(F-1).png");
        var s = new GenerateVerbs.Sampling();
        var c = new Command("interpolate",
            "Interpolate two images (unCLIP): decode the slerp between their CLIP embeddings, one seed for all frames")
        {
            a, b, output, model, seed, frames, each,
        };
        s.AddTo(c);
        c.SetAction(p =>
        {
            var t2i = LoadModel(p.GetValue(model)!);
            var ia = EditVerbs.LoadPng(p.GetValue(a)!, "first image");
            var ib = EditVerbs.LoadPng(p.GetValue(b)!, "second image");
            var request = s.Request(p, new GenerationRequest("") { Seed = p.GetValue(seed) });
            var result = ConsoleProgress.Run("interpolate", bar => t2i.Interpolate(ia, ib, p.GetValue(frames), request,
                new Reporter(g => bar.Update(g.Step, g.Total, "decoder")), Program.Cancel));
            string outPath = p.GetValue(output)!;
            if (p.GetValue(each)) Write(result, outPath, null, skipSingle: false);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
            Variations.Strip(result).Save(outPath, result.GridParameters.ToPngText());
            Console.WriteLine($"wrote {outPath}");
            return 0;
        });
        return c;
    }

    /// <summary>The grid (with the whole batch's metadata) when given, else each image: OUT.png for one,
    /// OUT-i.png for several.</summary>
    private static void Write(GenerationResult result, string outPath, Image? grid, bool skipSingle = true)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        if (grid != null) { result.SaveGrid(outPath); Console.WriteLine($"wrote {outPath}"); return; }
        if (result.Images.Count == 1 && skipSingle)
        {
            result.Images[0].Save(outPath);
            Console.WriteLine($"wrote {outPath}");
            return;
        }
        string stem = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outPath))!,
            Path.GetFileNameWithoutExtension(outPath));
        for (int i = 0; i < result.Images.Count; i++)
        {
            result.Images[i].Save($"{stem}-{i}.png");
            Console.WriteLine($"wrote {stem}-{i}.png");
        }
    }
}
