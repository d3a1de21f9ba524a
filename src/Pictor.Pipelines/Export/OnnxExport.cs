using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Models.Diffusion;
using Pictor.Pipelines.Diffusion;

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
            _ => throw new NotSupportedException($"ONNX export: '{m.Path}' holds a {m.Format} model and only "
                + $"{DiffusionConfig.Format} models have an ONNX writer yet; export a diffusion model (docs/onnx.md)"),
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
        var json = new JsonObject
        {
            ["format"] = Format,
            ["version"] = Version,
            ["family"] = "diffusion",
            ["source"] = Path.GetFileName(Path.GetFullPath(modelDir)),
            ["source_weights_hash"] = ModelDirectory.HashFile(Path.Combine(modelDir, ModelDirectory.WeightsFile)),
            ["opset"] = OnnxGraph.Opset,
            ["networks"] = Networks(nets, new()
            {
                ["text_encoder"] = ($"ids int64 [batch, {cfg.Text.Context}]",
                    $"tokens [batch, {cfg.Text.Context}, {cfg.Text.OutDim}], pooled [batch, {cfg.Text.OutDim}]"),
                ["unet"] = ($"x [batch, 3, {cfg.ImageSize}, {cfg.ImageSize}], t [batch] (step index 0.."
                    + $"{cfg.ScheduleSteps - 1} as float), context = text_encoder.tokens"
                    + (cfg.Unet.PooledDim > 0 ? ", pooled = text_encoder.pooled" : ""),
                    $"prediction [batch, 3, {cfg.ImageSize}, {cfg.ImageSize}]"),
            }),
            ["tokenizer"] = tok,
            ["text_context"] = cfg.Text.Context,
            ["image"] = new JsonObject
            {
                ["size"] = cfg.ImageSize, ["channels"] = 3,
                ["range"] = "[-1, 1]; clip the sampler's x0 to it, then pixel = (x + 1) / 2 * 255",
            },
            ["scheduler"] = new JsonObject
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
            },
            ["guidance"] = new JsonObject
            {
                ["default_scale"] = cfg.DefaultCfg,
                ["unconditional_caption"] = "",
                ["rule"] = "prediction = uncond + scale * (cond - uncond) (Ho and Salimans 2022, eq. 6)",
            },
        };
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
