using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Models.Dalle;

namespace Pictor.Pipelines.Dalle;

/// <summary>
/// What fixes a DALL-E model's shapes: image size, text context and the transformer (its image vocabulary and grid come
/// from the VQ-VAE it was trained on). Stored as config.json ("format": "pictor-dalle"). Presets: "tiny" (tests),
/// "xs" (4 layers of width 256: the shipped emoji model's budget), "s" (AR-S of the engine issue: 8 layers of 256).
/// </summary>
public sealed record DalleSetup(string Preset, int ImageSize, DalleConfig Transformer)
{
    public const string Format = "pictor-dalle";
    public const int Version = 1;
    public static readonly string[] PresetNames = ["tiny", "xs", "s"];

    public static DalleSetup FromPreset(string name, int imageSize, int textVocab, int context, int imageVocab,
        int grid) => new(name, imageSize, name switch
    {
        "tiny" => new DalleConfig(Layers: 2, Dim: 32, Heads: 4, textVocab, context, imageVocab, grid),
        "xs" => new DalleConfig(Layers: 4, Dim: 256, Heads: 8, textVocab, context, imageVocab, grid),
        "s" => new DalleConfig(Layers: 8, Dim: 256, Heads: 8, textVocab, context, imageVocab, grid),
        _ => throw new ArgumentException($"unknown DALL-E preset '{name}'; use {string.Join(", ", PresetNames)}"),
    });

    public string ToJson()
    {
        var t = Transformer;
        return new JsonObject
        {
            ["format"] = Format, ["version"] = Version, ["preset"] = Preset, ["image_size"] = ImageSize,
            ["transformer"] = new JsonObject
            {
                ["layers"] = t.Layers, ["dim"] = t.Dim, ["heads"] = t.Heads, ["text_vocab"] = t.TextVocab,
                    ["text_len"] = t.TextLen,
                ["image_vocab"] = t.ImageVocab, ["grid"] = t.Grid, ["text_loss_weight"] = t.TextLossWeight,
            },
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public static DalleSetup FromJson(string json, string source)
    {
        try
        {
            var o = JsonNode.Parse(json)!.AsObject();
            if ((string?)o["format"] != Format)
                throw new FormatException($"{source} is not a {Format} config (format field is "
                    + $"'{(string?)o["format"]}')");
            int v = (int)o["version"]!;
            if (v != Version)
                throw new FormatException($"{source} has config version {v}; this Pictor reads version {Version}. "
                    + $"Update Pictor or retrain.");
            var t = o["transformer"]!.AsObject();
            return new DalleSetup((string?)o["preset"] ?? "custom", (int)o["image_size"]!,
                new DalleConfig((int)t["layers"]!, (int)t["dim"]!, (int)t["heads"]!,
                (int)t["text_vocab"]!, (int)t["text_len"]!, (int)t["image_vocab"]!, (int)t["grid"]!,
                    (float)t["text_loss_weight"]!));
        }
        catch (Exception e) when (
            e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new FormatException(e is FormatException ? e.Message
                : $"{source} is not a valid DALL-E config: {e.Message}");
        }
    }
}
