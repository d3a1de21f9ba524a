using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models.Clip;
using Pictor.Models.Text;
using Pictor.Text;

namespace Pictor.Pipelines.Clip;

// Dimension legend: B batch, E joint embedding width, S text tokens, H = W image size.

/// <summary>
/// A CLIP model ready to score: tokenizer + <see cref="ClipModel"/>, as a model directory (config.json with
/// "format": "pictor-clip", tokenizer/, model.safetensors). Presets: "tiny" (tests), "xs" (the shipped emoji CLIP:
/// a 2-layer text tower of width 128, a 4-level ResNet image tower, 128-wide embeddings), "s" (4 layers of 256,
/// 256-wide embeddings).
/// </summary>
public sealed class ClipPipeline
{
    public const string Format = "pictor-clip", ConfigFile = "config.json", WeightsFile = "model.safetensors",
        TokenizerDir = "tokenizer";
    public const int Version = 1;
    public static readonly string[] PresetNames = ["tiny", "xs", "s"];

    public string Preset { get; }
    public int ImageSize { get; }
    public BpeTokenizer Tokenizer { get; }
    public ClipModel Model { get; }
    public ClipConfig Config => Model.Config;

    public ClipPipeline(string preset, int imageSize, ClipConfig config, BpeTokenizer tokenizer, Rng rng)
    {
        if (tokenizer.VocabSize != config.Text.Vocab)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the CLIP config says text "
                + $"vocab = {config.Text.Vocab}; use the tokenizer saved with the model");
        Preset = preset; ImageSize = imageSize; Tokenizer = tokenizer; Model = new ClipModel(config, rng);
    }

    public static ClipConfig FromPreset(string name, int vocab, int context) => name switch
    {
        "tiny" => new ClipConfig(new TextEncoderConfig(vocab, context, Layers: 1, Dim: 32, Heads: 2, OutDim: 32),
            [16, 32], Groups: 8),
        "xs" => new ClipConfig(new TextEncoderConfig(vocab, context, Layers: 2, Dim: 128, Heads: 4, OutDim: 128),
            [32, 64, 128, 256], Groups: 8),
        "s" => new ClipConfig(new TextEncoderConfig(vocab, context, Layers: 4, Dim: 256, Heads: 8, OutDim: 256),
            [64, 128, 256, 256], Groups: 8),
        _ => throw new ArgumentException($"unknown CLIP preset '{name}'; use {string.Join(", ", PresetNames)}"),
    };

    public IntTensor Tokenize(IReadOnlyList<string> captions)
        => Tokenizer.EncodeBatch(captions, Config.Text.Context, truncate: true);

    /// <summary>Unit text embeddings [N, E] (captions longer than the context are truncated: CLIP only
    /// scores).</summary>
    public float[] TextEmbeddings(IReadOnlyList<string> captions)
    {
        using var _ = Autograd.NoGrad();
        Model.Train(false);
        var all = new List<float>();
        for (int s = 0; s < captions.Count; s += 64)
            using (TensorScope.Begin())
                all.AddRange(Model.EncodeText(Tokenize(captions.Skip(s).Take(64).ToList())).ToArray());
        return all.ToArray();
    }

    /// <summary>Unit image embeddings [B, E] of images [B, 3, H, W] in [-1, 1] at the model's size.</summary>
    public float[] ImageEmbeddings(Tensor images)
    {
        if (images.Rank != 4 || images.Shape[2] != ImageSize || images.Shape[3] != ImageSize)
            throw new ArgumentException($"CLIP scores {ImageSize}x{ImageSize} images, got "
                + $"{Shape.Format(images.Shape)}; use a CLIP trained at the generator's size");
        using var _ = Autograd.NoGrad();
        Model.Train(false);
        int b = images.Shape[0];
        var all = new List<float>(b * Config.EmbedDim);
        for (int s = 0; s < b; s += 64)
            using (TensorScope.Begin())
                all.AddRange(Model.EncodeImage(Ops.Contiguous(Ops.Narrow(images, 0, s, Math.Min(64, b - s))))
                    .ToArray());
        return all.ToArray();
    }

    /// <summary>Cosine similarity of row i of <paramref name="a"/> with row j of <paramref name="b"/> (unit rows of
    /// width E).</summary>
    public static float Cosine(float[] a, int i, float[] b, int j, int e)
    {
        float s = 0;
        for (int k = 0; k < e; k++) s += a[i * e + k] * b[j * e + k];
        return s;
    }

    // ------------------------------------------------------------------------------------------- save / load

    public string ToJson()
    {
        var c = Config; var t = c.Text;
        return new JsonObject
        {
            ["format"] = Format, ["version"] = Version, ["preset"] = Preset, ["image_size"] = ImageSize,
            ["text"] = new JsonObject { ["vocab"] = t.Vocab, ["context"] = t.Context, ["layers"] = t.Layers,
                ["dim"] = t.Dim, ["heads"] = t.Heads, ["embed_dim"] = t.OutDim },
            ["image"] = new JsonObject { ["channels"] = new JsonArray(c.ImageChannels.Select(x => (JsonNode)x)
                .ToArray()), ["groups"] = c.Groups, ["input"] = c.ImageInput },
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public static (string Preset, int ImageSize, ClipConfig Config) ParseConfig(string json, string source)
    {
        try
        {
            var o = JsonNode.Parse(json)!.AsObject();
            if ((string?)o["format"] != Format)
                throw new FormatException($"{source} is not a {Format} config (format field is "
                    + $"'{(string?)o["format"]}'); pass a CLIP model or run directory (from 'pictor train clip')");
            int v = (int)o["version"]!;
            if (v != Version)
                throw new FormatException($"{source} has config version {v}; this Pictor reads version {Version}. "
                    + $"Update Pictor or retrain.");
            var t = o["text"]!.AsObject(); var i = o["image"]!.AsObject();
            var text = new TextEncoderConfig((int)t["vocab"]!, (int)t["context"]!, (int)t["layers"]!, (int)t["dim"]!,
                (int)t["heads"]!, (int)t["embed_dim"]!);
            return ((string?)o["preset"] ?? "custom", (int)o["image_size"]!, new ClipConfig(text,
                i["channels"]!.AsArray().Select(n => (int)n!).ToArray(), (int)i["groups"]!, (int)i["input"]!));
        }
        catch (Exception e) when (
            e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new FormatException(e is FormatException ? e.Message
                : $"{source} is not a valid CLIP config: {e.Message}");
        }
    }

    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), ToJson());
        Tokenizer.Save(Path.Combine(dir, TokenizerDir));
        Model.Save(Path.Combine(dir, WeightsFile), metadata: new Dictionary<string, string> { ["format"] = Format });
        WeightsManifest.Write(dir);   // what `pictor doctor` checks the weights against
    }

    /// <summary>Loads a model directory, or a training run directory (its best weights are in RUN/model).</summary>
    public static ClipPipeline Load(string dir)
    {
        var m = ModelDirectory.Open(dir, Format, "CLIP model");
        var (preset, size, config) = ParseConfig(m.ConfigJson, m.ConfigPath);
        string weights = m.Require(WeightsFile);
        var p = new ClipPipeline(preset, size, config, BpeTokenizer.Load(m.Require(TokenizerDir)), new Rng(0));
        p.Model.LoadStateDict(SafeTensorsFile.Read(weights));
        return p;
    }
}
