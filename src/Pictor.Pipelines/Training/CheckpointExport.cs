using System.Globalization;
using System.Text.Json.Nodes;
using Pictor.Engine.IO;

namespace Pictor.Pipelines.Training;

/// <summary>What <see cref="CheckpointExport.Export"/> wrote.</summary>
public sealed record ExportResult(string OutDir, string Checkpoint, long Step, int Tensors);

/// <summary>
/// `pictor export RUN --step N|best|last --out DIR`: a model directory from one checkpoint's EMA weights, for any
/// model family. A run exports only the weights that validate best (RUN/model), but the best validation loss is not
/// always the best model: the emoji diffusion model's val loss bottomed at step 2,800 while its CLIP R-precision kept
/// rising to step 6,000 (bench/RESULTS.md). This picks another step without retraining.
///
/// The run's own model/ is the template: its config, tokenizer and any sub-model (DALL-E's vqvae/) are copied, and
/// its weights file names every tensor, shape, stored dtype and the metadata to write. Each value comes from the
/// checkpoint's "ema." + name, exactly what the trainer copies into its eval model before it exports, so exporting
/// the step that validated best reproduces RUN/model/model.safetensors byte for byte. metrics.json (a VQ-VAE's
/// validation report) is left out: it describes other weights. export.json records the run and step.
/// The directory is assembled beside <paramref name="outDir"/> and renamed into place, so a failed export leaves
/// nothing behind, and an existing non-empty folder is never overwritten.
/// </summary>
public static class CheckpointExport
{
    public const string WeightsFile = "model.safetensors", ProvenanceFile = "export.json";
    private static readonly string[] Skipped = [WeightsFile, "metrics.json", ProvenanceFile];

    /// <param name="which">"best" (best.safetensors), "last" (the newest kept checkpoint) or a step number.</param>
    public static ExportResult Export(string runDir, string which, string outDir)
    {
        if (!File.Exists(Path.Combine(runDir, TrainingSession.TrainFile)))
            throw new FileNotFoundException($"'{runDir}' has no {TrainingSession.TrainFile}; pass a training run "
                + $"directory (the --out of 'pictor train ...')");
        string template = Path.Combine(runDir, TrainingSession.ModelDir);
        // the file the run trains: model.safetensors, or the unCLIP part (the other part, if any, is copied)
        string trainPath = Path.Combine(runDir, TrainingSession.TrainFile);
        string trained = TrainOptions.FromJson(File.ReadAllText(trainPath), trainPath).Model switch
        {
            "decoder" => Unclip.UnclipPipeline.DecoderFile,
            "prior" => Unclip.UnclipPipeline.PriorFile,
            _ => WeightsFile,
        };
        if (!File.Exists(Path.Combine(template, trained)))
            throw new FileNotFoundException($"'{runDir}' has no {TrainingSession.ModelDir}/{trained} yet: a run "
                + $"writes it at its first validation (every --val-every steps); resume the run past one first");
        string ckpt = CheckpointPath(runDir, which);
        string fullOut = Path.GetFullPath(outDir);
        if (Directory.Exists(fullOut) && Directory.EnumerateFileSystemEntries(fullOut).Any())
            throw new IOException($"'{outDir}' already exists and is not empty; pick a new --out folder or delete "
                + $"that one first");
        if (File.Exists(fullOut)) throw new IOException($"'{outDir}' is a file; pick a folder name for --out");

        var model = SafeTensorsFile.Read(Path.Combine(template, trained));
        var check = SafeTensorsFile.Read(ckpt);
        var w = new SafeTensorsWriter();
        foreach (var t in model.Tensors)
        {
            string name = "ema." + t.Name;
            if (!check.Contains(name))
                throw new FormatException($"checkpoint '{ckpt}' has no tensor '{name}' for the model's '{t.Name}'; it "
                    + $"was not written by this run (compare its config.json)");
            var info = check.Info(name);
            if (!info.Shape.AsSpan().SequenceEqual(t.Shape))
                throw new FormatException($"checkpoint '{ckpt}': '{name}' has shape [{string.Join(", ", info.Shape)}], "
                    + $"the model's '{t.Name}' is [{string.Join(", ", t.Shape)}]; it was not written by this run");
            w.Add(t.Name, check.ReadFloat32(name), t.Shape, t.DType);
        }
        long step = check.Metadata.TryGetValue("step", out var s) ? long.Parse(s, CultureInfo.InvariantCulture)
            : throw new FormatException($"checkpoint '{ckpt}' has no 'step' in its metadata; it is not a Pictor "
                + $"checkpoint or is damaged");

        string parent = Path.GetDirectoryName(fullOut) ?? ".";
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent,
            $".{Path.GetFileName(fullOut)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            CopyTree(template, tmp, top: true, trained);
            w.Write(Path.Combine(tmp, trained), model.Metadata);
            WeightsManifest.Write(tmp);   // the exported weights, so `pictor doctor` accepts the folder
            AtomicFile.WriteAllText(Path.Combine(tmp, ProvenanceFile), new JsonObject
            {
                ["run"] = Path.GetFullPath(runDir), ["checkpoint"] = Path.GetFileName(ckpt), ["step"] = step,
            }.ToJsonString());
            if (Directory.Exists(fullOut)) Directory.Delete(fullOut);   // empty, checked above
            Directory.Move(tmp, fullOut);
        }
        catch
        {
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true); } catch (IOException) { } catch (
                UnauthorizedAccessException) { }
            throw;
        }
        return new ExportResult(outDir, ckpt, step, model.Tensors.Count);
    }

    /// <summary>The checkpoint file <paramref name="which"/> names in <paramref name="runDir"/>.</summary>
    public static string CheckpointPath(string runDir, string which)
    {
        string dir = Path.Combine(runDir, TrainingSession.CheckpointDir);
        var kept = Directory.Exists(dir) ? Directory.GetFiles(dir, "step-*.safetensors").Order(StringComparer.Ordinal)
            .ToList() : [];
        string Available() => kept.Count == 0 ? "it keeps none" : "it keeps steps "
            + string.Join(", ", kept.Select(StepOf));
        switch (which)
        {
            case "best":
                var best = Path.Combine(runDir, TrainingSession.BestFile);
                return File.Exists(best) ? best
                    : throw new FileNotFoundException($"'{runDir}' has no {TrainingSession.BestFile} (no validation "
                    + $"yet); use --step last or a step number ({Available()})");
            case "last":
                return kept.Count > 0 ? kept[^1]
                    : throw new FileNotFoundException(
                    $"'{runDir}' has no checkpoints in {TrainingSession.CheckpointDir}/; use --step best");
        }
        if (!long.TryParse(which, NumberStyles.Integer, CultureInfo.InvariantCulture, out long step) || step < 0)
            throw new ArgumentException($"--step must be 'best', 'last' or a step number, got '{which}'");
        var path = Path.Combine(dir, $"step-{step:D7}.safetensors");
        return File.Exists(path) ? path
            : throw new FileNotFoundException($"'{runDir}' has no checkpoint for step {step}: {Available()} (--keep K "
                + $"sets how many a run keeps; raise it before training to export earlier steps)");
    }

    private static string StepOf(string path) =>
        long.Parse(Path.GetFileNameWithoutExtension(path)["step-".Length..], CultureInfo.InvariantCulture)
            .ToString(CultureInfo.InvariantCulture);

    /// <summary>Copies a folder; at the top level, not the files the export writes or leaves out (a sub-model's own
    /// weights, DALL-E's vqvae/model.safetensors, are copied). Hidden files (an interrupted write's temp) are
    /// skipped.</summary>
    private static void CopyTree(string from, string to, bool top, string weights)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
        {
            string name = Path.GetFileName(f);
            if (!(top && (Skipped.Contains(name) || name == weights)) && !name.StartsWith('.'))
                File.Copy(f, Path.Combine(to, name));
        }
        foreach (var d in Directory.GetDirectories(from))
            CopyTree(d, Path.Combine(to, Path.GetFileName(d)), top: false, weights);
    }
}
