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
/// <remarks>LayoutText, when set, is a second text encoder whose tokens the ResBlocks' token slopes read and whose pooled
/// vector joins the time embedding, while <see cref="Text"/>'s tokens feed cross-attention only (preset xs-rel-split).
/// CrossAddsLayout (needs LayoutText) makes cross-attention read the sum of both streams' tokens instead, so the layout
/// encoder is also trained by cross-attention, as xs-rel's one encoder is (preset xs-rel-sum).</remarks>
public sealed record DiffusionConfig(string Preset, int ImageSize, UnetConfig Unet, TextEncoderConfig Text, Prediction Prediction, int ScheduleSteps = 1000, double ScheduleShift = 1,
    double DefaultCfg = DiffusionConfig.StandardCfg, TextEncoderConfig? LayoutText = null, bool CrossAddsLayout = false)
{
    /// <summary>The guidance scale used when a caller names none, unless a model's config.json says otherwise
    /// ("default_cfg": the scale its authors found best on their eval; it changes no weights).</summary>
    public const double StandardCfg = 3;

    public const string Format = "pictor-diffusion";
    public const int Version = 1;

    /// <summary>Presets: "tiny" (tests, seconds), "xs" (the shipped models: ~2.6 M parameters, trains in an hour or two on
    /// 2 cores), "xs-coord" (xs whose conv_in also reads x/y coordinate planes, so positions in captions can be learned),
    /// "xs-pos" (xs-coord whose ResBlocks also turn the time+text embedding into x and y slopes, so a caption's place is a
    /// first-order, learnable signal; docs/derivations/noise-shift.md), "s" (UNet-S of the engine issue, 8.25 M, plus a 4-layer text encoder). Vocabulary comes from the tokenizer.</summary>
    public static DiffusionConfig FromPreset(string name, int vocab, int imageSize = 32, int context = 16) => name switch
    {
        "tiny" => new(name, imageSize,
            new UnetConfig([16, 32], [false, true], BlocksPerLevel: 1, ContextDim: 32, Heads: 2, HeadDim: 16, TimeDim: 32, TimeSinusoidDim: 16, Groups: 8, PooledDim: 32),
            new TextEncoderConfig(vocab, context, Layers: 1, Dim: 32, Heads: 2, OutDim: 32), Prediction.V),
        "xs" => new(name, imageSize,
            new UnetConfig([32, 64, 128], [false, true, true], BlocksPerLevel: 1, ContextDim: 128, Heads: 4, HeadDim: 16, TimeDim: 128, TimeSinusoidDim: 64, Groups: 8, PooledDim: 128),
            new TextEncoderConfig(vocab, context, Layers: 2, Dim: 128, Heads: 4, OutDim: 128), Prediction.V),
        "xs-coord" => WithCoordinates(FromPreset("xs", vocab, imageSize, context), name),
        "xs-pos" => WithSlopes(WithCoordinates(FromPreset("xs", vocab, imageSize, context), name)),
        "xs-bind" => WithBinding(FromPreset("xs-pos", vocab, imageSize, context), name),
        "xs-rel" => WithTokenSlopes(FromPreset("xs-pos", vocab, imageSize, context), name),
        "xs-blob" => WithTokenBlobs(FromPreset("xs-rel", vocab, imageSize, context), name),
        "xs-phrase" => WithPhraseMixing(FromPreset("xs-rel", vocab, imageSize, context), name),
        "xs-rel-phrase" => WithPhraseSlopes(FromPreset("xs-rel", vocab, imageSize, context), name),
        "xs-rel-rope" => WithRotaryText(FromPreset("xs-rel", vocab, imageSize, context), name),
        "xs-rel-split" => WithLayoutText(FromPreset("xs-rel", vocab, imageSize, context), name),
        "xs-rel-sum" => FromPreset("xs-rel-split", vocab, imageSize, context) with { Preset = name, CrossAddsLayout = true },
        "xs-rel-place" => WithTokenPlaces(FromPreset("xs-rel", vocab, imageSize, context), name),
        "s" => new(name, imageSize, UnetConfig.S with { PooledDim = 256 },
            new TextEncoderConfig(vocab, context, Layers: 4, Dim: 256, Heads: 8, OutDim: 256), Prediction.V),
        _ => throw new ArgumentException($"unknown preset '{name}'; use tiny, xs, xs-coord, xs-pos, xs-bind, xs-rel, xs-blob, xs-phrase, xs-rel-phrase, xs-rel-rope, xs-rel-split, xs-rel-sum, xs-rel-place or s"),
    };

    private static DiffusionConfig WithCoordinates(DiffusionConfig c, string name) => c with { Preset = name, Unet = c.Unet with { CoordChannels = true } };

    private static DiffusionConfig WithSlopes(DiffusionConfig c) => c with { Unet = c.Unet with { ResBlockCoords = true } };

    /// <summary>xs-pos plus what binding an attribute to one of two objects needs (docs/derivations/binding.md):
    /// cross-attention (without self-attention) at full resolution, where a shape's outline is drawn, and a 4-layer
    /// text encoder, so a shape word's token can carry its colour word and the relation.</summary>
    private static DiffusionConfig WithBinding(DiffusionConfig c, string name)
    {
        int levels = c.Unet.Channels.Length;
        return c with
        {
            Preset = name,
            Unet = c.Unet with { Attention = Enumerable.Repeat(true, levels).ToArray(), SelfAttention = c.Unet.Attention.ToArray() },
            Text = c.Text with { Layers = 4 },
        };
    }

    /// <summary>xs-pos plus token slopes: each text token moves its own channels along x and y, so a colour word whose
    /// token says which side it goes to can send that colour there (docs/derivations/binding.md). The text encoder
    /// stays at xs-pos's 2 layers: with 4 (xs-bind, and a first xs-rel run) places were learned more slowly.</summary>
    private static DiffusionConfig WithTokenSlopes(DiffusionConfig c, string name) =>
        c with { Preset = name, Unet = c.Unet with { TokenSlopes = true } };

    /// <summary>xs-rel plus token blobs: each text token also adds its own channels at its own place in every ResBlock, so
    /// a shape word's token can put its shape where its colour word's token puts the colour, without asking the noisy
    /// image (docs/derivations/binding.md). Token slopes stay: with them xs-rel learned the relation (colours' relation
    /// 1.000 at 7,000 steps); what it still lacks is the binding.</summary>
    private static DiffusionConfig WithTokenBlobs(DiffusionConfig c, string name) =>
        c with { Preset = name, Unet = c.Unet with { TokenBlobs = true } };

    /// <summary>xs-rel whose text encoder mixes each token with its two neighbours before attention, so the colour word's
    /// token carries its own shape word (docs/derivations/binding.md, "Phrase mixing"). The token slopes then move a
    /// colour's shape channels to the colour's side as well: binding through the path that learned the relation. In its
    /// 2-hour run the encoder lost the relation word instead (pairs 0.148); kept so that result can be reproduced.</summary>
    private static DiffusionConfig WithPhraseMixing(DiffusionConfig c, string name) =>
        c with { Preset = name, Text = c.Text with { PhraseWidth = 3 } };

    /// <summary>xs-rel whose token slopes read each token's channels V from the token and its two neighbours, leaving the
    /// text encoder as it is: xs-phrase mixed neighbours into the encoder's input and the encoder lost the relation word
    /// (docs/derivations/binding.md), so here the mixing happens on the UNet's side, after the encoder.</summary>
    private static DiffusionConfig WithPhraseSlopes(DiffusionConfig c, string name) =>
        c with { Preset = name, Unet = c.Unet with { TokenSlopeWidth = 3 } };

    /// <summary>xs-rel whose text encoder adds rotary position embedding to its attention, beside the learned absolute
    /// positions: a colour word finds the shape word right after it by one relative pattern wherever the pair stands,
    /// so it can carry its shape (what pairs lack), while every token's input stays its own word, which xs-phrase's
    /// mixer took away from the relation words (docs/derivations/binding.md, "Relative positions").</summary>
    private static DiffusionConfig WithRotaryText(DiffusionConfig c, string name) =>
        c with { Preset = name, Text = c.Text with { Rotary = true } };

    /// <summary>Two text streams (docs/derivations/binding.md, "Two text streams"): xs-rel's encoder, untouched, becomes
    /// the layout stream that the token slopes and the pooled vector read (the path that learned the relation in xs-rel),
    /// and a second encoder with rotary positions (xs-rel-rope's, which put each colour's shape into its token best)
    /// feeds cross-attention alone (the path that draws colour and shape). In every one-stream variant the colour token
    /// gained its shape and lost its side; here neither stream's gradient reaches the other's encoder.</summary>
    private static DiffusionConfig WithLayoutText(DiffusionConfig c, string name) =>
        c with { Preset = name, Text = c.Text with { Rotary = true }, LayoutText = c.Text };

    // xs-rel-sum (in FromPreset): xs-rel-split whose cross-attention reads the sum of both streams' tokens. In
    // xs-rel-split the layout encoder, trained by the slopes and the pooled vector alone, let go of the sides it had
    // learned (text probe: side from the pooled vector 0.92 at step 1,250, 0.68 at 4,000); xs-rel's one encoder, which
    // cross-attention trains too, kept them (0.99). Here the layout encoder gets xs-rel's gradients exactly, and the
    // rotary encoder adds what it reads best, each colour's shape, on top.

    /// <summary>xs-rel plus token blobs whose places come from one shared head (<see cref="TokenPlaces"/>): every
    /// ResBlock puts each token's own channels at the place the head predicts for it. With 'train diffusion --placement W'
    /// the head learns each object word's place from the data's boxes, so "which colour goes left" becomes a supervised
    /// regression from the caption, which the denoising loss alone learned in one 2-hour run out of nine
    /// (docs/derivations/binding.md, "Token places").</summary>
    private static DiffusionConfig WithTokenPlaces(DiffusionConfig c, string name) =>
        c with { Preset = name, Unet = c.Unet with { TokenBlobs = true, TokenPlaces = true } };

    public static readonly string[] PresetNames = ["tiny", "xs", "xs-coord", "xs-pos", "xs-bind", "xs-rel", "xs-blob", "xs-phrase", "xs-rel-phrase", "xs-rel-rope", "xs-rel-split", "xs-rel-sum", "xs-rel-place", "s"];

    public string ToJson()
    {
        var u = Unet; var t = Text;
        var o = new JsonObject
        {
            ["format"] = Format, ["version"] = Version, ["preset"] = Preset, ["image_size"] = ImageSize,
            ["prediction"] = Prediction == Prediction.V ? "v" : "epsilon", ["schedule"] = "cosine", ["schedule_steps"] = ScheduleSteps, ["schedule_shift"] = ScheduleShift,
            ["unet"] = new JsonObject
            {
                ["channels"] = new JsonArray(u.Channels.Select(c => (JsonNode)c).ToArray()),
                ["attention"] = new JsonArray(u.Attention.Select(c => (JsonNode)c).ToArray()),
                ["blocks_per_level"] = u.BlocksPerLevel, ["context_dim"] = u.ContextDim, ["heads"] = u.Heads, ["head_dim"] = u.HeadDim,
                ["time_dim"] = u.TimeDim, ["time_sinusoid_dim"] = u.TimeSinusoidDim, ["groups"] = u.Groups, ["image_channels"] = u.ImageChannels,
                ["pooled_dim"] = u.PooledDim, ["coord_channels"] = u.CoordChannels, ["resblock_coords"] = u.ResBlockCoords,
            },
            ["text"] = new JsonObject
            {
                ["vocab"] = t.Vocab, ["context"] = t.Context, ["layers"] = t.Layers, ["dim"] = t.Dim, ["heads"] = t.Heads, ["out_dim"] = t.OutDim,
            },
        };
        // Written only when set, so configs of models without it stay byte-identical to what earlier versions wrote.
        if (u.SelfAttention != null) o["unet"]!["self_attention"] = new JsonArray(u.SelfAttention.Select(c => (JsonNode)c).ToArray());
        if (u.TokenSlopes) o["unet"]!["token_slopes"] = true;
        if (u.TokenBlobs) o["unet"]!["token_blobs"] = true;
        if (u.TokenSlopeWidth != 1) o["unet"]!["token_slope_width"] = u.TokenSlopeWidth;
        if (u.TokenPlaces) o["unet"]!["token_places"] = true;
        if (t.PhraseWidth != 0) o["text"]!["phrase_width"] = t.PhraseWidth;
        if (t.Rotary) o["text"]!["rotary"] = true;
        if (LayoutText is { } l)
        {
            var lo = new JsonObject { ["vocab"] = l.Vocab, ["context"] = l.Context, ["layers"] = l.Layers, ["dim"] = l.Dim, ["heads"] = l.Heads, ["out_dim"] = l.OutDim };
            if (l.PhraseWidth != 0) lo["phrase_width"] = l.PhraseWidth;
            if (l.Rotary) lo["rotary"] = true;
            o["layout_text"] = lo;
        }
        if (CrossAddsLayout) o["cross_attention_adds_layout"] = true;
        if (DefaultCfg != StandardCfg) o["default_cfg"] = DefaultCfg;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public static DiffusionConfig FromJson(string json, string source)
    {
        try
        {
            var o = JsonNode.Parse(json)!.AsObject();
            if ((string?)o["format"] != Format) throw new FormatException($"{source} is not a {Format} config (format field is '{(string?)o["format"]}')");
            int v = (int)o["version"]!;
            if (v != Version) throw new FormatException($"{source} has config version {v}; this Pictor reads version {Version}. Update Pictor or retrain.");
            var u = o["unet"]!.AsObject(); var t = o["text"]!.AsObject();
            var unet = new UnetConfig(u["channels"]!.AsArray().Select(n => (int)n!).ToArray(), u["attention"]!.AsArray().Select(n => (bool)n!).ToArray(),
                (int)u["blocks_per_level"]!, (int)u["context_dim"]!, (int)u["heads"]!, (int)u["head_dim"]!, (int)u["time_dim"]!,
                (int)u["time_sinusoid_dim"]!, (int)u["groups"]!, (int)u["image_channels"]!, (int)u["pooled_dim"]!,
                CoordChannels: (bool?)u["coord_channels"] ?? false,   // absent in configs written before it existed
                ResBlockCoords: (bool?)u["resblock_coords"] ?? false,
                SelfAttention: u["self_attention"]?.AsArray().Select(n => (bool)n!).ToArray(),
                TokenSlopes: (bool?)u["token_slopes"] ?? false,
                TokenBlobs: (bool?)u["token_blobs"] ?? false,
                TokenSlopeWidth: (int?)u["token_slope_width"] ?? 1,
                TokenPlaces: (bool?)u["token_places"] ?? false);
            static TextEncoderConfig ReadText(JsonObject t) => new((int)t["vocab"]!, (int)t["context"]!, (int)t["layers"]!, (int)t["dim"]!, (int)t["heads"]!, (int)t["out_dim"]!,
                PhraseWidth: (int?)t["phrase_width"] ?? 0, Rotary: (bool?)t["rotary"] ?? false);
            var text = ReadText(t);
            var layout = o["layout_text"] is JsonObject lt ? ReadText(lt) : null;
            if (layout != null && (layout.Vocab != text.Vocab || layout.Context != text.Context || layout.OutDim != text.OutDim))
                throw new FormatException($"{source}: layout_text must share text's vocab, context and out_dim ({text.Vocab}, {text.Context}, {text.OutDim}), got ({layout.Vocab}, {layout.Context}, {layout.OutDim})");
            bool addsLayout = (bool?)o["cross_attention_adds_layout"] ?? false;
            if (addsLayout && layout == null) throw new FormatException($"{source}: cross_attention_adds_layout needs a layout_text encoder to add; remove the field or add layout_text");
            var pred = (string?)o["prediction"] switch { "v" => Prediction.V, "epsilon" => Prediction.Epsilon, var p => throw new FormatException($"{source}: unknown prediction '{p}' (v or epsilon)") };
            if ((string?)o["schedule"] != "cosine") throw new FormatException($"{source}: unknown schedule '{(string?)o["schedule"]}' (only cosine)");
            double shift = (double?)o["schedule_shift"] ?? 1;   // absent in configs written before it existed
            if (!(shift >= 1 && shift <= 64)) throw new FormatException($"{source}: schedule_shift {shift} is outside 1..64");
            double cfg = (double?)o["default_cfg"] ?? StandardCfg;
            if (!(cfg >= 0 && cfg <= 50)) throw new FormatException($"{source}: default_cfg {cfg} is outside 0..50 (a guidance scale; 3 when absent)");
            return new DiffusionConfig((string?)o["preset"] ?? "custom", (int)o["image_size"]!, unet, text, pred, (int)o["schedule_steps"]!, shift, cfg, layout, addsLayout);
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new FormatException(e is FormatException ? e.Message : $"{source} is not a valid model config: {e.Message}");
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
                foreach (var key in po.Select(kv => kv.Key).Concat(qo.Select(kv => kv.Key).Where(k => !po.ContainsKey(k))))   // a field only b has counts too
                    if (Diff(po[key], qo[key], path == "" ? key : path + "." + key) is { } d) return d;
                return null;
            }
            string ps = p?.ToJsonString() ?? "null", qs = q?.ToJsonString() ?? "null";
            return ps == qs ? null : $"{path}: {ps} vs {qs}";
        }
    }
}
