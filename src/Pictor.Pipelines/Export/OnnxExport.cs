using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Models.Clip;
using Pictor.Models.Diffusion;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Vq;

namespace Pictor.Pipelines.Export;

/// <summary>One written network: its file, size and the operator types it uses.</summary>
public sealed record OnnxNetwork(string Name, string File, long Bytes, IReadOnlyList<string> Ops);

/// <summary>What an export wrote: the networks, and pipeline.json, which says how they fit.</summary>
public sealed record OnnxExportResult(string OutDir, IReadOnlyList<OnnxNetwork> Networks, string PipelineJson);

/// <summary>
/// 'pictor export MODEL --format onnx': every network of a model directory as one .onnx file (opset 17, weights as
/// initialisers under their Pictor names, a dynamic batch axis), the tokenizer files copied beside them, and
/// pipeline.json (format pictor-onnx, version 1): the scheduler settings, guidance, image range and each network's
/// inputs and outputs. Families without a writer yet are refused in one line (docs/onnx.md).
/// </summary>
public static class OnnxExport
{
    public const string Format = "pictor-onnx";
    public const int Version = 1;
    public const string PipelineFile = "pipeline.json";
    /// <summary>The default-domain opset of every exported graph.</summary>
    public const int Opset = OnnxGraph.Opset;

    public static OnnxExportResult Export(string modelDir, string outDir)
    {
        var m = ModelDirectory.Open(modelDir);
        return m.Format switch
        {
            DiffusionConfig.Format => Diffusion(DiffusionPipeline.Load(m), m.Path, outDir),
            ClipPipeline.Format => Clip(ClipPipeline.Load(m.Path), m.Path, outDir),
            DalleSetup.Format => Dalle(DallePipeline.Load(m), m.Path, outDir),
            VqModel.Format => Vq(VqModel.Load(m.Path), m.Path, outDir),
            _ => throw new NotSupportedException($"ONNX export: '{m.Path}' holds a '{m.Format}' model, which has no "
                + "ONNX writer; export a pictor-diffusion, pictor-clip, pictor-dalle or pictor-vqvae model"),
        };
    }

    /// <summary>The diffusion family: text_encoder.onnx, unet.onnx, tokenizer/, pipeline.json.</summary>
    public static OnnxExportResult Diffusion(DiffusionPipeline p, string modelDir, string outDir)
    {
        var cfg = p.Config;
        // Every graph is built before anything is written, so a refused module leaves no half-written folder.
        var text = DiffusionExport.TextEncoder(p.TextEncoder);
        var unet = DiffusionExport.Unet(p.Unet, cfg.ImageSize, cfg.Text.Context);
        Directory.CreateDirectory(outDir);
        var nets = new List<OnnxNetwork>
        {
            Write(text, "text_encoder", outDir,
                "Pictor diffusion text encoder: ids [B, S] int64 -> tokens [B, S, Dc], pooled [B, Dc]"),
            Write(unet, "unet", outDir,
                "Pictor diffusion UNet: x [B, 3, H, W], t [B], context [B, S, Dc], pooled [B, Dc] -> prediction"),
        };
        var tok = CopyTokenizer(modelDir, outDir);
        bool shifted = cfg.ScheduleShift != 1;
        var json = Header("diffusion", modelDir);
        json["networks"] = Networks(nets, new()
        {
            ["text_encoder"] = ($"ids int64 [batch, {cfg.Text.Context}]",
                $"tokens [batch, {cfg.Text.Context}, {cfg.Text.OutDim}], pooled [batch, {cfg.Text.OutDim}]"),
            ["unet"] = ($"x [batch, 3, {cfg.ImageSize}, {cfg.ImageSize}], t [batch] (step index 0.."
                + $"{cfg.ScheduleSteps - 1} as float), context = text_encoder.tokens"
                + (cfg.Unet.PooledDim > 0 ? ", pooled = text_encoder.pooled" : ""),
                $"prediction [batch, 3, {cfg.ImageSize}, {cfg.ImageSize}]"),
        });
        json["tokenizer"] = tok;
        json["text_context"] = cfg.Text.Context;
        json["image"] = new JsonObject
        {
            ["size"] = cfg.ImageSize, ["channels"] = 3,
            ["range"] = "[-1, 1]; clip the sampler's x0 to it, then pixel = (x + 1) / 2 * 255",
        };
        json["scheduler"] = new JsonObject
        {
            ["schedule"] = "cosine (Nichol and Dhariwal 2021, eq. 17, s = 0.008, betas clipped to 0.999)",
            ["train_steps"] = cfg.ScheduleSteps,
            ["shift"] = cfg.ScheduleShift,
            ["shift_rule"] = "abar' = abar / (abar + shift^2 (1 - abar))",
            ["prediction"] = cfg.Prediction == Prediction.V ? "v" : "epsilon",
            ["timestep_spacing"] = shifted ? "uniform in log-SNR" : "trailing",
            ["default_sampler"] = p.DefaultSampler,
            ["default_steps"] = p.DefaultSteps,
            ["samplers"] = new JsonArray([.. DiffusionPipeline.SamplerNames.Select(n => (JsonNode?)n)]),
        };
        json["guidance"] = new JsonObject
        {
            ["default_scale"] = cfg.DefaultCfg,
            ["unconditional_caption"] = "",
            ["rule"] = "prediction = uncond + scale * (cond - uncond) (Ho and Salimans 2022, eq. 6)",
        };
        return Finish(outDir, nets, json);
    }

    /// <summary>CLIP: clip_text.onnx, clip_image.onnx, tokenizer/, pipeline.json (with the logit scale).</summary>
    public static OnnxExportResult Clip(ClipPipeline p, string modelDir, string outDir)
    {
        var cfg = p.Config;
        var text = ClipExport.Text(p.Model);
        var image = ClipExport.Image(p.Model, p.ImageSize);
        Directory.CreateDirectory(outDir);
        var nets = new List<OnnxNetwork>
        {
            Write(text, "clip_text", outDir, "Pictor CLIP text tower: ids [B, S] int64 -> unit embedding [B, E]"),
            Write(image, "clip_image", outDir, "Pictor CLIP image tower: image [B, 3, H, W] -> unit embedding [B, E]"),
        };
        var json = Header("clip", modelDir);
        json["networks"] = Networks(nets, new()
        {
            ["clip_text"] = ($"ids int64 [batch, {cfg.Text.Context}]", $"embedding [batch, {cfg.EmbedDim}], unit"),
            ["clip_image"] = ($"image [batch, 3, {p.ImageSize}, {p.ImageSize}] in [-1, 1] (pixel / 127.5 - 1)",
                $"embedding [batch, {cfg.EmbedDim}], unit"),
        });
        json["tokenizer"] = CopyTokenizer(modelDir, outDir);
        json["text_context"] = cfg.Text.Context;
        json["logit_scale"] = MathF.Exp(Math.Min(p.Model.LogScale.Span[0], ClipModel.MaxLogScale));
        json["score"] = "logit_scale * dot(image embedding, text embedding)";
        return Finish(outDir, nets, json);
    }

    /// <summary>DALL-E: dalle_transformer.onnx (full-sequence forward), vq_decoder.onnx, tokenizer/,
    /// pipeline.json.</summary>
    public static OnnxExportResult Dalle(DallePipeline p, string modelDir, string outDir)
    {
        var t = p.Setup.Transformer;
        var tr = DalleExport.Transformer(p.Transformer);
        var dec = DalleExport.VqDecoder(p.Vq.Net, p.ImageSize);
        Directory.CreateDirectory(outDir);
        var nets = new List<OnnxNetwork>
        {
            Write(tr, "dalle_transformer", outDir, "Pictor DALL-E transformer: ids [B, T] int64 -> logits [B, T, V]"),
            Write(dec, "vq_decoder", outDir, "Pictor VQ-VAE decoder: codes [B, G, G] int64 -> image [B, 3, H, W]"),
        };
        var json = Header("dalle", modelDir);
        json["networks"] = Networks(nets, new()
        {
            ["dalle_transformer"] = ($"ids int64 [batch, {t.SeqLen}]: {t.TextLen} text slots (the tokenizer's ids), "
                + $"then {t.ImageLen} image slots (code k as id {t.TextVocab} + k)",
                $"logits [batch, {t.SeqLen}, {t.Vocab}]: position j predicts the token at j + 1 (causal)"),
            ["vq_decoder"] = ($"codes int64 [batch, {t.Grid}, {t.Grid}] (0..{t.ImageVocab - 1}, raster order)",
                $"image [batch, 3, {p.ImageSize}, {p.ImageSize}] in [-1, 1]"),
        });
        json["tokenizer"] = CopyTokenizer(modelDir, outDir);
        json["sequence"] = new JsonObject
        {
            ["text_len"] = t.TextLen, ["text_vocab"] = t.TextVocab, ["image_vocab"] = t.ImageVocab,
            ["grid"] = t.Grid,
        };
        json["sampling"] = new JsonObject
        {
            ["rule"] = "for image slot j = 0 .. G*G-1: logits at position text_len + j - 1, image ids only, "
                + "temperature / top-k / top-p, guided as uncond + scale * (cond - uncond) over the empty caption; "
                + "the graph has no KV cache, so each token reruns the sequence (later slots are masked)",
            ["default_guidance"] = ((ITextToImage)p).DefaultGuidance,
        };
        return Finish(outDir, nets, json);
    }

    /// <summary>A VQ-VAE on its own: vq_decoder.onnx and pipeline.json.</summary>
    public static OnnxExportResult Vq(VqModel vq, string modelDir, string outDir)
    {
        var dec = DalleExport.VqDecoder(vq.Net, vq.ImageSize);
        Directory.CreateDirectory(outDir);
        var nets = new List<OnnxNetwork>
        {
            Write(dec, "vq_decoder", outDir, "Pictor VQ-VAE decoder: codes [B, G, G] int64 -> image [B, 3, H, W]"),
        };
        var json = Header("vqvae", modelDir);
        json["networks"] = Networks(nets, new()
        {
            ["vq_decoder"] = ($"codes int64 [batch, {vq.Grid}, {vq.Grid}]",
                $"image [batch, 3, {vq.ImageSize}, {vq.ImageSize}] in [-1, 1]"),
        });
        return Finish(outDir, nets, json);
    }

    private static JsonObject Header(string family, string modelDir) => new()
    {
        ["format"] = Format,
        ["version"] = Version,
        ["family"] = family,
        ["source"] = Path.GetFileName(Path.GetFullPath(modelDir)),
        ["source_weights_hash"] = ModelDirectory.HashFile(Path.Combine(modelDir, ModelDirectory.WeightsFile)),
        ["opset"] = OnnxGraph.Opset,
    };

    private static OnnxExportResult Finish(string outDir, List<OnnxNetwork> nets, JsonObject json)
    {
        string path = Path.Combine(outDir, PipelineFile);
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return new OnnxExportResult(outDir, nets, path);
    }

    private static OnnxNetwork Write(OnnxGraph g, string name, string outDir, string doc)
    {
        string file = name + ".onnx";
        long bytes = g.Save(Path.Combine(outDir, file), doc);
        return new OnnxNetwork(name, file, bytes, [.. g.OpTypes]);
    }

    private static JsonObject Networks(List<OnnxNetwork> nets, Dictionary<string, (string In, string Out)> io)
    {
        var o = new JsonObject();
        foreach (var n in nets)
            o[n.Name] = new JsonObject
            {
                ["file"] = n.File, ["inputs"] = io[n.Name].In, ["outputs"] = io[n.Name].Out,
                ["ops"] = new JsonArray([.. n.Ops.Select(op => (JsonNode?)op)]),
            };
        return o;
    }

    /// <summary>Copies tokenizer/ (vocab.json, merges.txt) beside the networks; returns their relative paths.</summary>
    private static JsonObject CopyTokenizer(string modelDir, string outDir)
    {
        string from = Path.Combine(modelDir, ModelDirectory.TokenizerDir), to = Path.Combine(outDir, "tokenizer");
        Directory.CreateDirectory(to);
        var o = new JsonObject { ["kind"] = "Pictor byte-level BPE (src/Pictor.Text/BpeTokenizer.cs)" };
        foreach (var f in Directory.GetFiles(from).Order(StringComparer.Ordinal))
        {
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
            o[Path.GetFileNameWithoutExtension(f)] = "tokenizer/" + Path.GetFileName(f);
        }
        return o;
    }
}
