using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine.Diagnostics;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Vq;
using static System.FormattableString;

namespace Pictor.Pipelines;

/// <summary>Generates one image from the model directory <paramref name="modelDir"/> and says what it made, for the
/// timing row ("32x32, dpm++ 20 steps, cfg 3"). Throws when it cannot.</summary>
public delegate string GenerateOne(string modelDir);

/// <summary>
/// The checks behind 'pictor doctor', as rows for a table (<see cref="CheckResult"/>; the caller prints them and exits
/// non-zero when any is not Ok): the engine's (<see cref="EngineChecks"/>: environment, GEMM backends, every op), then
/// for each model directory under models/ that it loads and that its weights match its <see cref="WeightsManifest"/>,
/// then one image's generation time. Prints nothing.
/// </summary>
public static class Doctor
{
    /// <summary>The model the timing row samples when the caller names none: the CLI's default model.</summary>
    public const string DefaultTimingModel = "emoji";

    public const string TimingPrompt = "a red circle";

    /// <summary>Every row: <see cref="EngineChecks.Run"/>, <see cref="ModelChecks"/> of <paramref name="modelsDir"/>,
    /// and <see cref="TimeOneImage"/> of <paramref name="timingModel"/> (a folder under modelsDir, default
    /// <see cref="DefaultTimingModel"/>, else the first diffusion model there) with <paramref name="generateOne"/>
    /// (default <see cref="GenerateOneImage"/>).</summary>
    public static IReadOnlyList<CheckResult> Run(string modelsDir, GenerateOne? generateOne = null,
                                                 string? timingModel = null)
    {
        var rows = new List<CheckResult>(EngineChecks.Run());
        rows.AddRange(ModelChecks(modelsDir));
        rows.Add(TimeOneImage(modelsDir, timingModel, generateOne ?? GenerateOneImage));
        return rows;
    }

    /// <summary>Two rows (load, weights) for each model directory under <paramref name="modelsDir"/> (each folder with
    /// a config.json; other folders are a failed row, as is a missing or empty modelsDir).</summary>
    public static IReadOnlyList<CheckResult> ModelChecks(string modelsDir)
    {
        if (!Directory.Exists(modelsDir))
            return [Failed($"'{modelsDir}' does not exist; run from the repository root or pass the models folder")];
        var dirs = Directory.GetDirectories(modelsDir).Where(d => !Path.GetFileName(d).StartsWith('.'))
            .Order(StringComparer.Ordinal).ToList();
        if (dirs.Count == 0) return [Failed($"'{modelsDir}' holds no model directory")];
        return dirs.SelectMany(CheckModel).ToList();

        static CheckResult Failed(string detail) => new(CheckSection.Models, "models", false, detail);
    }

    /// <summary>"NAME: load" (config.json's format picks the family's Load; the detail gives the format and the weights
    /// hash PNG metadata records) and "NAME: weights" (<see cref="WeightsManifest.Verify"/>).</summary>
    public static IReadOnlyList<CheckResult> CheckModel(string dir)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir));
        var load = CheckResult.Timed(CheckSection.Models, $"{name}: load", () => (true, Load(dir)));
        var hash = CheckResult.Timed(CheckSection.Models, $"{name}: weights", () => WeightsManifest.Verify(dir));
        return [load, hash];
    }

    /// <summary>config.json's "format" field; throws, in one line, when it is missing or not JSON.</summary>
    public static string FormatOf(string dir)
    {
        string cfg = Path.Combine(dir, "config.json");
        if (!File.Exists(cfg))
            throw new FileNotFoundException($"{cfg} is missing: '{dir}' is not a model directory; "
                                            + "remove it from the models folder or restore its files");
        string fix = $"restore it (git checkout -- {cfg}) or re-export the model";
        try
        {
            return (string?)JsonNode.Parse(File.ReadAllText(cfg))?["format"]
                   ?? throw new FormatException($"{cfg} has no \"format\" field; {fix}");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new FormatException($"{cfg} is not a valid model config ({e.Message}); {fix}");
        }
    }

    /// <summary>Loads a model directory through its family's Load and says what it is.</summary>
    private static string Load(string dir)
    {
        string format = FormatOf(dir);
        switch (format)
        {
            case DiffusionConfig.Format: return Describe(format, DiffusionPipeline.Load(dir));
            case DalleSetup.Format: return Describe(format, DallePipeline.Load(dir));
            case Vae.VaePipeline.Format: return Describe(format, Vae.VaePipeline.Load(dir));
            case Gan.GanPipeline.Format: return Describe(format, Gan.GanPipeline.Load(dir));
            case Unclip.UnclipPipeline.Format: return Describe(format, Unclip.UnclipPipeline.Load(dir));
            case ClipPipeline.Format: return $"{format}, {ClipPipeline.Load(dir).ImageSize}px images";
            case VqModel.Format: return $"{format}, {VqModel.Load(dir).ImageSize}px images";
            default:
                throw new FormatException($"{Path.Combine(dir, "config.json")} has format '{format}'; Pictor reads "
                                          + $"{DiffusionConfig.Format}, {DalleSetup.Format}, {Vae.VaePipeline.Format}, "
                                          + $"{Gan.GanPipeline.Format}, "
                                          + $"{Unclip.UnclipPipeline.Format}, {ClipPipeline.Format} "
                                          + $"and {VqModel.Format} models");
        }
        static string Describe(string format, ITextToImage p) =>
            $"{format}, {p.ImageSize}px images, weights hash {p.WeightsHash}";
    }

    /// <summary>Times <paramref name="generateOne"/> on <paramref name="model"/> under <paramref name="modelsDir"/>
    /// (null: <see cref="DefaultTimingModel"/> when present, else the first pictor-diffusion model there).</summary>
    public static CheckResult TimeOneImage(string modelsDir, string? model, GenerateOne generateOne)
    {
        const string name = "one image";
        string? dir = model != null ? Path.Combine(modelsDir, model) : DefaultDiffusionModel(modelsDir);
        if (dir == null)
            return new(CheckSection.Timing, name, false,
                       $"'{modelsDir}' has no {DiffusionConfig.Format} model to time; pass a models folder with one");
        var r = CheckResult.Timed(CheckSection.Timing, name, () => (true, generateOne(dir)));   // Duration: the time
        return r with { Detail = $"{Path.GetFileName(dir)}: {r.Detail}" };
    }

    private static string? DefaultDiffusionModel(string modelsDir)
    {
        if (!Directory.Exists(modelsDir)) return null;
        string preferred = Path.Combine(modelsDir, DefaultTimingModel);
        bool IsDiffusion(string d)
        {
            try { return FormatOf(d) == DiffusionConfig.Format; }
            catch (Exception e) when (e is IOException or FormatException) { return false; }
        }
        return Directory.Exists(preferred) && IsDiffusion(preferred) ? preferred
            : Directory.GetDirectories(modelsDir).Order(StringComparer.Ordinal).FirstOrDefault(IsDiffusion);
    }

    /// <summary>The default <see cref="GenerateOne"/>: loads the diffusion model and samples one image of
    /// <see cref="TimingPrompt"/> with the model's defaults (sampler, steps, CFG scale), seed 0. This is the seam to
    /// re-point when the generation API changes; the detail splits load and sampling time.</summary>
    public static string GenerateOneImage(string modelDir)
    {
        var sw = Stopwatch.StartNew();
        var p = TextToImage.Load(modelDir);
        double load = sw.Elapsed.TotalSeconds;
        var r = p.Generate(new GenerationRequest(TimingPrompt));
        var o = r.Settings;
        var img = r.Images[0].Image.ToTensor().ToArray();   // (3, H, W) in [-1, 1]
        double sample = sw.Elapsed.TotalSeconds - load;
        if (img.Any(v => !float.IsFinite(v)))
            throw new InvalidOperationException($"the image from '{modelDir}' has NaN or infinite pixels; "
                                                + "see the op checks above, and check its weights");
        return Invariant($"{p.ImageSize}x{p.ImageSize}, {o.Sampler} {o.Steps} steps, cfg {o.Guidance:G3} ")
               + Invariant($"(load {load:F2} s, sample {sample:F2} s)");
    }
}
