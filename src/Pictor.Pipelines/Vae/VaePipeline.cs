using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Models.Text;
using Pictor.Models.Vae;
using Pictor.Text;

namespace Pictor.Pipelines.Vae;

// Dimension legend: B batch, Z latent width, H = W = image size.

/// <summary>
/// A conditional VAE ready to sample (the source documents' VAE baseline): BPE tokenizer and
/// <see cref="ConditionalVae"/>. Sampling draws z ~ N(0, T^2 I) for temperature T (row i from Rng(seed + i)) and
/// decodes it with the caption: one network call, no steps, no guidance. Model directory: config.json ("format":
/// "pictor-vae"), tokenizer/, model.safetensors, weights.sha256.
/// </summary>
public sealed class VaePipeline : ITextToImage
{
    public const string Format = "pictor-vae", ConfigFile = OneCallModel.ConfigFile,
        WeightsFile = OneCallModel.WeightsFile, TokenizerDir = OneCallModel.TokenizerDir, SamplerName = "prior";
    public const int Version = 1;
    public static readonly string[] PresetNames = ["tiny", "xs"];

    public string Preset { get; }
    public BpeTokenizer Tokenizer { get; }
    public ConditionalVae Model { get; }
    public VaeConfig Config => Model.Config;
    public string WeightsHash { get; private set; } = "unsaved";

    public string Family => "vae";
    public int ImageSize { get; }
    public int TextContext => Config.Text.Context;
    public string DefaultSampler => SamplerName;
    /// <summary>One decoder call: the "steps" of its metadata.</summary>
    public int DefaultSteps => 1;
    public float DefaultGuidance => 1f;
    /// <summary>The latent vector's width Z.</summary>
    public int Latent => Config.Latent;

    public VaePipeline(string preset, int imageSize, VaeConfig config, BpeTokenizer tokenizer, Rng rng)
    {
        if (tokenizer.VocabSize != config.Text.Vocab)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the VAE config says "
                + $"vocab = {config.Text.Vocab}; use the tokenizer saved with the model");
        if (imageSize % config.Downsample != 0)
            throw new ArgumentException($"image size {imageSize} is not divisible by the VAE's downsampling "
                + $"{config.Downsample}; use a multiple of it");
        Preset = preset; ImageSize = imageSize; Tokenizer = tokenizer;
        Model = new ConditionalVae(config, imageSize, rng);
    }

    /// <summary>tiny: tests (16x16 to 8 numbers); xs: the emoji baseline (32x32 to 64 numbers). The decoder's sigma
    /// sets the trade between sharp reconstructions and prior samples that look like the data; xs takes 0.3
    /// (docs/models/emoji-vae.md).</summary>
    public static VaeConfig FromPreset(string name, int vocab, int context) => name switch
    {
        "tiny" => new VaeConfig(new TextEncoderConfig(vocab, context, Layers: 1, Dim: 32, Heads: 2, OutDim: 32),
            [8, 16, 16], Latent: 8, Groups: 4, KlWarmup: 10),
        "xs" => new VaeConfig(new TextEncoderConfig(vocab, context, Layers: 2, Dim: 128, Heads: 4, OutDim: 128),
            [64, 128, 128], Latent: 64, Groups: 8, Sigma: 0.3f, KlWarmup: 500),
        _ => throw new ArgumentException($"unknown VAE preset '{name}'; use {string.Join(", ", PresetNames)}"),
    };

    /// <summary>Caption token ids [B, S]; too-long captions are an error unless <paramref name="truncate"/>.</summary>
    public IntTensor Ids(IReadOnlyList<string> captions, bool truncate = false) =>
        Tokenizer.EncodeBatch(captions, TextContext, truncate);

    /// <inheritdoc/>
    public string? Refuse(SamplingSettings s)
    {
        if (s.Sampler != SamplerName)
            return $"a VAE decodes one latent drawn from its prior (sampler '{SamplerName}'); drop --sampler";
        if (s.Steps != 1) return "a VAE draws an image in one decoder call; drop --steps (it is for diffusion models)";
        if (s.Guidance != 1f || s.NegativePrompt != null)
            return "a VAE has no classifier-free guidance; drop --cfg and --negative (use --temperature to trade "
                + "variety for typical images)";
        if (s.TopK != 0 || s.TopP != 1f) return "a VAE samples no tokens; drop --top-k and --top-p";
        return null;
    }

    /// <summary>Images [B, 3, H, W] in [-1, 1]: row i decodes z ~ N(0, T^2 I) [Z] from Rng(seed + i) with prompts[i].
    /// Settings are assumed checked.</summary>
    public Tensor Sample(IReadOnlyList<string> prompts, SamplingSettings s, SampleStep? onStep = null)
    {
        var z = OneCallModel.PriorNoise(prompts.Count, Latent, s.Seed, s.Temperature);     // (B, Z)
        Model.Train(false);
        var img = Model.Generate(Ids(prompts), z);          // (B, 3, H, W)
        var y = img.Span;
        for (int i = 0; i < y.Length; i++) y[i] = Math.Clamp(y[i], -1f, 1f);
        onStep?.Invoke(1, 1, null);
        return img;
    }

    // ------------------------------------------------------------------------------------------- save / load

    public string ToJson() => OneCallModel.ToJson(Format, Version, Preset, ImageSize, Config);

    /// <summary>Reads config.json: (preset, image size, config).</summary>
    public static (string Preset, int ImageSize, VaeConfig Config) ParseConfig(string json, string source) =>
        OneCallModel.Parse<VaeConfig>(json, source, Format, Version, "VAE");

    /// <summary>Writes config.json, tokenizer/, model.safetensors and weights.sha256, each atomically.</summary>
    public void Save(string dir) => WeightsHash = OneCallModel.Save(dir, ToJson(), Tokenizer, Model, Format);

    public static VaePipeline Load(string dir) => Load(ModelDirectory.Open(dir, Format, "VAE model"));

    public static VaePipeline Load(ModelDirectory m)
    {
        var (preset, size, cfg) = ParseConfig(m.ConfigJson, m.ConfigPath);
        var p = new VaePipeline(preset, size, cfg, BpeTokenizer.Load(m.Require(TokenizerDir)), new Rng(0));
        p.WeightsHash = OneCallModel.LoadWeights(m, p.Model);
        return p;
    }
}
