using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models.Vq;

namespace Pictor.Pipelines.Vq;

/// <summary>
/// A VQ-VAE image tokenizer as a model directory: config.json ("format": "pictor-vqvae", the image size and the
/// <see cref="VqConfig"/>) beside model.safetensors (weights and the codebook buffers). Presets: "tiny" (tests: 16x16
/// to 4x4 codes from 32 entries) and "s" (the DALL-E issue's default: 32x32 to an 8x8 grid from 512 entries of width
/// 64) with the moving-average VQ; "dvae-tiny" and "dvae-s" are the same shapes with DALL-E's Gumbel-softmax quantiser.
/// </summary>
public sealed class VqModel
{
    public const string Format = "pictor-vqvae", ConfigFile = "config.json", WeightsFile = "model.safetensors";
    public const int Version = 1;
    public static readonly string[] PresetNames = ["tiny", "s", "dvae-tiny", "dvae-s"];

    public string Preset { get; }
    public int ImageSize { get; }
    public VqVae Net { get; }
    public VqConfig Config => Net.Config;
    /// <summary>Tokens per image side (ImageSize / downsampling).</summary>
    public int Grid => ImageSize / Config.Downsample;

    public VqModel(string preset, int imageSize, VqConfig config, Rng rng)
    {
        if (imageSize % config.Downsample != 0)
            Throw.Argument($"image size {imageSize} is not divisible by the VQ-VAE's downsampling {config.Downsample}");
        Preset = preset; ImageSize = imageSize; Net = new VqVae(config, rng);
    }

    public static VqConfig FromPreset(string name) => name switch
    {
        "tiny" => new VqConfig([8, 16, 16], BlocksPerLevel: 1, Codes: 32, CodeDim: 8, Groups: 4),
        "s" => VqConfig.Default,
        "dvae-tiny" => FromPreset("tiny") with { Quantizer = "gumbel" },
        "dvae-s" => VqConfig.Default with { Quantizer = "gumbel" },
        _ => throw new ArgumentException($"unknown VQ-VAE preset '{name}'; use {string.Join(", ", PresetNames)}"),
    };

    public string ToJson()
    {
        var c = Config;
        return new JsonObject
        {
            ["format"] = Format, ["version"] = Version, ["preset"] = Preset, ["image_size"] = ImageSize,
                ["quantizer"] = c.Quantizer, ["kl_weight"] = c.KlWeight,
            ["channels"] = new JsonArray(c.Channels.Select(x => (JsonNode)x).ToArray()),
                ["blocks_per_level"] = c.BlocksPerLevel,
            ["codes"] = c.Codes, ["code_dim"] = c.CodeDim, ["groups"] = c.Groups, ["image_channels"] = c.ImageChannels,
            ["beta"] = c.Beta, ["decay"] = c.Decay,
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Reads config.json: (preset, image size, config).</summary>
    public static (string Preset, int ImageSize, VqConfig Config) ParseConfig(string json, string source)
    {
        try
        {
            var o = JsonNode.Parse(json)!.AsObject();
            if ((string?)o["format"] != Format)
                throw new FormatException($"{source} is not a {Format} config (format field is "
                    + $"'{(string?)o["format"]}'); pass a VQ-VAE model or run directory");
            int v = (int)o["version"]!;
            if (v != Version)
                throw new FormatException($"{source} has config version {v}; this Pictor reads version {Version}. "
                    + $"Update Pictor or retrain.");
            string q = (string?)o["quantizer"] ?? "";
            if (q is not ("vq-ema" or "gumbel"))
                throw new FormatException($"{source}: unknown quantizer '{q}' (vq-ema or gumbel)");
            var cfg = new VqConfig(o["channels"]!.AsArray().Select(n => (int)n!).ToArray(), (int)o["blocks_per_level"]!,
                (int)o["codes"]!,
                (int)o["code_dim"]!, (int)o["groups"]!, (int)o["image_channels"]!, (float)o["beta"]!,
                    (float)o["decay"]!, q, (float?)o["kl_weight"] ?? 1e-3f);
            return ((string?)o["preset"] ?? "custom", (int)o["image_size"]!, cfg);
        }
        catch (Exception e) when (
            e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new FormatException(e is FormatException ? e.Message
                : $"{source} is not a valid VQ-VAE config: {e.Message}");
        }
    }

    /// <summary>Writes DIR/config.json and DIR/model.safetensors (each atomically).</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), ToJson());
        Net.Save(Path.Combine(dir, WeightsFile), metadata: new Dictionary<string, string> { ["format"] = Format });
        WeightsManifest.Write(dir);   // what `pictor doctor` checks the weights against
    }

    /// <summary>Loads a model directory, or a training run directory (its best weights are in RUN/model).</summary>
    public static VqModel Load(string dir)
    {
        var d = ModelDirectory.Open(dir, Format, "VQ-VAE model");
        var (preset, size, cfg) = ParseConfig(d.ConfigJson, d.ConfigPath);
        string weights = d.Require(WeightsFile);
        var m = new VqModel(preset, size, cfg, new Rng(0));
        m.Net.LoadStateDict(SafeTensorsFile.Read(weights));
        return m;
    }
}
