using System.Globalization;
using System.Runtime.InteropServices;
using Pictor.Pipelines.Training;

namespace Pictor.Cli;

/// <summary>'pictor train diffusion|vqvae|dalle|clip': parse, run the trainer with a progress line, print where things went;
/// 'pictor export': another step of a run as a model directory.</summary>
internal static class TrainVerbs
{
    // CLI option -> train.json field, with how to read it.
    private static readonly (string Option, string Field)[] Fields =
    [
        ("data", "data"), ("preset", "preset"), ("size", "image_size"), ("context", "context"), ("vocab", "vocab"), ("batch", "batch"),
        ("steps", "steps"), ("lr", "lr"), ("min-lr", "min_lr"), ("warmup", "warmup"), ("weight-decay", "weight_decay"), ("clip", "clip_norm"),
        ("ema", "ema_decay"), ("caption-dropout", "caption_dropout"), ("dropout", "dropout"), ("val-every", "val_every"), ("ckpt-every", "ckpt_every"),
        ("keep", "keep"), ("patience", "patience"), ("val-images", "val_images"), ("seed", "seed"), ("vqvae", "vqvae"), ("noise-shift", "noise_shift"), ("hflip", "hflip"),
        ("min-snr", "min_snr"), ("grounding", "grounding"), ("placement", "placement"),
    ];

    public const string Usage = "train diffusion|vqvae|dalle|clip --data DIR --out RUN [--preset NAME] [--steps N] [--batch B] [--lr X] [--max-minutes M] ... | train diffusion|vqvae|dalle|clip --resume RUN [--max-minutes M]"
        + " (presets: diffusion tiny|xs|xs-rel-place|s, default xs; vqvae tiny|s|dvae-tiny|dvae-s (Gumbel-softmax discrete VAE), default s; dalle tiny|xs|s, default xs, and --vqvae RUN names the image tokenizer, --dropout P adds embedding and residual dropout; diffusion --noise-shift K divides the schedule's SNR by K^2, --hflip P mirrors images with P and swaps left/right in their captions, --min-snr G weighs each step's loss by min(SNR, G) in x0 terms (5 is the paper's choice), --grounding W adds W times the token-level grounding loss (each caption word that names an object attends from that object's box; needs 'objects' with a 'bbox' in metadata.jsonl, as 'pictor data shapes' writes), --placement W (preset xs-rel-place) adds W times the placement loss (each word that names one object is placed at its box's centre by the UNet's token places; boxes as for --grounding); clip tiny|xs|s, default xs)";

    public static int Train(string[] args)
    {
        string family = args.Length > 0 ? args[0] : "";
        if (family is not ("diffusion" or "vqvae" or "dalle" or "clip")) throw new ArgumentException($"use '{Usage}'");
        var a = new Args("train " + family, args.Skip(1), Fields.Select(f => f.Option).Concat(["out", "resume", "max-minutes", "stop-at-step"]).ToArray());
        a.NoPositionals();
        // Per-family defaults: the VQ-VAE keeps no weight EMA (its codebook is already a moving average).
        var d = family switch
        {
            "vqvae" => new TrainOptions { Model = family, Preset = "s", EmaDecay = 0f },
            "dalle" => new TrainOptions { Model = family, Preset = "xs" },
            "clip" => new TrainOptions { Model = family, Preset = "xs" },
            _ => new TrainOptions(),
        };
        var opt = new TrainOptions
        {
            Model = family,
            Data = a.Optional("data") is { } data ? Path.GetFullPath(data) : "",
            Vqvae = a.Optional("vqvae") is { } vq ? Path.GetFullPath(vq) : "",
            Preset = a.Optional("preset") ?? d.Preset,
            ImageSize = a.Int("size", d.ImageSize, 8, 256), Context = a.Int("context", d.Context, 4, 256), Vocab = a.Int("vocab", d.Vocab, 260, 65536),
            Batch = a.Int("batch", d.Batch, 1, 4096), Steps = a.Int("steps", d.Steps, 1, 100_000_000),
            Lr = a.Float("lr", d.Lr, 1e-8f, 1f), MinLr = a.Float("min-lr", d.MinLr, 0f, 1f), Warmup = a.Int("warmup", d.Warmup, 0, 100_000_000),
            WeightDecay = a.Float("weight-decay", d.WeightDecay, 0f, 1f), ClipNorm = a.Float("clip", d.ClipNorm, 1e-6f, 1e6f),
            EmaDecay = a.Float("ema", d.EmaDecay, 0f, 0.999999f), CaptionDropout = a.Float("caption-dropout", d.CaptionDropout, 0f, 0.99f),
            Dropout = a.Float("dropout", d.Dropout, 0f, 0.99f), NoiseShift = a.Float("noise-shift", d.NoiseShift, 1f, 64f),
            Hflip = a.Float("hflip", d.Hflip, 0f, 1f), MinSnr = a.Float("min-snr", d.MinSnr, 0f, 1000f),
            Grounding = a.Float("grounding", d.Grounding, 0f, 100f), Placement = a.Float("placement", d.Placement, 0f, 100f),
            ValEvery = a.Int("val-every", d.ValEvery, 1, int.MaxValue), CkptEvery = a.Int("ckpt-every", d.CkptEvery, 1, int.MaxValue),
            Keep = a.Int("keep", d.Keep, 1, 1000), Patience = a.Int("patience", d.Patience, 0, 1_000_000),
            ValImages = a.Int("val-images", d.ValImages, 1, 1_000_000), Seed = a.ULong("seed", d.Seed),
        };
        using var cts = new CancellationTokenSource();
        // Ctrl+C, and SIGTERM (docker stop, systemd, a batch scheduler's time limit), end the run after the current step
        // with a checkpoint, so '--resume' continues it exactly; a second Ctrl+C kills at once.
        ConsoleCancelEventHandler onCtrlC = (_, e) => { if (cts.IsCancellationRequested) return; e.Cancel = true; Stop(cts, "Ctrl+C"); };
        Console.CancelKeyPress += onCtrlC;
        using var onTerm = TryRegister(PosixSignal.SIGTERM, c => { c.Cancel = true; if (!cts.IsCancellationRequested) Stop(cts, "SIGTERM"); });
        try { return Train(family, a, opt, cts.Token); }
        finally { Console.CancelKeyPress -= onCtrlC; }
    }

    private static void Stop(CancellationTokenSource cts, string what)
    {
        cts.Cancel();
        Console.Error.WriteLine($"\n{what}: stopping after this step (checkpoint follows); press Ctrl+C again to kill");
    }

    private static int Train(string family, Args a, TrainOptions opt, CancellationToken cancel)
    {
        bool tty = !Console.IsErrorRedirected;
        long lastLine = -1;
        var ctl = new TrainControl(a.Float("max-minutes", 0, 0, 1e6f), a.Int("stop-at-step", 0, 0, int.MaxValue), cancel,
            m => { if (tty) Console.Error.Write("\r" + new string(' ', 100) + "\r"); Console.Error.WriteLine(m); },
            p =>
            {
                string line = string.Create(CultureInfo.InvariantCulture,
                    $"step {p.Step}/{p.TotalSteps} [{Bar(p.Step, p.TotalSteps)}] loss {p.Loss:F4}  {p.ImagesPerSecond:F1} img/s  ETA {p.Eta:hh\\:mm\\:ss}");
                if (tty) Console.Error.Write("\r" + line);
                else if (p.Step / 100 != lastLine) { lastLine = p.Step / 100; Console.Error.WriteLine(line); }
            });
        TrainResult r;
        if (a.Optional("resume") is { } run)
        {
            if (a.Optional("out") != null) throw new ArgumentException("pass either --out RUN (new run) or --resume RUN (continue), not both");
            var given = Fields.Where(f => a.Given.Contains(f.Option)).Select(f => f.Field).ToList();
            r = family switch
            {
                "vqvae" => VqTrainer.Resume(run, ctl, opt, given),
                "dalle" => DalleTrainer.Resume(run, ctl, opt, given),
                "clip" => ClipTrainer.Resume(run, ctl, opt, given),
                _ => DiffusionTrainer.Resume(run, ctl, opt, given),
            };
        }
        else
        {
            string outDir = a.Required("out");
            if (opt.Data == "") throw new ArgumentException($"'train {family}' needs --data DIR (a folder with train/ and val/, e.g. from 'pictor data shapes --out DIR')");
            r = family switch
            {
                "vqvae" => VqTrainer.Start(outDir, opt, ctl),
                "dalle" => DalleTrainer.Start(outDir, opt, ctl),
                "clip" => ClipTrainer.Start(outDir, opt, ctl),
                _ => DiffusionTrainer.Start(outDir, opt, ctl),
            };
        }
        Console.WriteLine(r.BestStep < 0
            ? $"stopped at step {r.Step} ({r.StopReason}) before the first validation: no model exported yet; continue with 'pictor train {family} --resume RUN'"
            : $"stopped at step {r.Step} ({r.StopReason}); best {r.BestBy} {r.BestVal:G5} at step {r.BestStep}; model: {r.ModelDir}");
        return 0;
    }

    /// <summary>'pictor export RUN --step N|best|last --out DIR': a model directory from one checkpoint's EMA weights.</summary>
    public static int Export(string[] args)
    {
        var a = new Args("export", args, ["step", "out"]);
        if (a.Positionals.Count != 1) throw new ArgumentException("use 'export RUN --step N|best|last --out DIR' (RUN: a training run directory)");
        var r = CheckpointExport.Export(a.Positionals[0], a.Optional("step") ?? "last", a.Required("out"));
        Console.WriteLine($"wrote {r.OutDir}: {r.Tensors} tensors, the EMA weights of step {r.Step} ({Path.GetFileName(r.Checkpoint)})");
        return 0;
    }

    private static PosixSignalRegistration? TryRegister(PosixSignal signal, Action<PosixSignalContext> handler)
    {
        try { return PosixSignalRegistration.Create(signal, handler); }
        catch (PlatformNotSupportedException) { return null; }   // no such signal here (SIGTERM on some Windows hosts)
    }

    private static string Bar(long done, long total)
    {
        int n = (int)(20 * done / Math.Max(1, total));
        return new string('#', n) + new string('.', 20 - n);
    }
}
