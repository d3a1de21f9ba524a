using System.CommandLine;
using System.Globalization;
using Pictor.Imaging;
using Pictor.Imaging.Png;
using Pictor.Pipelines;
using Pictor.Pipelines.Inside;

namespace Pictor.Cli;

/// <summary>'pictor generate' and 'pictor verify': parse, call <see cref="TextToImage"/>, print.</summary>
internal static class GenerateVerbs
{
    /// <summary>The shipped emoji model, or the shapes model while the emoji one is not in the checkout.</summary>
    public static string DefaultModel =>
        Directory.Exists(ResolveModel("models/emoji")) || !Directory.Exists(ResolveModel("models/shapes"))
            ? "models/emoji" : "models/shapes";

    /// <summary>The sampling options every verb that generates shares (generate, eval shapes, eval clip).</summary>
    internal sealed class Sampling
    {
        public readonly Option<string?> Sampler = new("--sampler")
        {
            Description = "diffusion: dpm++, ddim or ddpm; DALL-E: dalle (default: the model's, dpm++ for diffusion)",
        };
        public readonly Option<int?> Steps = CliOptions.IntOrModel("--steps",
            "denoising steps (default: the model's, 20 for diffusion; DALL-E takes no other)", 1, 100_000);
        public readonly Option<float?> Cfg = CliOptions.FloatOrModel("--cfg",
            "classifier-free guidance scale, 1 = off (default: the model's default_cfg, else 3)", 0f, 50f);
        public readonly Option<float> Eta = CliOptions.Float("--eta", "DDIM's eta (0 = deterministic)", 0f, 0f, 1f);
        public readonly Option<float> Temperature = CliOptions.Float("--temperature",
            "DALL-E token temperature (0 = greedy)", 1f, 0f, 10f);
        public readonly Option<int> TopK = CliOptions.Int("--top-k",
            "DALL-E: draw from the K likeliest tokens (0 = off)",
            0, 0, 1_000_000);
        public readonly Option<float> TopP = CliOptions.Float("--top-p", "DALL-E nucleus sampling (1 = off)", 1f, 0f,
            1f);

        public Sampling() => Sampler.CompletionSources.Add("dpm++", "ddim", "ddpm", "dalle");

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { Sampler, Steps, Cfg, Eta, Temperature, TopK, TopP }) c.Add(o);
        }

        /// <summary>A request with these options set (the rest as given).</summary>
        public GenerationRequest Request(ParseResult p, GenerationRequest r) => r with
        {
            Sampler = p.GetValue(Sampler), Steps = p.GetValue(Steps), Guidance = p.GetValue(Cfg), Eta = p.GetValue(Eta),
            Temperature = p.GetValue(Temperature), TopK = p.GetValue(TopK), TopP = p.GetValue(TopP),
        };
    }

    public static Command Generate()
    {
        var prompt = new Argument<string>("PROMPT") { Description = "what to draw" };
        var output = CliOptions.Text("--out",
            "the PNG to write (-n N without --grid writes OUT-0.png ... OUT-(N-1).png)",
            required: true);
        output.Validators.Add(r =>
        {
            string? v = r.Tokens.Count > 0 ? r.Tokens[^1].Value : null;
            if (v != null && !v.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                r.AddError($"--out must name a .png file, got '{v}'");
        });
        var model = CliOptions.Text("--model", "model directory (or training run) of any family",
            fallback: DefaultModel);
        var negative = CliOptions.Text("--negative", "negative prompt: what guidance steers away from");
        var seed = CliOptions.ULong("--seed", "seed of the first image; image i uses seed + i", 0);
        var count = CliOptions.Int("--count", "images to generate", 1, 1, GenerationRequest.MaxCount, "-n");
        var grid = CliOptions.Flag("--grid", "write one grid image instead of one file per image");
        var truncate = CliOptions.Flag("--truncate", "cut a prompt longer than the model's text context");
        var candidates = CliOptions.IntOrModel("--candidates",
            "CLIP reranking: draw this many candidates and keep the best --keep (default 32 when --keep is given)",
            1, GenerationRequest.MaxCount);
        var keep = CliOptions.IntOrModel("--keep", "CLIP reranking: how many of the candidates to keep (default 4)",
            1, GenerationRequest.MaxCount);
        var clip = CliOptions.Text("--clip", "CLIP model for reranking (default models/emoji-clip when present)");
        var filmstrip = CliOptions.Text("--filmstrip",
            "also write the first drawn image's clean-image estimate every steps/--frames steps, left to right (PNG)");
        var frames = CliOptions.Int("--frames", "frames in the --filmstrip", 8, 1, 1000);
        var budget = CliOptions.Text("--time-budget",
            "diffusion: pick the step count that fits this wall-clock time (5s, 2m, 500ms), from a measured "
            + "calibration; replaces --steps");
        filmstrip.Validators.Add(r =>
        {
            string? v = r.Tokens.Count > 0 ? r.Tokens[^1].Value : null;
            if (v != null && !v.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                r.AddError($"--filmstrip must name a .png file, got '{v}'");
        });
        var s = new Sampling();
        var c = new Command("generate", "Generate images from a text prompt with any model family")
        {
            prompt, output, model, negative, seed, count, grid, truncate, candidates, keep, clip, filmstrip, frames,
            budget,
        };
        s.AddTo(c);
        c.Validators.Add(r =>
        {
            int? n = r.GetValue(candidates), k = r.GetValue(keep);
            if (n != null && k != null && k > n)
                r.AddError($"--keep must be between 1 and --candidates ({n}), got {k}");
        });
        c.SetAction(p =>
        {
            string outPath = p.GetValue(output)!, modelArg = p.GetValue(model)!;
            bool reranked = p.GetValue(candidates) != null || p.GetValue(keep) != null;
            string? clipDir = reranked ? p.GetValue(clip) ?? DefaultClip() : null;
            var t2i = TextToImage.Load(ResolveModel(modelArg), clipDir == null ? null : ResolveModel(clipDir));
            t2i.Name = modelArg;   // PNG metadata records the model as given, so the same command makes the same file
            // CLIP reranking: -n is ignored; N candidates are drawn (seeds seed..seed+N-1) and the K best kept, best
            // first. Each kept image carries its own metadata (batch of N, its row), so 'pictor verify' still works.
            var request = s.Request(p, new GenerationRequest(p.GetValue(prompt)!)
            {
                NegativePrompt = p.GetValue(negative), Seed = p.GetValue(seed), Truncate = p.GetValue(truncate),
                Count = reranked ? p.GetValue(keep) ?? 4 : p.GetValue(count),
                Candidates = reranked ? p.GetValue(candidates) ?? 32 : 0,
            });
            if (p.GetValue(budget) is { } text)
            {
                if (p.Given(s.Steps)) throw new ArgumentException("pass --steps or --time-budget, not both");
                var limit = TimeBudget.Parse(text);
                if (TimeBudget.Refuse(t2i) is { } no) throw new ArgumentException(no);
                t2i.Resolve(request);   // the request's other values checked before the calibration runs
                var fit = TimeBudget.Fit(t2i, request, limit, Program.Cancel);
                Console.WriteLine(fit.ToString());
                request = request with { Steps = fit.Steps };
            }
            var (_, settings) = t2i.Resolve(request);   // every value checked before any work or progress display
            string? stripPath = p.GetValue(filmstrip);
            if (stripPath != null)
            {
                if (Filmstrip.Refuse(t2i) is { } why) throw new ArgumentException(why);
                request = request with { PreviewEvery = Filmstrip.Every(settings.Steps, p.GetValue(frames)) };
            }
            Filmstrip? strip = null;
            IProgress<GenerationProgress>? Listen(IProgress<GenerationProgress>? inner) =>
                stripPath == null ? inner : strip = new Filmstrip(inner);
            int drawn = Math.Max(request.Count, request.Candidates);
            var result = drawn > 1
                ? ConsoleProgress.Run($"generate {drawn} images", bar => t2i.Generate(request,
                    Listen(new Reporter(g => bar.Update(g.Step, g.Total, settings.Sampler))), Program.Cancel))
                : t2i.Generate(request, Listen(null), Program.Cancel);
            foreach (var img in result.Images.Where(i => i.ClipScore != null))
                Console.WriteLine(FormattableString.Invariant(
                    $"kept candidate {img.Index} (seed {img.Parameters.Seed}): CLIP score {100 * img.ClipScore:F1}"));
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
            if (result.Images.Count == 1) { result.Images[0].Save(outPath); Console.WriteLine($"wrote {outPath}"); }
            else if (p.GetValue(grid)) { result.SaveGrid(outPath); Console.WriteLine($"wrote {outPath}"); }
            else
            {
                string stem = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outPath))!,
                    Path.GetFileNameWithoutExtension(outPath));
                for (int i = 0; i < result.Images.Count; i++)
                {
                    string f = $"{stem}-{i}.png";
                    result.Images[i].Save(f);
                    Console.WriteLine($"wrote {f}");
                }
            }
            if (strip != null && stripPath != null)
            {
                strip.ToImage().Save(stripPath);
                Console.WriteLine($"wrote {stripPath} ({strip.Frames.Count} frames, steps "
                    + $"{string.Join(", ", strip.Frames.Select(f => f.Step))})");
            }
            return 0;
        });
        return c;
    }

    private static string DefaultClip() =>
        Directory.Exists(ResolveModel("models/emoji-clip")) ? "models/emoji-clip"
            : throw new ArgumentException("reranking needs a CLIP model: pass --clip DIR (from 'pictor train clip')");

    public static Command Verify()
    {
        var file = new Argument<string>("FILE") { Description = "a PNG written by 'pictor generate'" };
        var model = CliOptions.Text("--model", "the model that made it (default: the one its metadata names)");
        var source = CliOptions.Text("--source",
            "an edited image's source PNG (pictor edit, inpaint, complete, vary; interpolate's first image)");
        var mask = CliOptions.Text("--mask", "an inpainted image's mask PNG");
        var source2 = CliOptions.Text("--source2", "an interpolation's second image (pictor interpolate A B)");
        var c = new Command("verify",
            "Regenerate an image from its PNG metadata and compare pixels (exit 1 if they differ)")
        {
            file, model, source, mask, source2,
        };
        c.SetAction(p =>
        {
            string path = p.GetValue(file)!;
            var png = PngDecoder.DecodeFile(path);
            var g = GenerationParameters.FromPng(png) ?? throw new FormatException(
                $"'{path}' has no Pictor generation metadata (a 'pictor' text chunk); only images written by "
                + "'pictor generate' can be verified");
            string name = p.GetValue(model) ?? g.Model ?? DefaultModel;
            var t2i = TextToImage.Load(ResolveModel(name));
            t2i.Name = name;
            var again = EditVerbs.Regenerate(t2i, g, p.GetValue(source), p.GetValue(mask), p.GetValue(source2));
            var mine = Image.Load(File.ReadAllBytes(path));
            if (again.Width != mine.Width || again.Height != mine.Height)
            {
                Console.WriteLine($"DIFFERENT: regenerated {again.Width}x{again.Height}, file is "
                    + $"{mine.Width}x{mine.Height}");
                return 1;
            }
            int diff = 0, max = 0;
            for (int i = 0; i < mine.Rgba.Length; i++)
            {
                int d = Math.Abs(mine.Rgba[i] - again.Rgba[i]);
                if (d != 0) { diff++; max = Math.Max(max, d); }
            }
            if (diff == 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"IDENTICAL: {path} regenerates pixel for "
                    + $"pixel from its metadata (seed {g.Seed}, {g.Sampler}, {g.Steps} steps, CFG {g.CfgScale})"));
                return 0;
            }
            Console.WriteLine($"DIFFERENT: {diff} of {mine.Rgba.Length} channel values differ (largest "
                + $"difference {max}); "
                + "the same weights and settings gave other pixels (different thread count or GEMM "
                    + "backend? images made "
                + "before Winograd convolutions came in, or on a machine without AVX-512, regenerate exactly with "
                + "PICTOR_CONV_WINOGRAD=0)");
            return 1;
        });
        return c;
    }

    /// <summary>A model path as given, or relative to the Pictor checkout (so the default works from any
    /// folder).</summary>
    public static string ResolveModel(string path)
    {
        if (Directory.Exists(path) || Path.IsPathRooted(path)) return path;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, path))
                && File.Exists(Path.Combine(d.FullName, "Pictor.slnx")))
                return Path.Combine(d.FullName, path);
        return path;
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread, at once (Progress{T} posts to the thread
/// pool, so its reports could arrive after the work, or out of order).</summary>
internal sealed class Reporter(Action<GenerationProgress> report) : IProgress<GenerationProgress>
{
    public void Report(GenerationProgress value) => report(value);
}
