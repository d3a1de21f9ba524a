using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Distributed;
using Pictor.Pipelines.Export;
using Pictor.Pipelines.Gan;
using Pictor.Pipelines.Inside;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Unclip;
using Pictor.Pipelines.Vae;
using Pictor.Pipelines.Vq;

namespace Pictor.Cli;

/// <summary>'pictor train diffusion|vqvae|dalle|clip': parse, run the trainer with a progress bar, print where things
/// went; 'pictor export': another step of a run as a model directory.</summary>
internal static class TrainVerbs
{
    public static Command Train() => With(new Command("train", "Train a model from scratch, or --resume a run"),
        Families(plan: false));

    /// <summary>'pictor plan train FAMILY [the options of train]': the run's memory and time from a short measured
    /// calibration (<see cref="TrainingPlanner"/>), and whether it fits --max-minutes.</summary>
    public static Command Plan() => new("plan", "Estimate a run's cost before it starts")
    {
        With(new Command("train", "Peak memory and time of 'pictor train FAMILY ...' from a few measured steps on "
            + "this machine, and whether it fits --max-minutes (exit 1 when it does not)"), Families(plan: true)),
    };

    private static Command With(Command c, Command[] children)
    {
        foreach (var child in children) c.Add(child);
        return c;
    }

    private static Command[] Families(bool plan) =>
    [
        Family("diffusion", "Text-conditioned DDPM (UNet with cross-attention) on captioned images",
            DiffusionConfig.PresetNames, new TrainOptions(), plan),
        Family("vqvae", "The DALL-E image tokenizer (VQ-VAE, or Gumbel-softmax dVAE with a dvae-* preset)",
            VqModel.PresetNames, new TrainOptions { Model = "vqvae", Preset = "s", EmaDecay = 0f }, plan),
        Family("dalle", "The DALL-E transformer over text and image tokens (needs --vqvae)",
            DalleSetup.PresetNames, new TrainOptions { Model = "dalle", Preset = "xs" }, plan),
        Family("clip", "Contrastive text and image encoders (for reranking and evaluation)",
            ClipPipeline.PresetNames, new TrainOptions { Model = "clip", Preset = "xs" }, plan),
        Family("vae", "The conditional VAE baseline: one decoder call per image from its Gaussian prior",
            VaePipeline.PresetNames, new TrainOptions { Model = "vae", Preset = "xs", Lr = 1e-3f }, plan),
        Family("gan", "The conditional GAN baseline: hinge loss, spectral norm, projection discriminator, TTUR, "
            + "DiffAugment", GanPipeline.PresetNames, new TrainOptions { Model = "gan", Preset = "xs", Lr = 1e-4f,
                MinLr = 1e-4f, DiscriminatorLr = 4e-4f, Warmup = 0, WeightDecay = 0f, ClipNorm = 10f,
                CaptionDropout = 0f, Patience = 0, Batch = 64 }, plan),
        Family("decoder", "unCLIP's decoder: a UNet drawing an image from its CLIP image embedding (needs "
            + "--clip-model)", UnclipConfig.PresetNames, new TrainOptions { Model = "decoder", Preset = "xs",
                Lr = 1e-3f }, plan),
        Family("prior", "unCLIP's prior: a transformer from a caption's CLIP text encoding to a CLIP image "
            + "embedding (needs --clip-model; --decoder DIR makes its model generate)", UnclipConfig.PresetNames,
            new TrainOptions { Model = "prior", Preset = "xs", Lr = 3e-4f, Batch = 64 }, plan),
    ];

    /// <summary>One family's 'train' verb: every option with that family's default, each mapped to its train.json field
    /// so that --resume can refuse an option that differs from the run's.</summary>
    private static Command Family(string family, string description, string[] presets, TrainOptions d, bool plan)
    {
        var fields = new List<(Option Option, string Field)>();
        T Add<T>(T o, string field) where T : Option { fields.Add((o, field)); return o; }
        var data = Add(CliOptions.Text("--data",
            "dataset folder with train/ and val/ (e.g. from 'pictor data shapes')"), "data");
        var preset = Add(CliOptions.Choice("--preset", "model size and shape", d.Preset, presets), "preset");
        var size = Add(CliOptions.Int("--size", "image side in pixels (a multiple of 8)", d.ImageSize, 8,
            256), "image_size");
        var context = Add(CliOptions.Int("--context", "text tokens per caption, bos and eos included", d.Context, 4,
            256),
            "context");
        var vocab = Add(CliOptions.Int("--vocab", "BPE vocabulary cap", d.Vocab, 260, 65536), "vocab");
        var batch = Add(CliOptions.Int("--batch", "images per step", d.Batch, 1, 4096), "batch");
        var steps = Add(CliOptions.Int("--steps", "optimiser steps (the cosine decay's length)",
            d.Steps, 1, 100_000_000),
            "steps");
        var lr = Add(CliOptions.Float("--lr", "peak learning rate", d.Lr, 1e-8f, 1f), "lr");
        var minLr = Add(CliOptions.Float("--min-lr", "learning rate at the end of the decay", d.MinLr, 0f, 1f),
            "min_lr");
        var warmup = Add(CliOptions.Int("--warmup", "linear warm-up steps", d.Warmup, 0, 100_000_000), "warmup");
        var wd = Add(CliOptions.Float("--weight-decay", "AdamW weight decay", d.WeightDecay, 0f, 1f), "weight_decay");
        var clip = Add(CliOptions.Float("--clip", "gradient-norm clipping threshold", d.ClipNorm, 1e-6f, 1e6f),
            "clip_norm");
        var ema = Add(CliOptions.Float("--ema", "EMA decay of the weights (0 = off)", d.EmaDecay, 0f, 0.999999f),
            "ema_decay");
        var captionDropout = Add(CliOptions.Float("--caption-dropout", "share of captions dropped (for guidance)",
            d.CaptionDropout, 0f, 0.99f), "caption_dropout");
        var valEvery = Add(CliOptions.Int("--val-every", "steps between validations", d.ValEvery, 1, int.MaxValue),
            "val_every");
        var ckptEvery = Add(CliOptions.Int("--ckpt-every", "steps between checkpoints", d.CkptEvery, 1, int.MaxValue),
            "ckpt_every");
        var keep = Add(CliOptions.Int("--keep", "step checkpoints kept (best.safetensors besides)", d.Keep, 1, 1000),
            "keep");
        var patience = Add(CliOptions.Int("--patience", "validations without improvement before stopping (0 = never)",
            d.Patience, 0, 1_000_000), "patience");
        var valImages = Add(CliOptions.Int("--val-images", "val images validated on", d.ValImages, 1, 1_000_000),
            "val_images");
        var seed = Add(CliOptions.ULong("--seed", "seed of the weights and the data order", d.Seed), "seed");
        var output = CliOptions.Text("--out", "run folder to create (checkpoints, samples, model/)");
        var resume = CliOptions.Text("--resume", "continue this run exactly where its last checkpoint left it");
        var maxMinutes = CliOptions.Float("--max-minutes", "stop with a checkpoint after this long (0 = no limit)", 0,
            0, 1e6f);
        var stopAt = CliOptions.Int("--stop-at-step", "stop with a checkpoint at this step (0 = no limit)",
            0, 0, int.MaxValue);
        var strict = CliOptions.Flag("--strict",
            "stop at an image that does not decode, instead of skipping it with a warning");
        var c = new Command(family, description);
        foreach (var (o, _) in fields) c.Add(o);
        c.Add(output); c.Add(resume); c.Add(maxMinutes); c.Add(stopAt); c.Add(strict);

        // Family-only options: the others' verbs do not take them (an unknown option there).
        Option<string>? vqvae = null, clipModel = null, decoder = null;
        Option<float>? dropout = null, noiseShift = null, hflip = null, minSnr = null,
            grounding = null, placement = null, dLr = null;
        if (family == "gan")
            c.Add(dLr = Add(CliOptions.Float("--d-lr", "the discriminator's peak learning rate (two time-scales)",
                d.DiscriminatorLr, 1e-8f, 1f), "discriminator_lr"));
        if (family == "dalle")
        {
            c.Add(vqvae = Add(CliOptions.Text("--vqvae", "the VQ-VAE run or model whose tokens the transformer learns"),
                "vqvae"));
            c.Add(dropout = Add(CliOptions.Float("--dropout", "embedding and residual dropout", d.Dropout, 0f, 0.99f),
                "dropout"));
        }
        if (family is "prior" or "decoder")
            c.Add(clipModel = Add(CliOptions.Text("--clip-model",
                "the CLIP model whose image embeddings unCLIP learns (frozen; copied into the run)"), "clip"));
        if (family == "prior")
            c.Add(decoder = Add(CliOptions.Text("--decoder",
                "a decoder model ('train decoder' run's model/) that each exported model includes"), "decoder"));
        if (family == "diffusion")
        {
            c.Add(noiseShift = Add(CliOptions.Float("--noise-shift",
                "divide the schedule's SNR by K^2 (1 = plain cosine)",
                d.NoiseShift, 1f, 64f), "noise_shift"));
            c.Add(hflip = Add(CliOptions.Float("--hflip",
                "mirror an image with this probability, swapping left/right in "
                + "its caption", d.Hflip, 0f, 1f), "hflip"));
            c.Add(minSnr = Add(CliOptions.Float("--min-snr",
                "weigh each image's loss by min(SNR, G) (0 = off; 5 is the "
                + "paper's)", d.MinSnr, 0f, 1000f), "min_snr"));
            c.Add(grounding = Add(CliOptions.Float("--grounding",
                "weight of the token-level grounding loss (needs object "
                + "boxes in metadata.jsonl; 0 = off)", d.Grounding, 0f, 100f), "grounding"));
            c.Add(placement = Add(CliOptions.Float("--placement",
                "weight of the placement loss (preset xs-rel-place and "
                + "object boxes; 0 = off)", d.Placement, 0f, 100f), "placement"));
        }
        c.SetAction(p =>
        {
            string? Full(Option<string>? o) => o != null && p.GetValue(o) is { } v ? Path.GetFullPath(v) : null;
            var opt = new TrainOptions
            {
                Model = family, Data = Full(data) ?? "", Vqvae = Full(vqvae) ?? "", Clip = Full(clipModel) ?? "",
                Decoder = Full(decoder) ?? "", Preset = p.GetValue(preset)!,
                ImageSize = p.GetValue(size), Context = p.GetValue(context), Vocab = p.GetValue(vocab),
                Batch = p.GetValue(batch), Steps = p.GetValue(steps), Lr = p.GetValue(lr), MinLr = p.GetValue(minLr),
                DiscriminatorLr = dLr == null ? d.DiscriminatorLr : p.GetValue(dLr),
                Warmup = p.GetValue(warmup), WeightDecay = p.GetValue(wd), ClipNorm = p.GetValue(clip),
                EmaDecay = p.GetValue(ema), CaptionDropout = p.GetValue(captionDropout),
                Dropout = dropout == null ? d.Dropout : p.GetValue(dropout),
                NoiseShift = noiseShift == null ? d.NoiseShift : p.GetValue(noiseShift),
                Hflip = hflip == null ? d.Hflip : p.GetValue(hflip), MinSnr = minSnr == null ? d.MinSnr
                    : p.GetValue(minSnr),
                Grounding = grounding == null ? d.Grounding : p.GetValue(grounding),
                Placement = placement == null ? d.Placement : p.GetValue(placement),
                ValEvery = p.GetValue(valEvery), CkptEvery = p.GetValue(ckptEvery), Keep = p.GetValue(keep),
                Patience = p.GetValue(patience), ValImages = p.GetValue(valImages), Seed = p.GetValue(seed),
            };
            if (plan)
            {
                if (opt.Data == "")
                    throw new ArgumentException($"'plan train {family}' needs --data DIR: the calibration trains "
                        + "on it");
                var made = ConsoleProgress.Run("calibrating", _ =>
                    TrainingPlanner.Plan(opt, p.GetValue(maxMinutes), cancel: Program.Cancel));
                Console.WriteLine(made.ToString());
                return made.Fits ? 0 : 1;
            }
            var given = fields.Where(f => p.Given(f.Option)).Select(f => f.Field).ToList();
            return Run(family, opt, p.GetValue(output), p.GetValue(resume), given, p.GetValue(maxMinutes),
                p.GetValue(stopAt), p.GetValue(strict));
        });
        return c;
    }

    private static int Run(string family, TrainOptions opt, string? outDir, string? resume, List<string> given,
        float maxMinutes, int stopAt, bool strict)
    {
        if (resume != null && outDir != null)
            throw new ArgumentException("pass either --out RUN (new run) or --resume RUN (continue), not both");
        if (resume == null && outDir == null)
            throw new ArgumentException($"'train {family}' needs --out RUN (a new run folder) or --resume RUN");
        if (resume == null && opt.Data == "")
            throw new ArgumentException($"'train {family}' needs --data DIR (a folder with train/ and val/, e.g. from "
                + "'pictor data shapes --out DIR')");
        using var cts = new CancellationTokenSource();
        // Ctrl+C, and SIGTERM (docker stop, systemd, a batch scheduler's time limit), end the run after the current
        // step with a checkpoint, so '--resume' continues it exactly; a second Ctrl+C kills at once.
        ConsoleCancelEventHandler onCtrlC = (_, e) =>
        {
            if (cts.IsCancellationRequested) return;
            e.Cancel = true; Stop(cts, "Ctrl+C");
        };
        Console.CancelKeyPress += onCtrlC;
        using var onTerm = TryRegister(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            if (!cts.IsCancellationRequested) Stop(cts, "SIGTERM");
        });
        // under mpiexec: one rank of a data-parallel run; rank 0 alone prints and writes
        using var world = Cluster.FromEnvironment();
        string command = "pictor " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1)
            .Select(a => a.Contains(' ') || a.Length == 0 ? $"'{a}'" : a));
        try
        {
            TrainResult Train(TrainControl ctl) => resume != null
                ? family switch
                {
                    "vqvae" => VqTrainer.Resume(resume, ctl, opt, given),
                    "dalle" => DalleTrainer.Resume(resume, ctl, opt, given),
                    "clip" => ClipTrainer.Resume(resume, ctl, opt, given),
                    "vae" => VaeTrainer.Resume(resume, ctl, opt, given),
                    "gan" => GanTrainer.Resume(resume, ctl, opt, given),
                    "decoder" => DecoderTrainer.Resume(resume, ctl, opt, given),
                    "prior" => PriorTrainer.Resume(resume, ctl, opt, given),
                    _ => DiffusionTrainer.Resume(resume, ctl, opt, given),
                }
                : family switch
                {
                    "vqvae" => VqTrainer.Start(outDir!, opt, ctl),
                    "dalle" => DalleTrainer.Start(outDir!, opt, ctl),
                    "clip" => ClipTrainer.Start(outDir!, opt, ctl),
                    "vae" => VaeTrainer.Start(outDir!, opt, ctl),
                    "gan" => GanTrainer.Start(outDir!, opt, ctl),
                    "decoder" => DecoderTrainer.Start(outDir!, opt, ctl),
                    "prior" => PriorTrainer.Start(outDir!, opt, ctl),
                    _ => DiffusionTrainer.Start(outDir!, opt, ctl),
                };
            if (world.Rank != 0)
            {
                Train(new TrainControl(maxMinutes, stopAt, cts.Token, Strict: strict, Warn: _ => { }, World: world,
                    Command: command));
                return 0;
            }
            var r = ConsoleProgress.Run("step", bar => Train(new TrainControl(maxMinutes, stopAt, cts.Token, bar.Log,
                t => bar.Update(t.Step, t.TotalSteps, string.Create(CultureInfo.InvariantCulture,
                    $"loss {t.Loss:F4}  {t.ImagesPerSecond:F1} img/s  ETA {t.Eta:hh\\:mm\\:ss}")),
                Strict: strict, Warn: bar.Log, World: world, Command: command)));
            Console.WriteLine(r.BestStep < 0
                ? $"stopped at step {r.Step} ({r.StopReason}) before the first validation: no model exported yet; "
                    + $"continue with 'pictor train {family} --resume RUN'"
                : $"stopped at step {r.Step} ({r.StopReason}); {r.Summary}; model: {r.ModelDir}");
            return 0;
        }
        catch (Exception e) when (world.Size > 1 && e is not OperationCanceledException)
        {
            // the other ranks would wait for this one at the next collective: end them all, naming this rank
            Console.Error.WriteLine($"pictor: rank {world.Rank} of {world.Size} failed: {e.Message}");
            world.Abort(1);
            throw;
        }
        finally { Console.CancelKeyPress -= onCtrlC; }
    }

    private static void Stop(CancellationTokenSource cts, string what)
    {
        cts.Cancel();
        Console.Error.WriteLine($"\n{what}: stopping after this step (checkpoint follows); press Ctrl+C again to kill");
    }

    private static PosixSignalRegistration? TryRegister(PosixSignal signal, Action<PosixSignalContext> handler)
    {
        try { return PosixSignalRegistration.Create(signal, handler); }
        catch (PlatformNotSupportedException) { return null; }   // no such signal here (SIGTERM on some Windows hosts)
    }

    /// <summary>'pictor export RUN --step N|best|last --out DIR': a model directory from one checkpoint's EMA
    /// weights. 'pictor export MODEL_OR_RUN --format onnx --out DIR': the model's networks as ONNX graphs with
    /// pipeline.json (docs/onnx.md).</summary>
    public static Command Export()
    {
        var run = new Argument<string>("RUN")
        {
            Description = "a training run folder (or, with --format onnx, a model folder or run)",
        };
        var step = CliOptions.Text("--step", "which checkpoint: a step number, best or last", fallback: "last");
        var format = CliOptions.Choice("--format",
            "checkpoint: a model directory from one checkpoint; onnx: the model's networks as .onnx files",
            "checkpoint", "checkpoint", "onnx");
        var output = CliOptions.Text("--out", "folder to write", required: true);
        var c = new Command("export",
            "One checkpoint's EMA weights as a model directory (the run's model/ holds the best), or a model as ONNX")
        {
            run, step, format, output,
        };
        c.SetAction(p =>
        {
            if (p.GetValue(format) == "onnx")
            {
                if (p.Given(step))
                    throw new ArgumentException("--step picks a checkpoint for --format checkpoint; --format onnx "
                        + "exports the model folder (a run's model/): export the checkpoint first, then that folder");
                var o = OnnxExport.Export(p.GetValue(run)!, p.GetValue(output)!);
                foreach (var n in o.Networks)
                    Console.WriteLine($"wrote {Path.Combine(o.OutDir, n.File)}: {n.Bytes:N0} bytes, opset "
                        + $"{OnnxExport.Opset}, ops {string.Join(" ", n.Ops)}");
                Console.WriteLine($"wrote {o.PipelineJson}: how the networks fit together");
                return 0;
            }
            var r = CheckpointExport.Export(p.GetValue(run)!, p.GetValue(step)!, p.GetValue(output)!);
            Console.WriteLine($"wrote {r.OutDir}: {r.Tensors} tensors, the EMA weights of step {r.Step} "
                + $"({Path.GetFileName(r.Checkpoint)})");
            return 0;
        });
        return c;
    }
}
