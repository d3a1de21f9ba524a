using Pictor.Imaging;
using Pictor.Imaging.Png;
using Pictor.Engine;
using Pictor.Pipelines;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Cli;

/// <summary>'pictor generate' and 'pictor verify'.</summary>
internal static class GenerateVerbs
{
    /// <summary>The shipped emoji model, or the shapes model while the emoji one is not in the checkout.</summary>
    public static string DefaultModel =>
        Directory.Exists(ResolveModel("models/emoji")) || !Directory.Exists(ResolveModel("models/shapes")) ? "models/emoji" : "models/shapes";

    public static int Generate(string[] args)
    {
        var a = new Args("generate", args.Select(x => x == "-n" ? "--count" : x),
            ["model", "sampler", "steps", "cfg", "negative", "seed", "count", "out", "eta", "temperature", "top-k", "top-p", "candidates", "keep", "clip"], ["grid", "truncate"]);
        if (a.Positionals.Count != 1) throw new ArgumentException("usage: pictor generate \"PROMPT\" --out FILE.png [--model DIR] [--cfg S] [--negative TEXT] [--seed N] [-n N | --count N] [--grid] [--candidates N --keep K --clip DIR]; diffusion models: [--sampler dpm++|ddim|ddpm] [--steps N] [--eta E]; DALL-E models: [--temperature T] [--top-k K] [--top-p P]");
        string outPath = a.Required("out");
        if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"--out must name a .png file, got '{outPath}'");
        string modelArg = a.Optional("model") ?? DefaultModel;
        var pipe = TextToImage.Load(ResolveModel(modelArg));
        string prompt = a.Positionals[0];
        if (a.Flag("truncate")) prompt = pipe.Tokenizer.Fit(prompt, pipe.TextContext);
        var o = Options(a, pipe, prompt);
        List<(Image Image, GenerationParameters Parameters)> results;
        bool reranked = a.Optional("candidates") != null || a.Optional("keep") != null;
        if (reranked)
        {
            // CLIP reranking: -n is ignored; N candidates are drawn (seeds seed..seed+N-1) and the K best kept, best
            // first. Each kept image carries its own metadata (batch of N, its row), so 'pictor verify' still works.
            int n = a.Int("candidates", 32, 1, GenerateOptions.MaxCount), keep = a.Int("keep", 4, 1, n);
            string clipDir = a.Optional("clip") ?? (Directory.Exists(ResolveModel("models/emoji-clip")) ? "models/emoji-clip" : throw new ArgumentException("reranking needs a CLIP model: pass --clip DIR (from 'pictor train clip')"));
            var clip = ClipPipeline.Load(ResolveModel(clipDir));
            o = o with { Count = n };
            var all = Txt2Img.Run(pipe, o, modelArg);
            var stacked = Tensor.FromArray(all.SelectMany(r => r.Image.ToTensor().ToArray()).ToArray(), n, 3, pipe.ImageSize, pipe.ImageSize);
            var best = Rerank.Best(Rerank.Scores(clip, stacked, prompt), keep);
            foreach (var (i, score) in best) Console.WriteLine(FormattableString.Invariant($"kept candidate {i} (seed {o.Seed + (ulong)i}): CLIP score {100 * score:F1}"));
            results = best.Select(b => all[b.Index]).ToList();
        }
        else results = Txt2Img.Run(pipe, o, modelArg);
        var dir = Path.GetDirectoryName(Path.GetFullPath(outPath))!;
        Directory.CreateDirectory(dir);
        if (results.Count == 1) { results[0].Image.Save(outPath, results[0].Parameters.ToPngText()); Console.WriteLine($"wrote {outPath}"); }
        else if (a.Flag("grid") && reranked)
        {
            // A grid of chosen candidates is not one generation: it carries the prompt, not verifiable metadata.
            Txt2Img.Grid(results.Select(r => r.Image).ToList()).Save(outPath, [new("Description", $"{prompt} (CLIP-reranked: the best {results.Count} of {o.Count} candidates, best first)")]);
            Console.WriteLine($"wrote {outPath}");
        }
        else if (a.Flag("grid"))
        {
            Txt2Img.Grid(results.Select(r => r.Image).ToList()).Save(outPath, Txt2Img.Parameters(pipe, o, modelArg, -1).ToPngText());
            Console.WriteLine($"wrote {outPath}");
        }
        else
        {
            string stem = Path.Combine(dir, Path.GetFileNameWithoutExtension(outPath));
            for (int i = 0; i < results.Count; i++)
            {
                string f = $"{stem}-{i}.png";
                results[i].Image.Save(f, results[i].Parameters.ToPngText());
                Console.WriteLine($"wrote {f}");
            }
        }
        return 0;
    }

    /// <summary>Generation options from the command line, with the model family's defaults for what is not given.</summary>
    public static GenerateOptions Options(Args a, ITextToImage pipe, string prompt) =>
        new(prompt, a.Optional("negative"), a.Optional("sampler") ?? pipe.DefaultSampler, a.Int("steps", pipe.DefaultSteps, 1, 100_000),
            a.Float("cfg", pipe.DefaultCfg, 0f, 50f), a.ULong("seed", 0), a.Int("count", 1, 1, GenerateOptions.MaxCount), a.Float("eta", 0f, 0f, 1f),
            a.Float("temperature", 1f, 0f, 10f), a.Int("top-k", 0, 0, 1_000_000), a.Float("top-p", 1f, 0f, 1f));

    public static int Verify(string[] args)
    {
        var a = new Args("verify", args, ["model"]);
        if (a.Positionals.Count != 1) throw new ArgumentException("usage: pictor verify FILE.png [--model DIR]");
        string file = a.Positionals[0];
        var png = PngDecoder.DecodeFile(file);
        var g = GenerationParameters.FromPng(png) ?? throw new FormatException($"'{file}' has no Pictor generation metadata (a 'pictor' text chunk); only images written by 'pictor generate' can be verified");
        string model = a.Optional("model") ?? g.Model ?? DefaultModel;
        var pipe = TextToImage.Load(ResolveModel(model));
        if (pipe.WeightsHash != g.ModelHash)
            throw new ArgumentException($"'{file}' was made by weights with hash {g.ModelHash}, but {model} has {pipe.WeightsHash}; pass --model with the model that made it");
        var again = Txt2Img.Regenerate(pipe, g);
        var mine = Image.Load(File.ReadAllBytes(file));
        if (again.Width != mine.Width || again.Height != mine.Height)
        {
            Console.WriteLine($"DIFFERENT: regenerated {again.Width}x{again.Height}, file is {mine.Width}x{mine.Height}");
            return 1;
        }
        int diff = 0, max = 0;
        for (int i = 0; i < mine.Rgba.Length; i++)
        {
            int d = Math.Abs(mine.Rgba[i] - again.Rgba[i]);
            if (d != 0) { diff++; max = Math.Max(max, d); }
        }
        if (diff == 0) { Console.WriteLine($"IDENTICAL: {file} regenerates pixel for pixel from its metadata (seed {g.Seed}, {g.Sampler}, {g.Steps} steps, CFG {g.CfgScale})"); return 0; }
        Console.WriteLine($"DIFFERENT: {diff} of {mine.Rgba.Length} channel values differ (largest difference {max}); the same weights and settings gave other pixels (different thread count or GEMM backend? images made before Winograd convolutions came in, or on a machine without AVX-512, regenerate exactly with PICTOR_CONV_WINOGRAD=0)");
        return 1;
    }

    /// <summary>A model path as given, or relative to the Pictor checkout (so the default works from any folder).</summary>
    public static string ResolveModel(string path)
    {
        if (Directory.Exists(path) || Path.IsPathRooted(path)) return path;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, path)) && File.Exists(Path.Combine(d.FullName, "Pictor.slnx"))) return Path.Combine(d.FullName, path);
        return path;
    }
}
