using System.Diagnostics;
using System.Globalization;
using Pictor.Engine.IO;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Vq;

namespace Pictor.Pipelines.Inside;

/// <summary>What a training run will cost on this machine, before it starts (<see cref="TrainingPlanner.Plan"/>).
/// </summary>
/// <param name="Parameters">Trained values (parameters and buffers) of the model.</param>
/// <param name="ModelStateBytes">What the model's state takes for certain: weights, gradients, AdamW's two moments,
/// the EMA and the evaluation copy, 6 x 4 bytes a value.</param>
/// <param name="PeakBytes">The estimate of the run's peak resident memory: the calibration's measured peak, which ran
/// the same model, batch and data, one validation and one checkpoint included.</param>
/// <param name="SetupSeconds">Building the model, the tokenizer and the data, and the warm-up steps' extra time
/// (compiling).</param>
/// <param name="SecondsPerStep">A training step, measured over the calibration's steps after the warm-up.</param>
/// <param name="SecondsPerEvent">One validation with its checkpoint (and sample grid), measured.</param>
/// <param name="Events">Validations and checkpoints the run will do (union of --val-every and --ckpt-every).</param>
public sealed record TrainingPlan(TrainOptions Options, long Parameters, long ModelStateBytes, long PeakBytes,
    double SetupSeconds, double SecondsPerStep, double SecondsPerEvent, long Events, double MaxMinutes,
    int CalibrationSteps, double CalibrationSeconds)
{
    /// <summary>The whole run: setup + steps x step + events x event.</summary>
    public double TotalSeconds => SetupSeconds + Options.Steps * SecondsPerStep + Events * SecondsPerEvent;

    /// <summary>Whether the run fits --max-minutes (always, without a limit).</summary>
    public bool Fits => MaxMinutes <= 0 || TotalSeconds <= MaxMinutes * 60;

    /// <summary>The steps that fit --max-minutes (all of them without a limit).</summary>
    public long StepsThatFit
    {
        get
        {
            if (Fits) return Options.Steps;
            double eventEvery = Options.Steps / Math.Max(1.0, Events);   // steps between events
            double perStep = SecondsPerStep + SecondsPerEvent / eventEvery;
            return Math.Max(0, (long)Math.Floor((MaxMinutes * 60 - SetupSeconds) / perStep));
        }
    }

    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        static string Mib(long b) => (b / 1048576.0).ToString("N0", CultureInfo.InvariantCulture) + " MiB";
        static string Time(double s) => s < 120 ? s.ToString("F1", CultureInfo.InvariantCulture) + " s"
            : TimeSpan.FromSeconds(s).ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture);
        return string.Join('\n',
            string.Create(inv, $"plan: train {Options.Model} --preset {Options.Preset} --size {Options.ImageSize} "
                + $"--batch {Options.Batch} --steps {Options.Steps} ({Parameters:N0} parameters)"),
            $"memory   peak {Mib(PeakBytes)} resident (measured in the calibration); model state {Mib(ModelStateBytes)}"
                + " (weights, gradients, AdamW moments, EMA, eval copy)",
            string.Create(inv, $"time     {1000 * SecondsPerStep:F0} ms per step x {Options.Steps:N0} + {Events} "
                + $"validations/checkpoints x {SecondsPerEvent:F1} s + setup {SetupSeconds:F1} s = "
                + $"{Time(TotalSeconds)}"),
            MaxMinutes <= 0 ? "fits     no --max-minutes given"
                : Fits ? string.Create(inv, $"fits     yes: {Time(TotalSeconds)} of {MaxMinutes:G4} minutes")
                : string.Create(inv, $"fits     NO: {Time(TotalSeconds)} is over {MaxMinutes:G4} minutes; about "
                    + $"{StepsThatFit:N0} steps fit (pass --steps {StepsThatFit}, or a larger --max-minutes)"),
            string.Create(inv, $"(calibration: {CalibrationSteps} steps in {CalibrationSeconds:F1} s on "
                + $"{Environment.ProcessorCount} cores; another process on them slows the run and this estimate "
                + $"alike)"));
    }
}

/// <summary>
/// `pictor plan train FAMILY [the options of train]`: runs the trainer itself in a temporary run folder, warm-up steps
/// and then timed steps, ending with one validation and checkpoint; measures the time of a step (the median of the
/// timed ones), of a validation with its checkpoint, of setup (the rest), and the process's peak resident memory,
/// and scales them to the run asked for. The calibration trains the real model on the real data, so what it measures
/// includes everything the run will do; what it cannot see is a machine that gets busier or quieter later.
/// </summary>
public static class TrainingPlanner
{
    /// <summary>Measures <paramref name="opt"/> (its family is opt.Model) for <paramref name="steps"/> timed steps
    /// after <paramref name="warmup"/> untimed ones, and plans the run against <paramref name="maxMinutes"/> (0 = no
    /// limit).</summary>
    public static TrainingPlan Plan(TrainOptions opt, double maxMinutes = 0, int steps = 8, int warmup = 20,
        CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(opt);
        if (steps < 1 || warmup < 1)
            throw new ArgumentException($"calibration needs 1 or more warm-up and timed steps, got {warmup} and "
                + $"{steps}");
        if (opt.Data == "")
            throw new ArgumentException($"planning 'train {opt.Model}' needs --data DIR: the calibration trains on it");
        string root = Directory.CreateTempSubdirectory("pictor-plan").FullName, run = Path.Combine(root, "run");
        try
        {
            // warm-up steps first: .NET compiles a method again, optimised, after about 30 calls, in the background,
            // so the first steps run slower code than the rest of the run will
            int end = warmup + steps;
            var cal = opt with { ValEvery = end, CkptEvery = end, Patience = 0, Keep = 1,
                Steps = Math.Max(opt.Steps, end) };
            var clock = Stopwatch.StartNew();
            var r = Start(cal, run, new TrainControl(StopAtStep: end, Cancel: cancel));
            double wall = clock.Elapsed.TotalSeconds;
            // the median of the timed steps: one slowed by another process on the cores does not set the pace
            var timed = r.StepSeconds.Skip(warmup).Order().ToList();
            double per = timed[timed.Count / 2], perEvent = r.EventSeconds;
            // setup: the rest of the wall time, the warm-up's extra (compiling) time included
            double setup = Math.Max(0, wall - end * per - perEvent);
            using var proc = Process.GetCurrentProcess();
            proc.Refresh();
            long parameters = Parameters(run);
            return new TrainingPlan(opt, parameters, 6 * 4 * parameters, proc.PeakWorkingSet64, setup, per, perEvent,
                Events(opt), maxMinutes, end, wall);
        }
        finally { Directory.Delete(root, true); }
    }

    /// <summary>Validations and checkpoints in a run of opt.Steps: multiples of either interval, and the last
    /// step.</summary>
    public static long Events(TrainOptions opt)
    {
        ArgumentNullException.ThrowIfNull(opt);
        long v = opt.Steps / opt.ValEvery, c = opt.Steps / opt.CkptEvery, both = opt.Steps / Lcm(opt.ValEvery,
            opt.CkptEvery);
        bool lastIsOne = opt.Steps % opt.ValEvery == 0 || opt.Steps % opt.CkptEvery == 0;
        return v + c - both + (lastIsOne ? 0 : 1);
    }

    private static long Lcm(long a, long b)
    {
        long x = a, y = b;
        while (y != 0) (x, y) = (y, x % y);
        return a / x * b;
    }

    /// <summary>The trained values in the run's newest checkpoint ("model." tensors).</summary>
    private static long Parameters(string run)
    {
        var ckpt = Directory.GetFiles(Path.Combine(run, TrainingSession.CheckpointDir), "step-*.safetensors")
            .Order(StringComparer.Ordinal).Last();
        return SafeTensorsFile.Read(ckpt).Tensors.Where(t => t.Name.StartsWith("model.", StringComparison.Ordinal))
            .Sum(t => (long)t.Numel);
    }

    private static TrainResult Start(TrainOptions o, string run, TrainControl ctl) => o.Model switch
    {
        VqTrainer.Family => VqTrainer.Start(run, o, ctl),
        DalleTrainer.Family => DalleTrainer.Start(run, o, ctl),
        ClipTrainer.Family => ClipTrainer.Start(run, o, ctl),
        DiffusionTrainer.Family => DiffusionTrainer.Start(run, o, ctl),
        Vae.VaeTrainer.Family => Vae.VaeTrainer.Start(run, o, ctl),
        Gan.GanTrainer.Family => Gan.GanTrainer.Start(run, o, ctl),
        Unclip.DecoderTrainer.Family => Unclip.DecoderTrainer.Start(run, o, ctl),
        Unclip.PriorTrainer.Family => Unclip.PriorTrainer.Start(run, o, ctl),
        _ => throw new ArgumentException($"unknown model family '{o.Model}'; plan diffusion, vqvae, dalle, clip, "
            + "vae, gan, decoder or prior"),
    };
}
