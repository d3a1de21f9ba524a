using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Nn;
using Pictor.Text;

namespace Pictor.Pipelines;

/// <summary>
/// What the one-network-call families (the VAE and GAN baselines) share: noise from their N(0, T^2 I) prior, one row
/// per seed, and a model directory of config.json (format, version, preset, image size, the network's config),
/// tokenizer/, model.safetensors and weights.sha256.
/// </summary>
internal static class OneCallModel
{
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors", TokenizerDir = "tokenizer";

    public static readonly JsonSerializerOptions Json =
        new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>[B, Z] noise: row i from Rng(seed + i), times the temperature.</summary>
    public static Tensor PriorNoise(int b, int width, ulong seed, float temperature)
    {
        var z = new float[b * width];
        for (int i = 0; i < b; i++)
        {
            var span = z.AsSpan(i * width, width);
            new Rng(seed + (ulong)i).FillNormal(span);
            System.Numerics.Tensors.TensorPrimitives.Multiply(span, temperature, span);
        }
        return Tensor.FromArray(z, b, width);
    }

    /// <summary>config.json's text.</summary>
    public static string ToJson<T>(string format, int version, string preset, int imageSize, T config) => new JsonObject
    {
        ["format"] = format, ["version"] = version, ["preset"] = preset, ["image_size"] = imageSize,
        ["model"] = JsonSerializer.SerializeToNode(config, Json),
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Reads config.json: (preset, image size, the network's config), checking format and version;
    /// <paramref name="what"/> names the family in errors ("VAE").</summary>
    public static (string Preset, int ImageSize, T Config) Parse<T>(string json, string source, string format,
        int version, string what)
    {
        try
        {
            var o = JsonNode.Parse(json)!.AsObject();
            if ((string?)o["format"] != format)
                throw new FormatException($"{source} is not a {format} config (format '{(string?)o["format"]}')");
            int v = (int)o["version"]!;
            if (v != version)
                throw new FormatException($"{source} has config version {v}; this Pictor reads version {version}. "
                    + "Update Pictor or retrain.");
            var cfg = o["model"].Deserialize<T>(Json) ?? throw new FormatException($"{source} has no model");
            return ((string?)o["preset"] ?? "custom", (int)o["image_size"]!, cfg);
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException)
        {
            throw new FormatException($"{source} is not a valid {what} config: {e.Message}");
        }
    }

    /// <summary>Writes config.json, tokenizer/, model.safetensors and weights.sha256, each atomically; returns the
    /// weights hash.</summary>
    public static string Save(string dir, string configJson, BpeTokenizer tokenizer, Module model, string format)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), configJson);
        tokenizer.Save(Path.Combine(dir, TokenizerDir));
        model.Save(Path.Combine(dir, WeightsFile), metadata: new Dictionary<string, string> { ["format"] = format });
        WeightsManifest.Write(dir);
        return ModelDirectory.HashFile(Path.Combine(dir, WeightsFile));
    }

    /// <summary>Loads the weights of <paramref name="m"/> into <paramref name="model"/>; returns their hash.</summary>
    public static string LoadWeights(ModelDirectory m, Module model)
    {
        string weights = m.Require(WeightsFile);
        model.LoadStateDict(SafeTensorsFile.Read(weights));
        return ModelDirectory.HashFile(weights);
    }
}
