using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;
using Pictor.Text;

namespace Pictor.Pipelines;

/// <summary>What 'pictor generate', 'verify' and 'eval' need from a text-to-image model of any family.</summary>
public interface ITextToImage
{
    /// <summary>"diffusion" or "dalle".</summary>
    string Family { get; }
    int ImageSize { get; }
    /// <summary>First 10 hex digits of the SHA-256 of the weights (A1111's "Model hash" style).</summary>
    string WeightsHash { get; }
    BpeTokenizer Tokenizer { get; }
    /// <summary>Text tokens per caption, bos and eos included.</summary>
    int TextContext { get; }
    /// <summary>The sampler and step count used when the caller names none.</summary>
    string DefaultSampler { get; }
    int DefaultSteps { get; }
    /// <summary>The classifier-free guidance scale used when the caller names none: 3 unless the model says otherwise.</summary>
    float DefaultCfg => 3f;

    /// <summary>Images [B, 3, H, W] in [-1, 1]; row i uses prompts[i] and seed o.Seed + i (o.Prompt and o.Count are ignored).</summary>
    Tensor Sample(IReadOnlyList<string> prompts, GenerateOptions o);

    /// <summary>o.Count images of o.Prompt, image i from seed o.Seed + i.</summary>
    Tensor Generate(GenerateOptions o)
    {
        if (o.Count < 1 || o.Count > GenerateOptions.MaxCount) throw new ArgumentException($"-n (--count) must be between 1 and {GenerateOptions.MaxCount}, got {o.Count}; make several calls for more images");
        return Sample(Enumerable.Repeat(o.Prompt, o.Count).ToList(), o);
    }
}

/// <summary>Opens a model directory of any family: config.json's "format" says which.</summary>
public static class TextToImage
{
    public static ITextToImage Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"model directory '{dir}' does not exist; pass --model with a model or training run directory (models/emoji, models/shapes, or a run's folder)");
        string model = File.Exists(Path.Combine(dir, "config.json")) || !File.Exists(Path.Combine(dir, "model", "config.json")) ? dir : Path.Combine(dir, "model");
        string cfg = Path.Combine(model, "config.json");
        if (!File.Exists(cfg)) throw new FileNotFoundException($"'{dir}' has no config.json; it is not a Pictor model (a run directory gets RUN/model after its first validation)");
        string? format;
        try { format = (string?)JsonNode.Parse(File.ReadAllText(cfg))?["format"]; }
        catch (JsonException e) { throw new FormatException($"{cfg} is not valid JSON: {e.Message}"); }
        return format switch
        {
            DalleSetup.Format => DallePipeline.Load(model),
            DiffusionConfig.Format => DiffusionPipeline.Load(model),
            "pictor-vqvae" => throw new ArgumentException($"'{dir}' is a VQ-VAE image tokenizer, not a text-to-image model; train a DALL-E transformer on it with 'pictor train dalle --vqvae {dir}'"),
            _ => throw new FormatException($"{cfg} has format '{format}'; Pictor generates from pictor-diffusion and pictor-dalle models"),
        };
    }
}
