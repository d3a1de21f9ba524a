using System.CommandLine;
using Pictor.Pipelines.Inside;

namespace Pictor.Cli;

/// <summary>'pictor inspect' (what a model folder holds): parse, call <see cref="ModelReport"/>, print.</summary>
internal static class InsideVerbs
{
    public static Command Inspect()
    {
        var model = new Argument<string>("MODEL") { Description = "a model directory of any family, or a training run" };
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
