using System.CommandLine;
using System.Globalization;
using Pictor.Pipelines;
using Pictor.Pipelines.Inside;

namespace Pictor.Cli;

/// <summary>'pictor inspect' (what a model folder holds) and 'pictor explain' (which word each pixel read): parse,
/// call <see cref="ModelReport"/> or <see cref="AttentionMaps"/>, print.</summary>
internal static class InsideVerbs
{
    public static Command Explain()
    {
        var prompt = new Argument<string>("PROMPT") { Description = "the caption to draw and explain" };
        var output = CliOptions.Text("--out", "the PNG to write: words across, resolutions down, the image at left",
            required: true);
        output.Validators.Add(r =>
        {
            string? v = r.Tokens.Count > 0 ? r.Tokens[^1].Value : null;
            if (v != null && !v.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                r.AddError($"--out must name a .png file, got '{v}'");
        });
        var model = CliOptions.Text("--model", "a diffusion model directory", fallback: GenerateVerbs.DefaultModel);
        var seed = CliOptions.ULong("--seed", "seed of the image", 0);
        var cell = CliOptions.Int("--cell", "pixels per map in the picture", 64, 16, 512);
        var s = new GenerateVerbs.Sampling();
        var c = new Command("explain", "Per-word attention maps: a diffusion model's cross-attention at each "
            + "resolution, averaged over the sampling steps, or which words each DALL-E image token read")
            { prompt, output, model, seed, cell };
        s.AddTo(c);
        c.SetAction(p =>
        {
            string modelArg = p.GetValue(model)!, outPath = p.GetValue(output)!;
            var t2i = TextToImage.Load(GenerateVerbs.ResolveModel(modelArg));
            t2i.Name = modelArg;
            var request = s.Request(p, new GenerationRequest(p.GetValue(prompt)!) { Seed = p.GetValue(seed) });
            var e = AttentionMaps.Explain(t2i, request, Program.Cancel);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
            e.ToImage(p.GetValue(cell)).Save(outPath);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"words {string.Join(" | ", e.Words)}; "
                + $"resolutions {string.Join(", ", e.Levels.Select(l => $"{l.Resolution}x{l.Resolution}"))}; "
                + $"{100 * e.WordShare:F1} % of the attention to the caption went to the words (the rest to bos, "
                + $"eos, padding)"));
            Console.WriteLine($"wrote {outPath}");
            return 0;
        });
        return c;
    }

    public static Command Inspect()
    {
        var model = new Argument<string>("MODEL")
        {
            Description = "a model directory of any family, or a training run",
        };
        var histogram = CliOptions.Text("--histogram",
            "VQ-VAE (or DALL-E's vqvae/): write the codebook usage histogram to this PNG");
        histogram.Validators.Add(r =>
        {
            string? v = r.Tokens.Count > 0 ? r.Tokens[^1].Value : null;
            if (v != null && !v.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                r.AddError($"--histogram must name a .png file, got '{v}'");
        });
        var c = new Command("inspect", "What a model folder holds: family, weights per module, config, tokenizer, "
            + "weights hash, training record and codebook health") { model, histogram };
        c.SetAction(p =>
        {
            var report = ModelReport.Of(GenerateVerbs.ResolveModel(p.GetValue(model)!));
            Console.Write(report.ToText());
            if (p.GetValue(histogram) is { } png)
            {
                var cb = report.Codebook ?? report.SubModels.Select(s => s.Codebook).FirstOrDefault(h => h != null)
                    ?? throw new ArgumentException($"'{report.Path}' has no moving-average VQ codebook counts to "
                        + "draw; --histogram needs a VQ-VAE (or a DALL-E model with one) trained with the EMA "
                        + "quantiser");
                cb.Histogram().Save(png);
                Console.WriteLine($"wrote {png}");
            }
            return 0;
        });
        return c;
    }
}
