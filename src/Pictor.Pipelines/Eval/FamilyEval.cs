using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Inside;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Eval;

/// <summary>One model of the family table: a model folder, and how many candidates the judge reranks (1 = none).
/// </summary>
public sealed record FamilyEntry(string Name, string Dir, int Rerank = 1);

/// <summary>One row of the family table.</summary>
/// <param name="Sampling">The model's default sampling (what 'pictor generate' uses), in words.</param>
/// <param name="Parameters">Numbers stored in the model's weights, sub-models included (DALL-E's VQ-VAE, unCLIP's
/// CLIP).</param>
/// <param name="TrainingMinutes">From the model's training.json (<see cref="TrainingRecord"/>); null when it has
/// none.</param>
public sealed record FamilyRow(FamilyEntry Entry, string Family, string Sampling, long Parameters,
    double? TrainingMinutes, string? TrainingDetail, ClipEvalReport Report)
{
    public double ImagesPerSecond => 1 / Report.SecondsPerImage;
}

/// <summary>The family table and what it was measured on.</summary>
public sealed record FamilyReport(IReadOnlyList<FamilyRow> Rows, int Images, string Judge, string Data)
{
    /// <summary>The markdown table (the README's), one row per model, then the real val images; each model's
    /// sampling is in <see cref="SamplingLine"/>.</summary>
    public string Table()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("| family | model | R-precision | CLIP score | FD | images/s | "
            + "training | parameters |\n|---|---|---|---|---|---|---|---|\n");
        foreach (var r in Rows)
            sb.Append(string.Create(inv, $"| {r.Family} | {r.Entry.Name} | {r.Report.RPrecision:F3} | "
                + $"{r.Report.ClipScore:F2} | {r.Report.Fd:F4} | {Rate(r.ImagesPerSecond)} | "
                + $"{(r.TrainingMinutes is { } m ? $"{m:F0} min" : "?")} | {r.Parameters / 1e6:F1} M |\n"));
        if (Rows.Count > 0)
        {
            var real = Rows[0].Report;
            sb.Append(string.Create(inv, $"| real val images | | {real.RealRPrecision:F3} | {real.RealClipScore:F2} "
                + $"| 0 | | | |\n"));
        }
        return sb.ToString();
    }

    /// <summary>"sampling: emoji dpm++ 20 steps, CFG 3; ...": each model's default sampling, one line.</summary>
    public string SamplingLine => "sampling: " + string.Join("; ", Rows.Where(r => r.Entry.Rerank == 1)
        .Select(r => $"{r.Entry.Name} {r.Sampling}"));

    private static string Rate(double v) => v.ToString(v >= 99.5 ? "F0" : v >= 9.995 ? "F1" : "F2",
        CultureInfo.InvariantCulture);

    public string ToJson() => new JsonObject
    {
        ["format"] = "pictor-family-eval", ["judge"] = Judge, ["data"] = Data, ["images"] = Images,
        ["rows"] = new JsonArray(Rows.Select(r => (JsonNode)new JsonObject
        {
            ["name"] = r.Entry.Name, ["model"] = r.Entry.Dir, ["family"] = r.Family, ["rerank"] = r.Entry.Rerank,
            ["sampling"] = r.Sampling, ["parameters"] = r.Parameters, ["training_minutes"] = r.TrainingMinutes,
            ["training"] = r.TrainingDetail, ["r_precision"] = r.Report.RPrecision,
            ["clip_score"] = r.Report.ClipScore, ["fd_clip"] = r.Report.Fd,
            ["images_per_second"] = r.ImagesPerSecond,
            ["real_r_precision"] = r.Report.RealRPrecision, ["real_clip_score"] = r.Report.RealClipScore,
        }).ToArray()),
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}

/// <summary>
/// 'pictor eval families': every text-to-image model in a folder (the shipped emoji models), on the same val prompts
/// and seeds, scored by one judge CLIP (<see cref="ClipEval"/>: R-precision, CLIP score, FD in its features, images
/// per second), with each model's parameters and recorded training time, and a grid with one column per model (and a
/// last one of the real images) for the first prompts. Each model samples with its own defaults, as 'pictor generate'
/// does; DALL-E also appears reranked (best of N by the judge, which flatters it on the judge's figures: the table
/// says so by its name).
/// </summary>
public static class FamilyEval
{
    /// <summary>The text-to-image models under <paramref name="root"/> whose folder name starts with
    /// <paramref name="prefix"/> and that draw <paramref name="imageSize"/> images, by name; each DALL-E model twice,
    /// the second reranked best of <paramref name="rerank"/>.</summary>
    public static List<FamilyEntry> Discover(string root, string prefix, int imageSize, int rerank)
    {
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"no model folder '{root}'; pass --models DIR (e.g. models)");
        var found = new List<FamilyEntry>();
        foreach (var dir in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(dir);
            if (!name.StartsWith(prefix, StringComparison.Ordinal)
                || !File.Exists(Path.Combine(dir, ModelDirectory.ConfigFile))) continue;
            string format = ModelDirectory.Open(dir).Format;
            if (format is ClipPipeline.Format or Vq.VqModel.Format) continue;   // they score or tokenize, not draw
            if ((int?)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, ModelDirectory.ConfigFile)))?["image_size"]
                is { } size && size != imageSize) continue;
            found.Add(new FamilyEntry(name, dir));
            if (format == Dalle.DalleSetup.Format && rerank > 1)
                found.Add(new FamilyEntry($"{name}, best of {rerank}", dir, rerank));
        }
        if (found.Count == 0)
            throw new ArgumentException($"no {imageSize}x{imageSize} text-to-image model named {prefix}* in '{root}'");
        return found;
    }

    /// <summary>Scores every entry on the first <paramref name="images"/> val images' captions (seed = the image's
    /// index) and draws the grid of the first <paramref name="gridPrompts"/> prompts.</summary>
    public static (FamilyReport Report, Image Grid) Run(IReadOnlyList<FamilyEntry> entries, ClipPipeline judge,
        string judgeName, ImageCaptionSet val, string dataName, int images, int candidates, int gridPrompts,
        Action<string, int, int>? progress = null)
    {
        int k = Math.Min(gridPrompts, Math.Min(images, val.Count)), size = judge.ImageSize, per = 3 * size * size;
        var rows = new List<FamilyRow>();
        var columns = new List<Image[]>();
        foreach (var e in entries)
        {
            var t2i = TextToImage.Load(e.Dir);
            var (_, o) = t2i.Resolve(new GenerationRequest(""));
            float[]? kept = null;
            var report = ClipEval.Run(t2i.Pipeline, judge, val, o, images, candidates, progress: (d, n) =>
                progress?.Invoke(e.Name, d, n), rerank: e.Rerank, onImages: g => kept = g);
            var rec = TrainingRecord.Read(e.Dir);
            rows.Add(new FamilyRow(e, t2i.Family, Sampling(t2i.Family, o), Parameters(e.Dir), rec?.Minutes,
                rec?.Detail, report));
            columns.Add(Enumerable.Range(0, k).Select(i => Image.FromTensor(Tensor.FromArray(
                kept![(i * per)..((i + 1) * per)], 3, size, size))).ToArray());
        }
        var real = new float[per];
        columns.Add(Enumerable.Range(0, k).Select(i =>
        {
            val.Read(i, real);
            return Image.FromTensor(Tensor.FromArray((float[])real.Clone(), 3, size, size));
        }).ToArray());
        var tiles = Enumerable.Range(0, k).SelectMany(i => columns.Select(c => c[i])).ToList();
        return (new FamilyReport(rows, Math.Min(images, val.Count), judgeName, dataName),
            Image.Grid(tiles, columns.Count));
    }

    /// <summary>The default sampling of a family, in words.</summary>
    private static string Sampling(string family, SamplingSettings o) => family switch
    {
        "gan" or "vae" => "one network call",
        "dalle" => string.Create(CultureInfo.InvariantCulture, $"tokens, temperature {o.Temperature:G3}, "
            + $"top-k {o.TopK}, CFG {o.Guidance:G3}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{o.Sampler} {o.Steps} steps, CFG {o.Guidance:G3}"),
    };

    /// <summary>Numbers stored in a model folder's weights and its sub-models' (from the safetensors headers).
    /// </summary>
    public static long Parameters(string dir)
    {
        var r = ModelReport.Of(dir);
        return r.Elements + r.SubModels.Sum(s => s.Elements);
    }
}
