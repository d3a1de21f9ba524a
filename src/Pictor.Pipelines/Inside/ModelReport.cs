using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine.IO;
using Pictor.Pipelines.Training;
using Pictor.Text;

namespace Pictor.Pipelines.Inside;

/// <summary>The stored tensors under one module name (<see cref="ModelReport.ModuleOf"/>) and their element
/// count.</summary>
public sealed record ModuleSize(string Name, int Tensors, long Elements);

/// <summary>A model folder's tokenizer: vocabulary size, merges learned, whether text is normalised first.</summary>
public sealed record TokenizerSummary(int Vocab, int Merges, bool Normalise);

/// <summary>
/// `pictor inspect MODEL`: what a model folder of any family holds, read from its files without sampling: the
/// family and preset, the stored tensors per module (from the safetensors header; buffers such as a VQ codebook's
/// moving averages count too), config.json, the tokenizer, the weights hash (the 10 digits PNG metadata records,
/// and the full SHA-256 checked against weights.sha256), what the training run recorded when the folder is a run's
/// model/ or an export (train.json, log.csv, export.json, metrics.json), the shipped model's page in docs/models/,
/// codebook health for a VQ-VAE, and the same for a sub-model (DALL-E's vqvae/).
/// </summary>
public sealed record ModelReport(string Path, string Format, string? Preset, int? ImageSize,
    IReadOnlyList<ModuleSize> Modules, JsonNode? Config, TokenizerSummary? Tokenizer, string WeightsHash,
    bool WeightsVerified, string WeightsDetail, JsonObject? Training, JsonObject? Metrics, string? DocPage,
    CodebookHealth? Codebook, IReadOnlyList<ModelReport> SubModels)
{
    /// <summary>All stored elements (parameters and buffers).</summary>
    public long Elements => Modules.Sum(m => m.Elements);

    /// <summary>Reads the model folder <paramref name="dir"/> (or a run's, whose model is RUN/model).</summary>
    public static ModelReport Of(string dir) => Of(dir, null);

    /// <param name="parent">The verification of the folder above, whose weights.sha256 lists a sub-model's
    /// weights.</param>
    private static ModelReport Of(string dir, (bool Ok, string Detail)? parent)
    {
        var m = ModelDirectory.Open(dir);
        var config = JsonNode.Parse(m.ConfigJson);
        // one weights file, or unCLIP's two (its prior's and decoder's, hashed in that order as its pipeline does)
        bool single = File.Exists(System.IO.Path.Combine(m.Path, ModelDirectory.WeightsFile));
        string[] parts = single ? [] : new[] { Unclip.UnclipPipeline.PriorFile, Unclip.UnclipPipeline.DecoderFile }
            .Select(f => System.IO.Path.Combine(m.Path, f)).Where(File.Exists).ToArray();
        string weights = single || parts.Length == 0 ? m.Require(ModelDirectory.WeightsFile) : parts[0];
        var file = SafeTensorsFile.Read(weights);
        var tensors = single ? file.Tensors.ToList()
            : parts.SelectMany(f => SafeTensorsFile.Read(f).Tensors).ToList();
        var modules = tensors.GroupBy(t => ModuleOf(t.Name))
            .Select(g => new ModuleSize(g.Key, g.Count(), g.Sum(t => (long)t.Numel))).ToList();
        string tokDir = System.IO.Path.Combine(m.Path, ModelDirectory.TokenizerDir);
        TokenizerSummary? tok = null;
        if (Directory.Exists(tokDir))
        {
            var t = BpeTokenizer.Load(tokDir);
            tok = new TokenizerSummary(t.VocabSize, t.Merges.Count, t.Normalise);
        }
        var subs = Directory.EnumerateDirectories(m.Path).Order(StringComparer.Ordinal)
            .Where(d => File.Exists(System.IO.Path.Combine(d, ModelDirectory.ConfigFile))
                && File.Exists(System.IO.Path.Combine(d, ModelDirectory.WeightsFile)))
            .Select(d => Of(d, WeightsManifest.Verify(m.Path))).ToList();
        string hash = !single ? ModelDirectory.HashFiles(parts) : subs.Count == 0 ? ModelDirectory.HashFile(weights)
            : ModelDirectory.HashFiles([weights, .. subs.Select(s => System.IO.Path.Combine(s.Path,
                ModelDirectory.WeightsFile))]);
        bool hasManifest = File.Exists(System.IO.Path.Combine(m.Path, WeightsManifest.FileName));
        var (ok, detail) = hasManifest ? WeightsManifest.Verify(m.Path)
            : parent is { } up ? (up.Ok, $"by the folder above's {WeightsManifest.FileName}: {up.Detail}")
            : (false, $"no {WeightsManifest.FileName} beside the weights; record it with: cd {m.Path} && "
                + $"sha256sum model.safetensors > {WeightsManifest.FileName}");
        return new ModelReport(m.Path, m.Format, (string?)config?["preset"], (int?)config?["image_size"], modules,
            config, tok, hash, ok, detail, TrainingOf(m.Path),
            ReadJson(System.IO.Path.Combine(m.Path, "metrics.json")),
            DocPageOf(m.Path), CodebookOf(file), subs);
    }

    /// <summary>The module a tensor belongs to: its dotted name cut at two levels and before the first index, without a
    /// last "weight" or "bias" ("unet.enc_res.0.conv1.weight" -> "unet.enc_res", "blocks.3.attn.qkv.weight" ->
    /// "blocks", "ln_f.bias" -> "ln_f", "text.pos_emb" -> "text.pos_emb").</summary>
    public static string ModuleOf(string tensor)
    {
        var parts = tensor.Split('.');
        var keep = new List<string>();
        for (int i = 0; i < parts.Length && keep.Count < 2; i++)
        {
            if (parts[i].All(char.IsAsciiDigit)) break;
            if (i > 0 && i == parts.Length - 1 && parts[i] is "weight" or "bias") break;
            keep.Add(parts[i]);
        }
        return string.Join('.', keep);
    }

    /// <summary>Codebook health from a moving-average VQ's stored cluster sizes (what training counted), or null for
    /// a model without them (the Gumbel quantiser keeps none).</summary>
    private static CodebookHealth? CodebookOf(SafeTensorsFile f)
    {
        const string name = "quantizer.cluster_size";
        if (!f.Contains(name)) return null;
        return CodebookHealth.FromCounts(f.ReadFloat32(name).Select(v => (double)v).ToArray(),
            "training's moving-average code counts");
    }

    /// <summary>What the run recorded: training.json (<see cref="TrainingRecord"/>) and export.json in the folder (an
    /// export), and train.json and log.csv in the run folder above (a run's model/). Null when nothing was
    /// recorded.</summary>
    private static JsonObject? TrainingOf(string dir)
    {
        var o = new JsonObject();
        if (ReadJson(System.IO.Path.Combine(dir, TrainingRecord.FileName)) is { } record) o["record"] = record;
        if (ReadJson(System.IO.Path.Combine(dir, CheckpointExport.ProvenanceFile)) is { } export)
        {
            o["export"] = export;
            if ((string?)export["run"] is { } run && Directory.Exists(run))
                dir = System.IO.Path.Combine(run, TrainingSession.ModelDir);
        }
        string? runDir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(dir));
        if (runDir != null && ReadJson(System.IO.Path.Combine(runDir, TrainingSession.TrainFile)) is { } train)
        {
            o["run"] = runDir;
            o["options"] = train;
            string log = System.IO.Path.Combine(runDir, "log.csv");
            if (File.Exists(log))
            {
                var rows = File.ReadAllLines(log).Skip(1).Select(l => l.Split(',')).Where(r => r.Length == 3)
                    .Select(r => (Step: long.Parse(r[0], CultureInfo.InvariantCulture),
                        Val: double.Parse(r[2], CultureInfo.InvariantCulture))).ToList();
                if (rows.Count > 0)
                {
                    var best = rows.MinBy(r => r.Val);
                    o["steps_logged"] = rows[^1].Step;
                    o["best_val_loss"] = best.Val;
                    o["best_val_step"] = best.Step;
                }
            }
        }
        return o.Count == 0 ? null : o;
    }

    private static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (JsonException e)
        {
            throw new FormatException($"{path} is not valid JSON ({e.Message}); restore it or delete it");
        }
    }

    /// <summary>docs/models/NAME.md of the checkout, for a shipped model models/NAME.</summary>
    private static string? DocPageOf(string dir)
    {
        var d = new DirectoryInfo(System.IO.Path.GetFullPath(dir));
        if (d.Parent is not { Name: "models" } models || models.Parent == null) return null;
        string page = System.IO.Path.Combine(models.Parent.FullName, "docs", "models", d.Name + ".md");
        return File.Exists(page) ? page : null;
    }

    /// <summary>The report as the CLI prints it.</summary>
    public string ToText() => Text(new StringBuilder(), "").ToString();

    private StringBuilder Text(StringBuilder sb, string indent)
    {
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"{indent}{Path}\n");
        sb.Append(inv, $"{indent}  format     {Format}, preset {Preset ?? "-"}, "
            + $"image {ImageSize?.ToString(inv) ?? "-"}\n");
        sb.Append(inv, $"{indent}  weights    {Elements:N0} parameters (buffers included) in "
            + $"{Modules.Sum(m => m.Tensors)} tensors; hash {WeightsHash}\n");
        sb.Append(inv, $"{indent}  verified   {(WeightsVerified ? "yes" : "no")}: {WeightsDetail}\n");
        int width = Modules.Max(m => m.Name.Length);
        foreach (var mod in Modules)
            sb.Append(inv, $"{indent}    {mod.Name.PadRight(width)}  {mod.Elements,12:N0}  "
                + $"{100.0 * mod.Elements / Math.Max(1, Elements),5:F1} %  ({mod.Tensors} tensors)\n");
        if (Tokenizer is { } t)
            sb.Append(inv, $"{indent}  tokenizer  byte-level BPE, {t.Vocab} tokens ({t.Merges} merges)")
                .Append(t.Normalise ? ", text normalised (NFC, whitespace)\n" : "\n");
        if (Codebook is { } cb) sb.Append(inv, $"{indent}  codebook   {cb}\n");
        if (Training?["record"] is JsonObject rec)
        {
            string? data = (string?)rec["data_sha256"], cmd = (string?)rec["command"];
            sb.Append(inv, $"{indent}  trained    {(double?)rec["minutes"] ?? 0:F1} min: {(string?)rec["detail"]}")
                .Append(cmd != null ? $"; command: {cmd}" : "")
                .Append(data != null ? $"; data {(string?)rec["data"]} sha256 {data[..Math.Min(10, data.Length)]}" : "")
                .Append('\n');
        }
        if (Training is { } tr)
            sb.Append(inv, $"{indent}  training   {tr.ToJsonString()}\n");
        if (Metrics is { } me) sb.Append(inv, $"{indent}  metrics    {me.ToJsonString()}\n");
        if (DocPage != null)
            sb.Append(inv, $"{indent}  made by    {System.IO.Path.GetRelativePath(Environment.CurrentDirectory,
                DocPage)} (recipe, commands, eval figures)\n");
        if (Training == null && DocPage == null)
            sb.Append(inv, $"{indent}  made by    not recorded (no train.json above, no export.json)\n");
        sb.Append(inv, $"{indent}  config     {Config?.ToJsonString()}\n");
        foreach (var s in SubModels) s.Text(sb.Append(inv, $"{indent}  sub-model\n"), indent + "    ");
        return sb;
    }
}
