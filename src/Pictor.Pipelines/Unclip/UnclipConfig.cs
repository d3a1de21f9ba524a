using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Models.Unclip;
using Pictor.Models.Unet;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Unclip;

/// <summary>
/// Everything that fixes an unCLIP model's shapes and maths (DALL-E 2, Ramesh et al. 2022): the CLIP it lives in
/// (its embedding width, text context and weights hash), the prior's transformer and schedule, and the decoder's
/// UNet, embedding tokens and schedule; plus the sampling defaults the model's authors chose (prior candidates,
/// prior guidance, decoder guidance). Stored as config.json, format "pictor-unclip". Both trainers write the same
/// config for the same preset and CLIP, so a prior run and a decoder run fit together.
/// </summary>
public sealed record UnclipConfig(string Preset, int ImageSize, PriorConfig Prior, UnetConfig Decoder,
    int EmbedTokens, string ClipHash, int ScheduleSteps = 1000, double PriorShift = 1, double DecoderShift = 2,
    int PriorCandidates = 2, double PriorGuidance = 1, double DefaultCfg = 3)
{
    public const string Format = "pictor-unclip";
    public const int Version = 1;
    public static readonly string[] PresetNames = ["tiny", "xs"];

    public int EmbedDim => Prior.EmbedDim;

    /// <summary>Presets for a CLIP: "tiny" (tests, seconds) and "xs" (the shipped emoji model: the emoji diffusion
    /// model's xs UNet reading 4 embedding tokens, and a 4-layer prior of width 256).</summary>
    public static UnclipConfig FromPreset(string name, ClipPipeline clip, string clipHash)
    {
        int e = clip.Config.EmbedDim, s = clip.Config.Text.Context, size = clip.ImageSize;
        return name switch
        {
            "tiny" => new(name, size, new PriorConfig(e, s, Dim: 32, Layers: 1, Heads: 2, TimeSinusoidDim: 16),
                new UnetConfig([16, 32], [false, true], BlocksPerLevel: 1, ContextDim: 32, Heads: 2, HeadDim: 16,
                    TimeDim: 32, TimeSinusoidDim: 16, Groups: 8, PooledDim: e), 4, clipHash),
            "xs" => new(name, size, new PriorConfig(e, s, Dim: 256, Layers: 4, Heads: 4),
                new UnetConfig([32, 64, 128], [false, true, true], BlocksPerLevel: 1, ContextDim: 128, Heads: 4,
                    HeadDim: 16, TimeDim: 128, TimeSinusoidDim: 64, Groups: 8, PooledDim: e), 4, clipHash),
            _ => throw new ArgumentException($"unknown unCLIP preset '{name}'; use {string.Join(", ", PresetNames)}"),
        };
    }

    public string ToJson()
    {
        var p = Prior;
        return new JsonObject
        {
            ["format"] = Format, ["version"] = Version, ["preset"] = Preset, ["image_size"] = ImageSize,
            ["clip_hash"] = ClipHash, ["schedule"] = "cosine", ["schedule_steps"] = ScheduleSteps,
            ["prior"] = new JsonObject
            {
                ["embed_dim"] = p.EmbedDim, ["text_context"] = p.TextContext, ["dim"] = p.Dim, ["layers"] = p.Layers,
                ["heads"] = p.Heads, ["time_sinusoid_dim"] = p.TimeSinusoidDim, ["prediction"] = "x0",
                ["schedule_shift"] = PriorShift, ["candidates"] = PriorCandidates, ["guidance"] = PriorGuidance,
            },
            ["decoder"] = new JsonObject
            {
                ["embed_tokens"] = EmbedTokens, ["prediction"] = "v", ["schedule_shift"] = DecoderShift,
                ["default_cfg"] = DefaultCfg, ["unet"] = DiffusionConfig.UnetToJson(Decoder),
            },
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public static UnclipConfig FromJson(string json, string source)
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
                    + "Update Pictor or retrain.");
            var p = o["prior"]!.AsObject(); var d = o["decoder"]!.AsObject();
            var prior = new PriorConfig((int)p["embed_dim"]!, (int)p["text_context"]!, (int)p["dim"]!,
                (int)p["layers"]!, (int)p["heads"]!, (int)p["time_sinusoid_dim"]!);
            var c = new UnclipConfig((string?)o["preset"] ?? "custom", (int)o["image_size"]!, prior,
                DiffusionConfig.UnetFromJson(d["unet"]!.AsObject()), (int)d["embed_tokens"]!,
                (string?)o["clip_hash"] ?? "", (int)o["schedule_steps"]!, (double)p["schedule_shift"]!,
                (double)d["schedule_shift"]!, (int)p["candidates"]!, (double)p["guidance"]!,
                (double)d["default_cfg"]!);
            string? bad = c.PriorCandidates is < 1 or > 64 ? "prior.candidates must be 1 to 64"
                : !(c.PriorGuidance is >= 0 and <= 50) ? "prior.guidance must be 0 to 50"
                : !(c.DefaultCfg is >= 0 and <= 50) ? "decoder.default_cfg must be 0 to 50"
                : c.Decoder.PooledDim != prior.EmbedDim ? "decoder.unet.pooled_dim must equal prior.embed_dim"
                : null;
            if (bad != null) throw new FormatException($"{source}: {bad}");
            return c;
        }
        catch (Exception e) when (
            e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new FormatException(e is FormatException ? e.Message
                : $"{source} is not a valid unCLIP config: {e.Message}");
        }
    }

    /// <summary>The config's shapes as one string, to compare a run's config with its preset's.</summary>
    public string ShapeKey() => string.Create(CultureInfo.InvariantCulture,
        $"{Preset}|{ImageSize}|{Prior}|{DiffusionConfig.UnetToJson(Decoder).ToJsonString()}|{EmbedTokens}|{ClipHash}");
}
