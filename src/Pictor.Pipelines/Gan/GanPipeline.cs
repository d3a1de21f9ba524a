using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Models.Text;
using Pictor.Models.Gan;
using Pictor.Text;

namespace Pictor.Pipelines.Gan;

// Dimension legend: B batch, Z latent width, H = W = image size.

/// <summary>
/// A conditional GAN ready to sample (the source documents' GAN baseline): BPE tokenizer and the
/// <see cref="GanGenerator"/> (its EMA weights; the discriminator stays in the training run). Sampling draws
/// z ~ N(0, T^2 I) for temperature T (row i from Rng(seed + i); T below 1 is the truncation trick's trade of variety
/// for typical images) and runs the generator with the caption: one network call, no steps, no guidance. Model
/// directory: config.json ("format": "pictor-gan"), tokenizer/, model.safetensors, weights.sha256.
/// </summary>
public sealed class GanPipeline : ITextToImage
{
    public const string Format = "pictor-gan", ConfigFile = OneCallModel.ConfigFile,
        WeightsFile = OneCallModel.WeightsFile, TokenizerDir = OneCallModel.TokenizerDir, SamplerName = "prior";
    public const int Version = 1;
    public static readonly string[] PresetNames = ["tiny", "xs"];

    public string Preset { get; }
    public BpeTokenizer Tokenizer { get; }
    public GanGenerator Model { get; }
    public GanConfig Config => Model.Config;
    public string WeightsHash { get; private set; } = "unsaved";

    public string Family => "gan";
    public int ImageSize { get; }
    public int TextContext => Config.Text.Context;
    public string DefaultSampler => SamplerName;
    /// <summary>One generator call: the "steps" of its metadata.</summary>
    public int DefaultSteps => 1;
    public float DefaultGuidance => 1f;
    /// <summary>The noise vector's width Z.</summary>
    public int Latent => Config.Latent;

    public GanPipeline(string preset, GanConfig config, BpeTokenizer tokenizer, Rng rng)
    {
        if (tokenizer.VocabSize != config.Text.Vocab)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the GAN config says "
                + $"vocab = {config.Text.Vocab}; use the tokenizer saved with the model");
        Preset = preset; ImageSize = config.ImageSize; Tokenizer = tokenizer;
        Model = new GanGenerator(config, rng);
    }

    /// <summary>tiny: tests (16x16 from 8 numbers); xs: the emoji baseline (32x32 from 128 numbers; about 2.4 M
    /// generator and 2.1 M discriminator parameters). The image side follows from the generator's levels: a preset
    /// draws one size (docs/models/emoji-gan.md).</summary>
    public static GanConfig FromPreset(string name, int vocab, int context) => name switch
    {
        "tiny" => new GanConfig(new TextEncoderConfig(vocab, context, Layers: 1, Dim: 32, Heads: 2, OutDim: 32),
            new TextEncoderConfig(vocab, context, Layers: 1, Dim: 16, Heads: 2, OutDim: 16), [16, 16, 8], [8, 16],
            Latent: 8, Groups: 4),
        "xs" => new GanConfig(new TextEncoderConfig(vocab, context, Layers: 2, Dim: 128, Heads: 4, OutDim: 128),
            new TextEncoderConfig(vocab, context, Layers: 1, Dim: 64, Heads: 4, OutDim: 64), [128, 96, 64, 32],
            [32, 64, 128, 256], Latent: 128, Groups: 8),
        _ => throw new ArgumentException($"unknown GAN preset '{name}'; use {string.Join(", ", PresetNames)}"),
    };

    /// <summary>The side preset <paramref name="name"/> draws.</summary>
    public static int PresetSize(string name) => FromPreset(name, 300, 8).ImageSize;

    /// <summary>Caption token ids [B, S]; too-long captions are an error unless <paramref name="truncate"/>.</summary>
    public IntTensor Ids(IReadOnlyList<string> captions, bool truncate = false) =>
        Tokenizer.EncodeBatch(captions, TextContext, truncate);

    /// <inheritdoc/>
    public string? Refuse(SamplingSettings s)
    {
        if (s.Sampler != SamplerName)
            return $"a GAN maps one noise vector drawn from its prior (sampler '{SamplerName}'); drop --sampler";
        if (s.Steps != 1)
            return "a GAN draws an image in one generator call; drop --steps (it is for diffusion models)";
        if (s.Guidance != 1f || s.NegativePrompt != null)
            return "a GAN has no classifier-free guidance; drop --cfg and --negative (use --temperature below 1 to "
                + "trade variety for typical images)";
        if (s.TopK != 0 || s.TopP != 1f) return "a GAN samples no tokens; drop --top-k and --top-p";
        return null;
    }

    /// <summary>Images [B, 3, H, W] in [-1, 1]: row i maps z ~ N(0, T^2 I) [Z] from Rng(seed + i) with prompts[i].
    /// Settings are assumed checked.</summary>
    public Tensor Sample(IReadOnlyList<string> prompts, SamplingSettings s, SampleStep? onStep = null)
    {
        var z = OneCallModel.PriorNoise(prompts.Count, Latent, s.Seed, s.Temperature);     // (B, Z)
        Model.Train(false);
        var img = Model.Generate(Ids(prompts), z);          // (B, 3, H, W)
        onStep?.Invoke(1, 1, null);
        return img;
    }

    // ------------------------------------------------------------------------------------------- save / load

    public string ToJson() => OneCallModel.ToJson(Format, Version, Preset, ImageSize, Config);

    /// <summary>Reads config.json: (preset, config).</summary>
    public static (string Preset, GanConfig Config) ParseConfig(string json, string source)
    {
        var (preset, size, cfg) = OneCallModel.Parse<GanConfig>(json, source, Format, Version, "GAN");
        if (size != cfg.ImageSize)
            throw new FormatException($"{source} says image_size {size} but its generator draws "
                + $"{cfg.ImageSize}x{cfg.ImageSize}; the file was edited: restore it from the model");
        return (preset, cfg);
    }

    /// <summary>Writes config.json, tokenizer/, model.safetensors and weights.sha256, each atomically.</summary>
    public void Save(string dir) => WeightsHash = OneCallModel.Save(dir, ToJson(), Tokenizer, Model, Format);

    public static GanPipeline Load(string dir) => Load(ModelDirectory.Open(dir, Format, "GAN model"));

    public static GanPipeline Load(ModelDirectory m)
    {
        var (preset, cfg) = ParseConfig(m.ConfigJson, m.ConfigPath);
        var p = new GanPipeline(preset, cfg, BpeTokenizer.Load(m.Require(TokenizerDir)), new Rng(0));
        p.WeightsHash = OneCallModel.LoadWeights(m, p.Model);
        return p;
    }
}
