using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Models.Diffusion;
using Pictor.Models.Text;
using Pictor.Models.Unet;

namespace Pictor.Pipelines.Diffusion;

/// <summary>
/// Everything that fixes a text-to-image diffusion model's shapes and maths: image size, the UNet, the text encoder,
/// the prediction target and the schedule length. Stored as config.json beside the weights; a model directory or run
/// whose config differs from what the caller expects is an error naming the field.
/// </summary>
public sealed record DiffusionConfig(string Preset, int ImageSize, UnetConfig Unet, TextEncoderConfig Text,
    Prediction Prediction, int ScheduleSteps = 1000, double ScheduleShift = 1,
    double DefaultCfg = DiffusionConfig.StandardCfg)
{
    /// <summary>The guidance scale used when a caller names none, unless a model's config.json says otherwise
    /// ("default_cfg": the scale its authors found best on their eval; it changes no weights).</summary>
    public const double StandardCfg = 3;

    public const string Format = "pictor-diffusion";
    public const int Version = 1;

    /// <summary>Presets: "tiny" (tests, seconds), "xs" (the shipped emoji model: ~2.6 M parameters, trains in an hour
    /// or two on 2 cores), "xs-rel-place" (the shipped shapes model; see <see cref="WithTokenPlaces"/>), "s" (UNet-S of
    /// the engine issue, 8.25 M, plus a 4-layer text encoder). Vocabulary comes from the tokenizer. The experimental
    /// presets that no shipped model used are listed in <see cref="RemovedPresets"/>.</summary>
    public static DiffusionConfig FromPreset(string name, int vocab, int imageSize = 32, int context = 16)
        => name switch
    {
        "tiny" => new(name, imageSize,
            new UnetConfig([16, 32], [false, true], BlocksPerLevel: 1, ContextDim: 32, Heads: 2, HeadDim: 16,
                TimeDim: 32, TimeSinusoidDim: 16, Groups: 8, PooledDim: 32),
            new TextEncoderConfig(vocab, context, Layers: 1, Dim: 32, Heads: 2, OutDim: 32), Prediction.V),
        "xs" => new(name, imageSize,
            new UnetConfig([32, 64, 128], [false, true, true], BlocksPerLevel: 1, ContextDim: 128, Heads: 4,
                HeadDim: 16, TimeDim: 128, TimeSinusoidDim: 64, Groups: 8, PooledDim: 128),
            new TextEncoderConfig(vocab, context, Layers: 2, Dim: 128, Heads: 4, OutDim: 128), Prediction.V),
        "xs-rel-place" => WithTokenPlaces(FromPreset("xs", vocab, imageSize, context), name),
        "s" => new(name, imageSize, UnetConfig.S with { PooledDim = 256 },
            new TextEncoderConfig(vocab, context, Layers: 4, Dim: 256, Heads: 8, OutDim: 256), Prediction.V),
        _ => throw new ArgumentException($"unknown preset '{name}'; use {string.Join(", ", PresetNames)}"
            + (RemovedPresets.Why(name) is { } why ? $" ({why})" : "")),
    };

    /// <summary>xs whose UNet knows where each caption word's object goes (docs/derivations/binding.md, "Token
    /// places"): conv_in also reads the x/y coordinate planes; every ResBlock turns the time+text embedding into
    /// per-channel x and y slopes, to which each text token adds its own channels along its own direction (token
    /// slopes); and every ResBlock adds each token's own channels in a bump at the place one shared head
    /// (<see cref="TokenPlaces"/>) predicts for it (token blobs). With 'train diffusion --placement W' the head learns
    /// each object word's place from the data's boxes, so "which colour goes left" becomes a supervised regression from
    /// the caption, which the denoising loss alone learned in one 2-hour run out of nine. The text encoder stays
    /// xs's.</summary>
    private static DiffusionConfig WithTokenPlaces(DiffusionConfig c, string name) => c with
    {
        Preset = name,
        Unet = c.Unet with
        {
            CoordChannels = true, ResBlockCoords = true, TokenSlopes = true, TokenBlobs = true, TokenPlaces = true,
        },
    };

    public static readonly string[] PresetNames = ["tiny", "xs", "xs-rel-place", "s"];

    public string ToJson()
    {
        var u = Unet; var t = Text;
        var o = new JsonObject
        {
            ["format"] = Format, ["version"] = Version, ["preset"] = Preset, ["image_size"] = ImageSize,
            ["prediction"] = Prediction == Prediction.V ? "v" : "epsilon", ["schedule"] = "cosine", ["schedule_steps"] =
                ScheduleSteps, ["schedule_shift"] = ScheduleShift,
            ["unet"] = UnetToJson(u),
            ["text"] = new JsonObject
            {
                ["vocab"] = t.Vocab, ["context"] = t.Context, ["layers"] = t.Layers, ["dim"] = t.Dim,
                    ["heads"] = t.Heads, ["out_dim"] = t.OutDim,
            },
        };
        if (DefaultCfg != StandardCfg) o["default_cfg"] = DefaultCfg;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public static DiffusionConfig FromJson(string json, string source)
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
            var u = o["unet"]!.AsObject(); var t = o["text"]!.AsObject();
            RefuseRemovedFields(o, source);
            var unet = UnetFromJson(u);
            if (unet.TokenBlobs && !unet.TokenPlaces)   // blobs with centres of their own: preset xs-blob
                throw new FormatException(
                    RemovedPresets.FieldMessage(source, "unet.token_blobs without unet.token_places", "xs-blob"));
            var text = new TextEncoderConfig((int)t["vocab"]!, (int)t["context"]!, (int)t["layers"]!, (int)t["dim"]!,
                (int)t["heads"]!, (int)t["out_dim"]!);
            var pred = (string?)o["prediction"] switch { "v" => Prediction.V, "epsilon" => Prediction.Epsilon,
                var p => throw new FormatException($"{source}: unknown prediction '{p}' (v or epsilon)") };
            if ((string?)o["schedule"] != "cosine")
                throw new FormatException($"{source}: unknown schedule '{(string?)o["schedule"]}' (only cosine)");
            double shift = (double?)o["schedule_shift"] ?? 1;   // absent in configs written before it existed
            if (!(shift >= 1 && shift <= 64))
                throw new FormatException($"{source}: schedule_shift {shift} is outside 1..64");
            double cfg = (double?)o["default_cfg"] ?? StandardCfg;
            if (!(cfg >= 0 && cfg <= 50))
                throw new FormatException($"{source}: default_cfg {cfg} is outside 0..50 (a guidance scale; "
                    + $"3 when absent)");
            return new DiffusionConfig((string?)o["preset"] ?? "custom", (int)o["image_size"]!, unet, text, pred,
                (int)o["schedule_steps"]!, shift, cfg);
        }
        catch (Exception e) when (
            e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new FormatException(e is FormatException ? e.Message
                : $"{source} is not a valid model config: {e.Message}");
        }
    }

    /// <summary>A UNet config as config.json's "unet" object (shared by every family whose network is the
    /// UNet).</summary>
    internal static JsonObject UnetToJson(UnetConfig u)
    {
        var o = new JsonObject
        {
            ["channels"] = new JsonArray(u.Channels.Select(c => (JsonNode)c).ToArray()),
            ["attention"] = new JsonArray(u.Attention.Select(c => (JsonNode)c).ToArray()),
            ["blocks_per_level"] = u.BlocksPerLevel, ["context_dim"] = u.ContextDim, ["heads"] = u.Heads,
                ["head_dim"] = u.HeadDim,
            ["time_dim"] = u.TimeDim, ["time_sinusoid_dim"] = u.TimeSinusoidDim, ["groups"] = u.Groups,
                ["image_channels"] = u.ImageChannels,
            ["pooled_dim"] = u.PooledDim, ["coord_channels"] = u.CoordChannels,
                ["resblock_coords"] = u.ResBlockCoords,
        };
        // Written only when set, so configs of models without it stay byte-identical to what earlier versions wrote.
        if (u.TokenSlopes) o["token_slopes"] = true;
        if (u.TokenBlobs) o["token_blobs"] = true;
        if (u.TokenPlaces) o["token_places"] = true;
        return o;
    }

    /// <summary>The "unet" object of a config.json (<see cref="UnetToJson"/>).</summary>
    internal static UnetConfig UnetFromJson(JsonObject u) =>
        new(u["channels"]!.AsArray().Select(n => (int)n!).ToArray(), u["attention"]!.AsArray()
            .Select(n => (bool)n!).ToArray(),
            (int)u["blocks_per_level"]!, (int)u["context_dim"]!, (int)u["heads"]!, (int)u["head_dim"]!,
                (int)u["time_dim"]!,
            (int)u["time_sinusoid_dim"]!, (int)u["groups"]!, (int)u["image_channels"]!, (int)u["pooled_dim"]!,
            CoordChannels: (bool?)u["coord_channels"] ?? false,   // absent in configs written before it existed
            ResBlockCoords: (bool?)u["resblock_coords"] ?? false,
            TokenSlopes: (bool?)u["token_slopes"] ?? false,
            TokenBlobs: (bool?)u["token_blobs"] ?? false,
            TokenPlaces: (bool?)u["token_places"] ?? false);

    /// <summary>A config that sets a field only a removed preset wrote is refused, naming the field, the preset and the
    /// commit where its code can still be read (<see cref="RemovedPresets"/>).</summary>
    private static void RefuseRemovedFields(JsonObject o, string source)
    {
        foreach (var (field, preset) in RemovedPresets.Fields)
        {
            var dot = field.IndexOf('.', StringComparison.Ordinal);
            var holder = dot < 0 ? o : o[field[..dot]] as JsonObject;
            if (holder != null && holder.ContainsKey(dot < 0 ? field : field[(dot + 1)..]))
                throw new FormatException(RemovedPresets.FieldMessage(source, field, preset));
        }
    }

    /// <summary>The first field where two configs differ, as "name: a vs b", or null when they are the same.</summary>
    public static string? FirstDifference(DiffusionConfig a, DiffusionConfig b)
    {
        var x = JsonNode.Parse(a.ToJson())!; var y = JsonNode.Parse(b.ToJson())!;
        return Diff(x, y, "");
        static string? Diff(JsonNode? p, JsonNode? q, string path)
        {
            if (p is JsonObject po && q is JsonObject qo)
            {
                // a field only b has counts too
                foreach (var key in po.Select(kv => kv.Key).Concat(qo.Select(kv => kv.Key)
                    .Where(k => !po.ContainsKey(k))))
                    if (Diff(po[key], qo[key], path == "" ? key : path + "." + key) is { } d) return d;
                return null;
            }
            string ps = p?.ToJsonString() ?? "null", qs = q?.ToJsonString() ?? "null";
            return ps == qs ? null : $"{path}: {ps} vs {qs}";
        }
    }
}
