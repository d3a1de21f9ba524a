using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging.Datasets;
using Pictor.Nn.Optim;
using Pictor.Pipelines.Distributed;

namespace Pictor.Pipelines.Training;

/// <summary>How a training call is driven from outside: a time limit, a step limit (tests), cancellation,
/// logging.</summary>
/// <param name="Strict">An image of the data that does not decode stops the run (the CLI's --strict) instead of
/// being skipped with a warning (<see cref="BadImagePolicy"/>).</param>
/// <param name="Warn">Where the warning line for each skipped image goes; null: standard error.</param>
/// <param name="World">The processes that train together (data-parallel, <see cref="Cluster.FromEnvironment"/> under
/// mpiexec); null: this process alone. Rank 0 alone logs, reports progress and writes files.</param>
/// <param name="Command">The command line that started this call (the CLI's), recorded in each exported model's
/// training.json.</param>
public sealed record TrainControl(double MaxMinutes = 0, long StopAtStep = 0, CancellationToken Cancel = default,
    Action<string>? Log = null, Action<TrainProgress>? Progress = null, bool Strict = false,
    Action<string>? Warn = null, ICollective? World = null, string? Command = null)
{
    /// <summary>The world, never null.</summary>
    public ICollective Group => World ?? SingleProcess.Instance;
    /// <summary>Whether this process writes the run's files and logs (rank 0, or the only process).</summary>
    public bool IsRoot => Group.Rank == 0;
    /// <summary>The log, on rank 0 only.</summary>
    public Action<string>? RootLog => IsRoot ? Log : null;
}

public sealed record TrainProgress(long Step, long TotalSteps, float Loss, double ImagesPerSecond, TimeSpan Eta);

/// <summary>One validation point of the loss curves: mean train loss since the previous point, and the val
/// loss; with an <see cref="Adversary"/>, also its mean loss since the previous point (else NaN).</summary>
public sealed record LossPoint(long Step, double Train, double Val, double Adversary = double.NaN);

/// <summary>A second network trained against the trained one, by its own AdamW, before each of its steps (a GAN's
/// discriminator): its parameters (and buffers, saved with the checkpoint under "adversary."), its peak learning rate
/// (it follows the same warm-up and cosine shape, scaled: two time-scales, Heusel et al. 2017) and both optimisers'
/// Adam betas.</summary>
public sealed record Adversary(IReadOnlyList<(string Name, Tensor Param)> Parameters, float Lr, float Beta1 = 0.9f,
    float Beta2 = 0.999f);

/// <param name="BestBy">What <paramref name="BestVal"/> is: "val loss", or the trainer's own criterion (CLIP: retrieval
/// error).</param>
public sealed record TrainResult(long Step, string StopReason, double BestVal, long BestStep, string ModelDir,
    string BestBy = "val loss")
{
    /// <summary>Seconds per training step of this call (forward, backward, allreduce and optimiser step; no
    /// validation or files); 0 when it took no step.</summary>
    public double SecondsPerStep { get; init; }
    /// <summary>The most steps whose times <see cref="StepSeconds"/> keeps.</summary>
    public const int MaxStepTimes = 1000;
    /// <summary>Each step's seconds in this call, in order, for its first <see cref="MaxStepTimes"/> steps.</summary>
    public IReadOnlyList<double> StepSeconds { get; init; } = [];
    /// <summary>Seconds this call spent validating and writing checkpoints (with their sample grids).</summary>
    public double EventSeconds { get; init; }
    /// <summary>The trainer keeps its latest validated weights rather than the best (a GAN): <see cref="BestStep"/>
    /// is the latest validation's step.</summary>
    public bool KeepsLatest { get; init; }
    /// <summary>One line for the end of a run: which weights model/ holds.</summary>
    public string Summary => KeepsLatest ? $"model/ holds the EMA weights of step {BestStep}, the latest validation"
        : $"best {BestBy} {BestVal:G5} at step {BestStep}";
}

/// <summary>One validation of the EMA weights.</summary>
/// <param name="Loss">The val loss (plotted, logged).</param>
/// <param name="Extra">Appended to the log line, e.g. ", PSNR 24.1 dB".</param>
/// <param name="Key">What picks the best weights when it is not the loss (lower is better); null: the loss.</param>
public readonly record struct Validation(double Loss, string Extra, double? Key = null);

/// <summary>
/// The loop every Pictor trainer shares (diffusion, VQ-VAE, ...), so each trainer holds only its model's maths:
/// batches in a seeded per-epoch order, AdamW with warm-up + cosine decay and global-norm clipping, EMA weights,
/// validation every N steps with early stopping, checkpoints every N steps (last K kept, plus best), and exact resume.
///
/// Data-parallel (<see cref="TrainControl.World"/> of N ranks): --batch is the global batch; each rank computes the
/// images of its <see cref="Shard"/> while drawing the random numbers of the whole batch, the gradients are summed over
/// the ranks (<see cref="GradientSync"/>), and every rank applies the same AdamW step, so the weights stay equal on all
/// ranks and equal to one process with the same global batch (to float rounding). Rank 0 alone validates, logs and
/// writes files; the decision to stop travels with each step's loss. Checkpoints hold no rank state, so a run may
/// resume with another number of ranks.
///
/// Run directory: train.json, checkpoints/step-NNNNNNN.safetensors, best.safetensors, model/ (the best EMA weights as a
/// model directory), samples/step-NNNNNNN.png, loss.png, log.csv, plus what the trainer adds. Every file is written
/// atomically. A checkpoint holds the weights ("model." + name), EMA, AdamW moments, step, RNG state and the position
/// in the epoch's shuffled order, so resuming gives bit-identical weights to an uninterrupted run.
/// </summary>
public abstract class TrainingSession
{
    public const string TrainFile = "train.json", CheckpointDir = "checkpoints", BestFile = "best.safetensors",
        ModelDir = "model";

    protected string RunDir { get; }
    protected TrainOptions Opt { get; }
    protected TrainControl Ctl { get; }
    /// <summary>The run's random stream (caption choice, noise, code restarts); saved in every checkpoint.</summary>
    protected Rng Rng { get; }
    protected long Step { get; private set; }
    /// <summary>The processes training together; one, outside mpiexec.</summary>
    protected ICollective World { get; }
    /// <summary>The images of each global batch this rank computes (all of them with one process).</summary>
    protected Shard Shard { get; }

    private readonly string format;
    private readonly List<(string Name, Tensor Param)> parameters, evalParameters;
    private readonly int trainCount;
    private readonly AdamW adam;
    private readonly GradientSync sync;
    private readonly Ema ema;
    private readonly WarmupCosine lr;
    private long epoch;
    private int pos;
    private int[] order;
    private double bestVal = double.PositiveInfinity;
    private long bestStep = -1;
    private int badVals;
    private readonly List<LossPoint> history = new();
    private double intervalLoss; private int intervalCount;
    private readonly Adversary? adversary;
    private readonly AdamW? adversaryAdam;
    private readonly GradientSync? adversarySync;
    private readonly List<Tensor> trainable, adversaryTrainable;
    private double intervalAdversary;
    private double trainedBefore;                  // seconds of the segments before this call (from the checkpoint)
    private readonly Stopwatch runClock = new();
    private double TrainedSeconds => trainedBefore + runClock.Elapsed.TotalSeconds;
    private string? dataHash;                      // of Opt.Data, at the first export
    private const string AdversaryPrefix = "adversary.", AdversaryOptim = "adversary_optim.";

    /// <param name="format">The checkpoint's "format" metadata (refuses another trainer's checkpoint).</param>
    /// <param name="parameters">The trained model's parameters (and buffers), dotted names.</param>
    /// <param name="evalParameters">A second copy of the model with the same names: EMA weights go there for
    /// validation, samples and export.</param>
    /// <param name="trainCount">Images in the train split (the epoch order is a permutation of them).</param>
    /// <param name="adversary">A network trained against this one (<see cref="AdversaryLoss"/>), or null.</param>
    protected TrainingSession(string runDir, TrainOptions opt, TrainControl ctl, string format,
        IEnumerable<(string Name, Tensor Param)> parameters, IEnumerable<(string Name, Tensor Param)> evalParameters,
            int trainCount, Adversary? adversary = null)
    {
        RunDir = runDir; Opt = opt; Ctl = ctl; this.format = format; this.trainCount = trainCount;
        this.parameters = parameters.ToList(); this.evalParameters = evalParameters.ToList();
        World = ctl.Group;
        Shard = Shard.Of(opt.Batch, World.Rank, World.Size);
        sync = new GradientSync(World, this.parameters.Select(p => p.Param));
        // No weight decay on biases, norms, embeddings and positions (1-D tensors and embedding tables).
        Func<string, Tensor, bool> noDecay = (n, p) => p.Rank == 1 || n.Contains("emb", StringComparison.Ordinal);
        float beta1 = adversary?.Beta1 ?? 0.9f, beta2 = adversary?.Beta2 ?? 0.999f;
        adam = new AdamW(this.parameters, new AdamWConfig(opt.Lr, beta1, beta2, WeightDecay: opt.WeightDecay),
            noDecay);
        trainable = this.parameters.Select(p => p.Param).Where(p => p.RequiresGrad).ToList();
        this.adversary = adversary;
        adversaryTrainable = adversary?.Parameters.Select(p => p.Param).Where(p => p.RequiresGrad).ToList() ?? [];
        if (adversary != null)
        {
            adversaryAdam = new AdamW(adversary.Parameters, new AdamWConfig(adversary.Lr, beta1, beta2,
                WeightDecay: opt.WeightDecay), noDecay);
            adversarySync = new GradientSync(World, adversary.Parameters.Select(p => p.Param));
        }
        ema = new Ema(this.parameters, opt.EmaDecay);
        lr = new WarmupCosine(opt.Lr, opt.MinLr, opt.Warmup, opt.Steps);
        Rng = new Rng(opt.Seed + 1);
        order = EpochOrder(opt.Seed, 0, trainCount);
    }

    // ------------------------------------------------------------------------------------------- what a trainer
    // supplies

    /// <summary>Builds one batch (with <see cref="NextIndex"/> and <see cref="Rng"/>), runs the forward pass and
    /// returns the scalar loss to backpropagate. Runs inside a tensor scope with gradients zeroed.
    /// Data-parallel, this rank's share: draw for the whole global batch (every <see cref="NextIndex"/> and random
    /// number, so the stream stays the same on all ranks), compute the images of <see cref="Shard"/> only, and return
    /// a loss whose value and gradient summed over the ranks are those of the whole batch (a mean over the shard times
    /// <see cref="Shard.Fraction"/>, or, for a mean over a varying count, the shard's sum over the global count from
    /// <see cref="SumOverRanks"/>).</summary>
    protected abstract Tensor Loss();

    /// <summary>With an <see cref="Adversary"/>: its loss for one step, taken before each <see cref="Loss"/> (a
    /// GAN's discriminator loss), under the same contract as <see cref="Loss"/> (this rank's share of the global
    /// batch); the trained network's parameters are frozen meanwhile, and the adversary's during <see cref="Loss"/>.
    /// </summary>
    protected virtual Tensor AdversaryLoss() =>
        throw new InvalidOperationException("this trainer has no adversary");

    /// <summary>After backward, before the gradients are summed over the ranks, clipped and stepped (a VQ codebook's
    /// moving-average update).</summary>
    protected virtual void AfterBackward() { }

    /// <summary>The element-wise sum over the ranks of <paramref name="values"/> (a collective: every rank calls it
    /// at the same point of <see cref="Loss"/>). With one process, the values.</summary>
    protected double[] SumOverRanks(params double[] values)
    {
        World.AllreduceSum(values);
        return values;
    }

    /// <summary>A random stream for randomness that only this rank's images use (dropout masks drawn inside a
    /// forward pass): made from the seed, the step and the rank, so it needs no checkpoint and leaves
    /// <see cref="Rng"/> in step on every rank. With one process it is <see cref="Rng"/> itself, so single-process
    /// runs draw as before.</summary>
    protected Rng LocalRng() => World.Size == 1 ? Rng
        : new Rng((Opt.Seed ^ 0xD1B54A32D192ED03UL) * 0x9E3779B97F4A7C15UL + (ulong)Step * 1_000_003UL
            + (ulong)World.Rank + 1);

    /// <summary>Validates the EMA weights (already copied into the eval model): the val loss, an extra text for the log
    /// line (e.g. ", PSNR 24.1 dB") and, when the trainer picks its best weights by another figure, that
    /// figure.</summary>
    protected abstract Validation Validate();

    /// <summary>The name of what picks the best weights (exported model, best.safetensors) and drives early stopping:
    /// <see cref="Validation.Key"/>, lower is better.</summary>
    protected virtual string BestBy => "val loss";

    /// <summary>Whether every validation's weights become model/ and best.safetensors (a GAN, whose val figures do not
    /// follow image quality): the latest is kept, and there is no early stopping.</summary>
    protected virtual bool KeepsLatest => false;

    /// <summary>Writes the eval model (EMA weights) as a model directory.</summary>
    protected abstract void ExportModel(string dir);

    /// <summary>Writes the checkpoint's picture (a sample or reconstruction grid) from the eval model.</summary>
    protected abstract void SaveSamples(string path);

    /// <summary>Train (true) or eval (false) mode of the trained model.</summary>
    protected abstract void SetTraining(bool on);

    // ------------------------------------------------------------------------------------------- the loop

    /// <summary>The next train image index in the epoch's shuffled order (a new epoch reshuffles).</summary>
    protected int NextIndex()
    {
        if (pos == order.Length) { epoch++; pos = 0; order = EpochOrder(Opt.Seed, epoch, trainCount); }
        return order[pos++];
    }

    /// <summary>Draws the global batch as every plain trainer does, the same draws on every rank: for each image, the
    /// next index in epoch order, one of its captions, and the empty caption with probability --caption-dropout.
    /// Returns this rank's images (its <see cref="Shard"/>, in order) with their captions.</summary>
    protected (int Index, string Caption)[] DrawBatch(ImageCaptionSet set)
    {
        var mine = new (int, string)[Shard.Count];
        for (int i = 0; i < Opt.Batch; i++)
        {
            int idx = NextIndex();
            var caps = set.Captions[idx];
            string cap = caps[Rng.NextInt(caps.Count)];
            string caption = Rng.NextFloat() < Opt.CaptionDropout ? "" : cap;
            if (Shard.Contains(i)) mine[i - Shard.Offset] = (idx, caption);
        }
        return mine;
    }

    /// <summary>A checkpoint's picture for a one-call model: one image for each of the first distinct val captions
    /// (fitted to the context; seeds 0.., the model's <paramref name="settings"/>), in a row, the prompts in the PNG.
    /// </summary>
    protected static void SavePromptRow(ITextToImage model, ImageCaptionSet val, int count, SamplingSettings settings,
        string path)
    {
        var prompts = val.Captions.Select(c => model.Tokenizer.Fit(c[0], model.TextContext)).Distinct()
            .Take(count).ToList();
        var imgs = model.Sample(prompts, settings);                                       // (P, 3, H, W)
        int s = model.ImageSize;
        Imaging.Image.Grid(Enumerable.Range(0, prompts.Count)
            .Select(i => Imaging.Image.FromTensor(Ops.Reshape(Ops.Narrow(imgs, 0, i, 1), 3, s, s))).ToList(),
            prompts.Count).Save(path, [new("prompts", string.Join("\n", prompts))]);
    }

    /// <summary>A seeded permutation of 0..count-1 for one epoch (Fisher-Yates).</summary>
    public static int[] EpochOrder(ulong seed, long epoch, int count)
    {
        var rng = new Rng(seed * 0x9E3779B97F4A7C15UL + (ulong)epoch + 1);
        var o = Enumerable.Range(0, count).ToArray();
        for (int i = o.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (o[i], o[j]) = (o[j], o[i]); }
        return o;
    }

    /// <summary>The start of every new run: validates the options, refuses a directory that already holds a run, and
    /// loads the train and val splits (logging their sizes).</summary>
    public static (ImageCaptionSet Train, ImageCaptionSet Val) BeginRun(string runDir,
        TrainOptions opt, TrainControl ctl)
    {
        opt.Validate();
        Shard.Of(opt.Batch, ctl.Group.Rank, ctl.Group.Size);   // refuses a batch that does not split over the ranks
        EnsureNewRun(runDir);
        ctl.Group.Barrier();   // every rank has looked before rank 0 writes
        var (train, val) = LoadSplits(opt, ctl);
        ctl.RootLog?.Invoke($"data: {train.Count} train, {val.Count} val images at {opt.ImageSize}x{opt.ImageSize} "
            + $"from {opt.Data}");
        return (train, val);
    }

    /// <summary>The run's train and val splits, for a new run and a resumed one alike: images that do not decode are
    /// skipped with a warning through <see cref="TrainControl.Warn"/>, or stop the run when
    /// <see cref="TrainControl.Strict"/>. Skipping is deterministic, so a resumed run sees the same images in the same
    /// order.</summary>
    public static (ImageCaptionSet Train, ImageCaptionSet Val) LoadSplits(TrainOptions opt, TrainControl ctl) =>
        ImageCaptionSet.LoadSplits(opt.Data, opt.ImageSize, new BadImagePolicy(ctl.Strict, ctl.Warn));

    /// <summary>Writes a new run's config.json, tokenizer/ (when the model has one) and train.json, each
    /// atomically (on rank 0 only).</summary>
    public static void WriteRunFiles(string runDir, string configJson, Text.BpeTokenizer? tokenizer, TrainOptions opt,
        TrainControl ctl)
    {
        if (!ctl.IsRoot) return;
        Directory.CreateDirectory(runDir);
        AtomicFile.WriteAllText(Path.Combine(runDir, "config.json"), configJson);
        tokenizer?.Save(Path.Combine(runDir, "tokenizer"));
        AtomicFile.WriteAllText(Path.Combine(runDir, TrainFile), opt.ToJson());
    }

    /// <summary>Refuses a directory that already holds a run (it would be overwritten).</summary>
    public static void EnsureNewRun(string runDir)
    {
        if (File.Exists(Path.Combine(runDir, TrainFile)))
            throw new ArgumentException($"'{runDir}' already holds a training run; continue it with --resume {runDir}, "
                + $"or choose another --out");
    }

    /// <summary>The stored options of the run in <paramref name="runDir"/>, which must be a <paramref name="model"/>
    /// run with a checkpoint; <paramref name="given"/>/<paramref name="givenFields"/>: options passed again, which must
    /// equal the stored ones. Returns the options and the newest checkpoint.</summary>
    public static (TrainOptions Options, string Checkpoint) OpenRun(string runDir, string model, TrainOptions? given,
        IEnumerable<string>? givenFields)
    {
        string trainPath = Path.Combine(runDir, TrainFile);
        if (!File.Exists(trainPath))
            throw new FileNotFoundException($"'{runDir}' has no {TrainFile}; it is not a training run (start "
                + $"one with --out)");
        var opt = TrainOptions.FromJson(File.ReadAllText(trainPath), trainPath);
        if (opt.Model != model)
            throw new ArgumentException($"'{runDir}' is a {opt.Model} run; continue it with 'pictor train {opt.Model} "
                + $"--resume {runDir}'");
        if (given != null && givenFields != null && TrainOptions.Differences(opt, given with { Model = model },
            givenFields) is { Count: > 0 } diff)
            throw new ArgumentException($"--resume {runDir}: options differ from the run's {TrainFile}: "
                + $"{string.Join("; ", diff)}. Drop them to continue the run, or start a new run with --out");
        var ckpt = LatestCheckpoint(runDir)
            ?? throw new FileNotFoundException($"'{runDir}' has no checkpoint in {CheckpointDir}/ yet; nothing to "
            + $"resume (start again with --out)");
        return (opt, ckpt);
    }

    public static string? LatestCheckpoint(string runDir)
    {
        var dir = Path.Combine(runDir, CheckpointDir);
        if (!Directory.Exists(dir)) return null;
        return Directory.GetFiles(dir, "step-*.safetensors").OrderBy(f => f, StringComparer.Ordinal).LastOrDefault();
    }

    /// <summary>Trains from the start, or from <paramref name="resumeFrom"/>, until --steps, early stopping, the time
    /// limit, the step limit or cancellation.</summary>
    public TrainResult Run(SafeTensorsFile? resumeFrom)
    {
        if (resumeFrom != null) Restore(resumeFrom);
        if (World.Size > 1)
        {   // the same start everywhere (initialisation is seeded alike; this makes it so whatever happened before)
            foreach (var (_, p) in parameters) World.Broadcast(p.Span);
            Ctl.RootLog?.Invoke($"data-parallel: {World.Describe}, {Shard.Count} of each batch of {Opt.Batch} "
                + $"images per rank, {Engine.Kernels.Parallelism.Threads} "
                + (Engine.Kernels.Parallelism.Threads == 1 ? "thread" : "threads") + " each; gradient allreduce "
                + $"{sync.BytesPerStep / 1048576.0:F1} MiB per step");
            // mpiexec reports a rank that dies by its process id: this line says which rank that was
            var who = Processes.Gather(World);
            Ctl.RootLog?.Invoke("ranks: " + string.Join(", ", who.Select((w, r) => $"{r} = pid {w.Pid} on {w.Host}")));
        }
        var clock = Stopwatch.StartNew();
        runClock.Restart();
        string reason = "reached --steps";
        long startStep = Step; var lastReport = clock.Elapsed;
        SetTraining(true);
        bool interrupted = false;
        var loop = new Stopwatch();   // forward, backward, allreduce and optimiser step: no validation or files
        var events = new Stopwatch();   // validation and checkpoints
        var stepSeconds = new List<double>(); double before = 0;   // the first MaxStepTimes steps' times
        while (Step < Opt.Steps)
        {
            if (Ctl.StopAtStep > 0 && Step >= Ctl.StopAtStep) { reason = $"stopped at step {Step} as asked"; break; }
            // Ctrl+C on any rank, or rank 0's clock, stops every rank, before the batch is drawn (so a resumed run
            // continues the same stream)
            bool cancel = Ctl.Cancel.IsCancellationRequested, late = World.Rank == 0 && Ctl.MaxMinutes > 0
                && clock.Elapsed.TotalMinutes >= Ctl.MaxMinutes;
            if (World.Size > 1)
            {
                var v = SumOverRanks(cancel ? 1 : 0, late ? 1 : 0);
                cancel = v[0] > 0; late = v[1] > 0;
            }
            if (cancel || late) { interrupted = cancel; break; }
            float loss;
            loop.Start();
            if (adversary != null)
            {
                SetFrozen(trainable, true);
                using (TensorScope.Begin())
                {
                    adversaryAdam!.ZeroGrad();
                    var la = AdversaryLoss();
                    intervalAdversary += StepLoss(la, "the adversary's loss");
                    la.Backward();
                    adversarySync!.Run();
                    GradClip.ClipByGlobalNorm(adversaryTrainable, Opt.ClipNorm);
                    adversaryAdam.LearningRate = lr.At(Step) * adversary.Lr / Opt.Lr;
                    adversaryAdam.StepOnce();
                }
                SetFrozen(trainable, false);
                SetFrozen(adversaryTrainable, true);
            }
            using (TensorScope.Begin())
            {
                adam.ZeroGrad();
                var l = Loss();
                loss = StepLoss(l, "loss");
                l.Backward();
                AfterBackward();
                sync.Run();
                GradClip.ClipByGlobalNorm(parameters.Select(p => p.Param), Opt.ClipNorm);
                adam.LearningRate = lr.At(Step);
                adam.StepOnce();
            }
            if (adversary != null) SetFrozen(adversaryTrainable, false);
            loop.Stop();
            if (stepSeconds.Count < TrainResult.MaxStepTimes) stepSeconds.Add(loop.Elapsed.TotalSeconds - before);
            before = loop.Elapsed.TotalSeconds;
            Step++;
            ema.Update(ema.WarmupDecay(Step));
            intervalLoss += loss; intervalCount++;
            if (Ctl.IsRoot && Ctl.Progress != null && ((clock.Elapsed - lastReport).TotalSeconds >= 0.5
                || Step == Opt.Steps))
            {
                lastReport = clock.Elapsed;
                double ips = (Step - startStep) * Opt.Batch / clock.Elapsed.TotalSeconds;
                Ctl.Progress(new TrainProgress(Step, Opt.Steps, (float)(intervalLoss / intervalCount), ips,
                    TimeSpan.FromSeconds((Opt.Steps - Step) * Opt.Batch / Math.Max(ips, 1e-9))));
            }
            bool stop = false;
            events.Start();
            if (Step % Opt.ValEvery == 0 || Step == Opt.Steps) stop = OnRoot(ValidateAndKeepBest);
            if (Step % Opt.CkptEvery == 0 || Step == Opt.Steps || stop) OnRoot(SaveCheckpoint);
            events.Stop();
            if (stop) { reason = $"early stopping: no val improvement in {Opt.Patience} validations"; break; }
        }
        if (interrupted) reason = "interrupted";
        else if (reason == "reached --steps" && Step < Opt.Steps) reason = $"time limit of {Ctl.MaxMinutes} minutes";
        // interrupted mid-interval
        if (Step % Opt.CkptEvery != 0 && Step != Opt.Steps && Step > startStep) OnRoot(SaveCheckpoint);
        World.Barrier();   // no rank leaves before rank 0 has written the last checkpoint
        if (Step > startStep)
        {   // bench/distributed.sh reads this line
            var inv = CultureInfo.InvariantCulture; long n = Step - startStep;
            Ctl.RootLog?.Invoke($"timing: {n} steps in {clock.Elapsed.TotalSeconds.ToString("F1", inv)} s, "
                + $"{(loop.Elapsed.TotalMilliseconds / n).ToString("F1", inv)} ms per training step" + (World.Size == 1
                ? "" : $", of which gradient allreduce {(sync.Elapsed.TotalMilliseconds / n).ToString("F1", inv)} ms ("
                + $"{(100 * sync.Elapsed.TotalSeconds / loop.Elapsed.TotalSeconds).ToString("F1", inv)} %)"));
        }
        var result = new TrainResult(Step, reason, bestVal, bestStep, Path.Combine(RunDir, ModelDir), BestBy)
        {
            KeepsLatest = KeepsLatest,
            SecondsPerStep = Step > startStep ? loop.Elapsed.TotalSeconds / (Step - startStep) : 0,
            StepSeconds = stepSeconds, EventSeconds = events.Elapsed.TotalSeconds,
        };
        Ctl.RootLog?.Invoke($"stopped at step {Step}: {reason}; " + (bestStep < 0
            ? $"no validation yet (the first is at step {Opt.ValEvery}), so no model/ was exported; --resume "
                + $"continues the run"
            : result.Summary));
        return result;
    }

    /// <summary>The global batch's value of a step's loss, on every rank; a non-finite one stops the run.</summary>
    private float StepLoss(Tensor l, string what)
    {
        float v = l.Item();
        if (World.Size > 1) v = (float)SumOverRanks(v)[0];
        if (!float.IsFinite(v))
            throw new InvalidOperationException($"training diverged at step {Step + 1} ({what} {v}); resume from the "
                + $"last checkpoint with a lower --lr");
        return v;
    }

    private static void SetFrozen(List<Tensor> ps, bool frozen)
    {
        foreach (var p in ps) p.RequiresGrad = !frozen;
    }

    /// <summary>Runs <paramref name="work"/> on rank 0 only (validation, files): the other ranks wait at the next
    /// collective.</summary>
    private void OnRoot(Action work) { if (World.Rank == 0) work(); }

    /// <summary>Rank 0's answer of <paramref name="decide"/>, on every rank (the others do not run it).</summary>
    private bool OnRoot(Func<bool> decide)
    {
        if (World.Size == 1) return decide();
        var flag = new[] { World.Rank == 0 && decide() ? 1f : 0f };
        World.Broadcast(flag);
        return flag[0] > 0;
    }

    /// <summary>Validates the EMA weights; returns true to stop early.</summary>
    private bool ValidateAndKeepBest()
    {
        CopyEma();
        var (v, extra, selectBy) = Validate();
        history.Add(new LossPoint(Step, intervalLoss / Math.Max(1, intervalCount), v,
            adversary == null ? double.NaN : intervalAdversary / Math.Max(1, intervalCount)));
        intervalLoss = 0; intervalCount = 0; intervalAdversary = 0;
        double key = KeepsLatest ? -Step : selectBy ?? v;
        Ctl.RootLog?.Invoke($"step {Step}: train loss {history[^1].Train:G4}"
            + (adversary == null ? "" : $", adversary loss {history[^1].Adversary:G4}") + $", val loss {v:G4}{extra}"
            + (key < bestVal && !KeepsLatest ? " (best)" : ""));
        if (key < bestVal)
        {
            bestVal = key; bestStep = Step; badVals = 0;
            WriteCheckpoint(Path.Combine(RunDir, BestFile));
            ExportModel(Path.Combine(RunDir, ModelDir));
            dataHash ??= TrainingRecord.DataHash(Opt.Data);
            new TrainingRecord(TrainedSeconds / 60, $"pictor train {Opt.Model} --preset {Opt.Preset}: step {Step} of "
                + $"batch {Opt.Batch} on {World.Size} {(World.Size == 1 ? "process" : "ranks")}"
                + (Opt.Model == "prior" ? " (this run only)" : ""))
            {
                Command = Ctl.Command, Step = Step, Data = Opt.Data, DataSha256 = dataHash,
                Written = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            }.Write(Path.Combine(RunDir, ModelDir));
            return false;
        }
        badVals++;
        return Opt.Patience > 0 && badVals >= Opt.Patience;
    }

    private void CopyEma()
    {
        var shadow = ema.Shadow;
        foreach (var (name, p) in evalParameters) shadow[name].CopyTo(p.Span);
    }

    private void SaveCheckpoint()
    {
        var dir = Path.Combine(RunDir, CheckpointDir);
        Directory.CreateDirectory(dir);
        WriteCheckpoint(Path.Combine(dir, $"step-{Step:D7}.safetensors"));
        foreach (var old in Directory.GetFiles(dir, "step-*.safetensors").OrderBy(f => f, StringComparer.Ordinal)
            .SkipLast(Opt.Keep)) File.Delete(old);
        CopyEma();
        Directory.CreateDirectory(Path.Combine(RunDir, "samples"));
        SaveSamples(Path.Combine(RunDir, "samples", $"step-{Step:D7}.png"));
        SetTraining(true);
        if (history.Count > 0) LossPlot.Render(history).Save(Path.Combine(RunDir, "loss.png"));
        AtomicFile.WriteAllText(Path.Combine(RunDir, "log.csv"), adversary == null
            ? "step,train_loss,val_loss\n" + string.Concat(history.Select(h =>
                FormattableString.Invariant($"{h.Step},{h.Train:G6},{h.Val:G6}\n")))
            : "step,train_loss,adversary_loss,val_loss\n" + string.Concat(history.Select(h =>
                FormattableString.Invariant($"{h.Step},{h.Train:G6},{h.Adversary:G6},{h.Val:G6}\n"))));
    }

    private void WriteCheckpoint(string path)
    {
        var w = new SafeTensorsWriter();
        foreach (var (n, p) in parameters) w.Add("model." + n, p);
        ema.SaveState(w);
        var inv = CultureInfo.InvariantCulture;
        var meta = new Dictionary<string, string>
        {
            ["format"] = format, ["step"] = Step.ToString(inv),
            ["epoch"] = epoch.ToString(inv), ["pos"] = pos.ToString(inv),
            ["rng"] = string.Join(",", Rng.GetState()), ["best_val"] = bestVal.ToString("R", inv),
            ["best_step"] = bestStep.ToString(inv), ["bad_vals"] = badVals.ToString(inv),
            ["trained_seconds"] = TrainedSeconds.ToString("R", inv),
            ["interval_loss"] = intervalLoss.ToString("R", inv), ["interval_count"] = intervalCount.ToString(inv),
            ["history"] = JsonSerializer.Serialize(history.Select(h => adversary == null
                ? new[] { h.Step, h.Train, h.Val } : new[] { h.Step, h.Train, h.Val, h.Adversary })),
        };
        adam.SaveState(w, meta);
        if (adversary != null)
        {
            foreach (var (n, p) in adversary.Parameters) w.Add(AdversaryPrefix + n, p);
            meta["interval_adversary"] = intervalAdversary.ToString("R", inv);
            adversaryAdam!.SaveState(w, meta, AdversaryOptim);
        }
        w.Write(path, meta);
    }

    private void Restore(SafeTensorsFile f)
    {
        var m = f.Metadata;
        string Get(string k)
            => m.TryGetValue(k, out var v) ? v
            : throw new FormatException($"checkpoint '{f.Source}' lacks '{k}' in its metadata; it is not a Pictor "
            + $"checkpoint or is damaged (use an older one from {CheckpointDir}/)");
        if (Get("format") != format)
            throw new FormatException($"'{f.Source}' is a '{m["format"]}' file, not a {format}; resume it with the "
                + $"trainer that made it");
        void Load(IEnumerable<(string Name, Tensor Param)> ps, string prefix)
        {
            foreach (var (n, p) in ps)
            {
                if (!f.Contains(prefix + n))
                    throw new FormatException($"'{f.Source}' has no tensor '{prefix}{n}'; it was saved from a "
                        + $"different model (compare config.json) or is truncated");
                var v = f.ReadFloat32(prefix + n);
                if (v.Length != p.Numel)
                    throw new FormatException($"'{f.Source}': tensor '{prefix}{n}' has {v.Length} values, the model "
                        + $"expects {p.Numel}; the config changed since the checkpoint");
                v.CopyTo(p.Span);
            }
        }
        Load(parameters, "model.");
        ema.LoadState(f);
        adam.LoadState(f);
        if (adversary != null)
        {
            Load(adversary.Parameters, AdversaryPrefix);
            adversaryAdam!.LoadState(f, AdversaryOptim);
            intervalAdversary = double.Parse(Get("interval_adversary"), CultureInfo.InvariantCulture);
        }
        var inv = CultureInfo.InvariantCulture;
        Step = long.Parse(Get("step"), inv); epoch = long.Parse(Get("epoch"), inv); pos = int.Parse(Get("pos"), inv);
        Rng.SetState(Get("rng").Split(',').Select(s => ulong.Parse(s, inv)).ToArray());
        bestVal = double.Parse(Get("best_val"), inv); bestStep = long.Parse(Get("best_step"), inv);
        badVals = int.Parse(Get("bad_vals"), inv);
        trainedBefore = m.TryGetValue("trained_seconds", out var ts) ? double.Parse(ts, inv) : 0;   // older: none
        intervalLoss = double.Parse(Get("interval_loss"), inv); intervalCount = int.Parse(Get("interval_count"), inv);
        foreach (var h in JsonSerializer.Deserialize<double[][]>(Get("history"))!)
            history.Add(new LossPoint((long)h[0], h[1], h[2], h.Length > 3 ? h[3] : double.NaN));
        order = EpochOrder(Opt.Seed, epoch, trainCount);
        if (pos > order.Length)
            throw new FormatException($"checkpoint '{f.Source}' is at position {pos} of an epoch of {order.Length} "
                + $"images; the dataset changed since the run started");
    }
}
