using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Models.Diffusion;
using Pictor.Nn.Optim;
using Pictor.Pipelines.Diffusion;
using Pictor.Text;

namespace Pictor.Pipelines.Training;

/// <summary>How a training call is driven from outside: a time limit, a step limit (tests), cancellation, logging.</summary>
public sealed record TrainControl(double MaxMinutes = 0, long StopAtStep = 0, CancellationToken Cancel = default,
    Action<string>? Log = null, Action<TrainProgress>? Progress = null);

public sealed record TrainProgress(long Step, long TotalSteps, float Loss, double ImagesPerSecond, TimeSpan Eta);

/// <summary>One validation point of the loss curves: mean train loss since the previous point, and the val loss.</summary>
public sealed record LossPoint(long Step, double Train, double Val);

public sealed record TrainResult(long Step, string StopReason, double BestVal, long BestStep, string ModelDir);

/// <summary>
/// DDPM training of a text-to-image pipeline (Ho et al. 2020, algorithm 1, with the cosine schedule and eps or v target):
/// per image a uniform step t, x_t = alpha_t x0 + sigma_t eps, loss = mean (model(x_t, t, text) - target)^2. Captions are
/// replaced by the empty caption with probability caption_dropout so the same model gives the unconditional prediction
/// for classifier-free guidance. AdamW with warm-up + cosine decay, global-norm clipping, EMA weights for validation,
/// samples and the exported model.
///
/// Run directory: config.json, train.json, tokenizer/ (trained on the train captions), checkpoints/step-NNNNNNN.safetensors
/// (last K), best.safetensors, model/ (the best EMA weights as a model directory for generate), samples/step-NNNNNNN.png,
/// loss.png, log.csv. Every file is written atomically. Resume continues bit-exactly from the newest checkpoint: weights,
/// EMA, AdamW moments, step, RNG state and the position in the epoch's shuffled order are all restored.
/// </summary>
public static class DiffusionTrainer
{
    public const string TrainFile = "train.json", CheckpointDir = "checkpoints", BestFile = "best.safetensors", ModelDir = "model";
    private const int SamplePrompts = 8;

    /// <summary>Starts a new run in <paramref name="runDir"/> (which must not hold one yet) and trains.</summary>
    public static TrainResult Start(string runDir, TrainOptions opt, TrainControl ctl)
    {
        opt.Validate();
        if (File.Exists(Path.Combine(runDir, TrainFile)))
            throw new ArgumentException($"'{runDir}' already holds a training run; continue it with --resume {runDir}, or choose another --out");
        var (train, val) = ImageCaptionSet.LoadSplits(opt.Data, opt.ImageSize);
        ctl.Log?.Invoke($"data: {train.Count} train, {val.Count} val images at {opt.ImageSize}x{opt.ImageSize} from {opt.Data}");
        var tok = BpeTokenizer.Train(train.Captions.SelectMany(c => c), opt.Vocab);
        var config = DiffusionConfig.FromPreset(opt.Preset, tok.VocabSize, opt.ImageSize, opt.Context);
        var pipe = new DiffusionPipeline(config, tok, new Rng(opt.Seed));
        Directory.CreateDirectory(runDir);
        AtomicFile.WriteAllText(Path.Combine(runDir, DiffusionPipeline.ConfigFile), config.ToJson());
        tok.Save(Path.Combine(runDir, DiffusionPipeline.TokenizerDir));
        AtomicFile.WriteAllText(Path.Combine(runDir, TrainFile), opt.ToJson());
        ctl.Log?.Invoke($"model: preset {opt.Preset}, {pipe.NamedParameters().Sum(p => (long)p.Param.Numel):N0} parameters, {tok.VocabSize}-token BPE, context {opt.Context}");
        return new Session(runDir, opt, pipe, train, val, ctl, null).Run();
    }

    /// <summary>Continues the run in <paramref name="runDir"/> from its newest checkpoint. <paramref name="given"/> and
    /// <paramref name="givenFields"/>: options the user passed again, which must equal the stored ones.</summary>
    public static TrainResult Resume(string runDir, TrainControl ctl, TrainOptions? given = null, IEnumerable<string>? givenFields = null)
    {
        string trainPath = Path.Combine(runDir, TrainFile);
        if (!File.Exists(trainPath)) throw new FileNotFoundException($"'{runDir}' has no {TrainFile}; it is not a training run (start one with --out)");
        var opt = TrainOptions.FromJson(File.ReadAllText(trainPath), trainPath);
        if (given != null && givenFields != null && TrainOptions.Differences(opt, given, givenFields) is { Count: > 0 } diff)
            throw new ArgumentException($"--resume {runDir}: options differ from the run's {TrainFile}: {string.Join("; ", diff)}. Drop them to continue the run, or start a new run with --out");
        string cfgPath = Path.Combine(runDir, DiffusionPipeline.ConfigFile);
        var config = DiffusionConfig.FromJson(File.ReadAllText(cfgPath), cfgPath);
        var expected = DiffusionConfig.FromPreset(opt.Preset, config.Text.Vocab, opt.ImageSize, opt.Context);
        if (DiffusionConfig.FirstDifference(expected, config) is { } d)
            throw new FormatException($"{cfgPath} does not match preset '{opt.Preset}' of {TrainFile} ({d}); the run was edited or made by another Pictor version");
        var tok = BpeTokenizer.Load(Path.Combine(runDir, DiffusionPipeline.TokenizerDir));
        var ckpt = LatestCheckpoint(runDir) ?? throw new FileNotFoundException($"'{runDir}' has no checkpoint in {CheckpointDir}/ yet; nothing to resume (start again with --out)");
        var (train, val) = ImageCaptionSet.LoadSplits(opt.Data, opt.ImageSize);
        var pipe = new DiffusionPipeline(config, tok, new Rng(opt.Seed));
        ctl.Log?.Invoke($"resuming {runDir} from {Path.GetFileName(ckpt)}");
        return new Session(runDir, opt, pipe, train, val, ctl, SafeTensorsFile.Read(ckpt)).Run();
    }

    public static string? LatestCheckpoint(string runDir)
    {
        var dir = Path.Combine(runDir, CheckpointDir);
        if (!Directory.Exists(dir)) return null;
        return Directory.GetFiles(dir, "step-*.safetensors").OrderBy(f => f, StringComparer.Ordinal).LastOrDefault();
    }

    /// <summary>The mutable state of one training process.</summary>
    private sealed class Session
    {
        private readonly string runDir;
        private readonly TrainOptions opt;
        private readonly TrainControl ctl;
        private readonly DiffusionPipeline pipe, emaPipe;
        private readonly ImageCaptionSet train, val;
        private readonly AdamW adam;
        private readonly Ema ema;
        private readonly WarmupCosine lr;
        private readonly Rng rng;
        private long step, epoch;
        private int pos;
        private int[] order;
        private double bestVal = double.PositiveInfinity;
        private long bestStep = -1;
        private int badVals;
        private readonly List<LossPoint> history = new();
        private double intervalLoss; private int intervalCount;

        public Session(string runDir, TrainOptions opt, DiffusionPipeline pipe, ImageCaptionSet train, ImageCaptionSet val, TrainControl ctl, SafeTensorsFile? ckpt)
        {
            this.runDir = runDir; this.opt = opt; this.pipe = pipe; this.train = train; this.val = val; this.ctl = ctl;
            emaPipe = new DiffusionPipeline(pipe.Config, pipe.Tokenizer, new Rng(0));
            // No weight decay on biases, norms, embeddings and positions (1-D tensors and embedding tables).
            adam = new AdamW(pipe.NamedParameters(), new AdamWConfig(opt.Lr, WeightDecay: opt.WeightDecay),
                noDecay: (n, p) => p.Rank == 1 || n.Contains("emb", StringComparison.Ordinal));
            ema = new Ema(pipe.NamedParameters(), opt.EmaDecay);
            lr = new WarmupCosine(opt.Lr, opt.MinLr, opt.Warmup, opt.Steps);
            rng = new Rng(opt.Seed + 1);
            order = train.Order(opt.Seed, 0);
            if (ckpt != null) Restore(ckpt);
        }

        public TrainResult Run()
        {
            var clock = Stopwatch.StartNew();
            int size = opt.ImageSize, per = 3 * size * size, b = opt.Batch;
            var x0 = new float[b * per]; var eps = new float[b * per]; var xt = new float[b * per]; var target = new float[b * per];
            var ts = new int[b]; var tf = new float[b]; var captions = new string[b];
            string reason = "reached --steps";
            long startStep = step; var lastReport = clock.Elapsed;
            pipe.Train(true);
            while (step < opt.Steps)
            {
                if (ctl.Cancel.IsCancellationRequested) { reason = "interrupted"; break; }
                if (ctl.StopAtStep > 0 && step >= ctl.StopAtStep) { reason = $"stopped at step {step} as asked"; break; }
                if (ctl.MaxMinutes > 0 && clock.Elapsed.TotalMinutes >= ctl.MaxMinutes) { reason = $"time limit of {ctl.MaxMinutes} minutes"; break; }
                // ---- batch: images in epoch order, a caption each (or the empty one), a step and noise each
                for (int i = 0; i < b; i++)
                {
                    if (pos == order.Length) { epoch++; pos = 0; order = train.Order(opt.Seed, epoch); }
                    int idx = order[pos++];
                    train.Read(idx, x0.AsSpan(i * per, per));
                    var caps = train.Captions[idx];
                    string cap = caps[rng.NextInt(caps.Count)];
                    captions[i] = rng.NextFloat() < opt.CaptionDropout ? "" : cap;
                    ts[i] = rng.NextInt(pipe.Schedule.Steps); tf[i] = ts[i];
                }
                rng.FillNormal(eps);
                pipe.Schedule.AddNoise(x0, eps, ts, xt);
                pipe.Schedule.Target(pipe.Config.Prediction, x0, eps, ts, target);
                float loss;
                using (TensorScope.Begin())
                {
                    adam.ZeroGrad();
                    var outp = pipe.Forward(Tensor.FromArray(xt, b, 3, size, size), tf, pipe.Tokenize(captions, truncate: true));
                    var l = Ops.MseLoss(outp, Tensor.FromArray(target, b, 3, size, size));
                    loss = l.Item();
                    if (!float.IsFinite(loss)) throw new InvalidOperationException($"training diverged at step {step + 1} (loss {loss}); resume from the last checkpoint with a lower --lr");
                    l.Backward();
                    GradClip.ClipByGlobalNorm(pipe.NamedParameters().Select(p => p.Param), opt.ClipNorm);
                    adam.LearningRate = lr.At(step);
                    adam.StepOnce();
                }
                step++;
                ema.Update(ema.WarmupDecay(step));
                intervalLoss += loss; intervalCount++;
                if (ctl.Progress != null && (clock.Elapsed - lastReport).TotalSeconds >= 0.5 || step == opt.Steps)
                {
                    lastReport = clock.Elapsed;
                    double ips = (step - startStep) * b / clock.Elapsed.TotalSeconds;
                    ctl.Progress?.Invoke(new TrainProgress(step, opt.Steps, (float)(intervalLoss / intervalCount), ips,
                        TimeSpan.FromSeconds((opt.Steps - step) * b / Math.Max(ips, 1e-9))));
                }
                bool stop = false;
                if (step % opt.ValEvery == 0 || step == opt.Steps) stop = Validate();
                if (step % opt.CkptEvery == 0 || step == opt.Steps || stop) SaveCheckpoint();
                if (stop) { reason = $"early stopping: no val improvement in {opt.Patience} validations"; break; }
            }
            if (step % opt.CkptEvery != 0 && step != opt.Steps && step > startStep) SaveCheckpoint();   // interrupted mid-interval
            ctl.Log?.Invoke($"stopped at step {step}: {reason}; best val loss {bestVal:G5} at step {bestStep}");
            return new TrainResult(step, reason, bestVal, bestStep, Path.Combine(runDir, ModelDir));
        }

        /// <summary>Val loss of the EMA weights on a fixed subset with fixed steps and noise; returns true to stop early.</summary>
        private bool Validate()
        {
            CopyEma();
            int n = Math.Min(opt.ValImages, val.Count), size = opt.ImageSize, per = 3 * size * size;
            var vr = new Rng(opt.Seed + 77);   // the same t and noise at every validation, so points compare
            double sum = 0; const int chunk = 32;
            using (Autograd.NoGrad())
                for (int s = 0; s < n; s += chunk)
                {
                    int m = Math.Min(chunk, n - s);
                    var x0 = new float[m * per]; var eps = new float[m * per]; var xt = new float[m * per]; var target = new float[m * per];
                    var ts = new int[m]; var tf = new float[m]; var caps = new string[m];
                    for (int i = 0; i < m; i++) { val.Read(s + i, x0.AsSpan(i * per, per)); caps[i] = val.Captions[s + i][0]; ts[i] = vr.NextInt(emaPipe.Schedule.Steps); tf[i] = ts[i]; }
                    vr.FillNormal(eps);
                    emaPipe.Schedule.AddNoise(x0, eps, ts, xt);
                    emaPipe.Schedule.Target(emaPipe.Config.Prediction, x0, eps, ts, target);
                    using (TensorScope.Begin())
                        sum += Ops.MseLoss(emaPipe.Forward(Tensor.FromArray(xt, m, 3, size, size), tf, emaPipe.Tokenize(caps, truncate: true)),
                            Tensor.FromArray(target, m, 3, size, size)).Item() * m;
                }
            double v = sum / n;
            history.Add(new LossPoint(step, intervalLoss / Math.Max(1, intervalCount), v));
            intervalLoss = 0; intervalCount = 0;
            ctl.Log?.Invoke($"step {step}: train loss {history[^1].Train:G4}, val loss {v:G4}{(v < bestVal ? " (best)" : "")}");
            if (v < bestVal)
            {
                bestVal = v; bestStep = step; badVals = 0;
                WriteCheckpoint(Path.Combine(runDir, BestFile));
                emaPipe.Save(Path.Combine(runDir, ModelDir));
                return false;
            }
            badVals++;
            return opt.Patience > 0 && badVals >= opt.Patience;
        }

        private void CopyEma()
        {
            var shadow = ema.Shadow;
            foreach (var (name, p) in emaPipe.NamedParameters()) shadow[name].CopyTo(p.Span);
        }

        private void SaveCheckpoint()
        {
            var dir = Path.Combine(runDir, CheckpointDir);
            Directory.CreateDirectory(dir);
            WriteCheckpoint(Path.Combine(dir, $"step-{step:D7}.safetensors"));
            foreach (var old in Directory.GetFiles(dir, "step-*.safetensors").OrderBy(f => f, StringComparer.Ordinal).SkipLast(opt.Keep)) File.Delete(old);
            // The sample grid: fixed val prompts, seeds 0..7, 20 DPM-Solver++ steps, CFG 3, EMA weights.
            CopyEma();
            var prompts = val.Captions.Select(c => c[0]).Distinct().Take(SamplePrompts).ToList();
            var imgs = emaPipe.Sample(prompts, new GenerateOptions(prompts[0], Steps: 20, CfgScale: 3f));
            pipe.Train(true);
            Directory.CreateDirectory(Path.Combine(runDir, "samples"));
            Image.Grid(Enumerable.Range(0, prompts.Count).Select(i => Image.FromTensor(Ops.Reshape(Ops.Narrow(imgs, 0, i, 1), 3, opt.ImageSize, opt.ImageSize))).ToList(), prompts.Count)
                .Save(Path.Combine(runDir, "samples", $"step-{step:D7}.png"), [new("prompts", string.Join("\n", prompts))]);
            if (history.Count > 0) LossPlot.Render(history).Save(Path.Combine(runDir, "loss.png"));
            AtomicFile.WriteAllText(Path.Combine(runDir, "log.csv"), "step,train_loss,val_loss\n" +
                string.Concat(history.Select(h => FormattableString.Invariant($"{h.Step},{h.Train:G6},{h.Val:G6}\n"))));
        }

        private void WriteCheckpoint(string path)
        {
            var w = new SafeTensorsWriter();
            foreach (var (n, p) in pipe.NamedParameters()) w.Add("model." + n, p);
            ema.SaveState(w);
            var meta = new Dictionary<string, string>
            {
                ["format"] = "pictor-diffusion-checkpoint", ["step"] = step.ToString(CultureInfo.InvariantCulture),
                ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture), ["pos"] = pos.ToString(CultureInfo.InvariantCulture),
                ["rng"] = string.Join(",", rng.GetState()), ["best_val"] = bestVal.ToString("R", CultureInfo.InvariantCulture),
                ["best_step"] = bestStep.ToString(CultureInfo.InvariantCulture), ["bad_vals"] = badVals.ToString(CultureInfo.InvariantCulture),
                ["interval_loss"] = intervalLoss.ToString("R", CultureInfo.InvariantCulture), ["interval_count"] = intervalCount.ToString(CultureInfo.InvariantCulture),
                ["history"] = JsonSerializer.Serialize(history.Select(h => new[] { h.Step, h.Train, h.Val })),
            };
            adam.SaveState(w, meta);
            w.Write(path, meta);
        }

        private void Restore(SafeTensorsFile f)
        {
            var m = f.Metadata;
            string Get(string k) => m.TryGetValue(k, out var v) ? v : throw new FormatException($"checkpoint '{f.Source}' lacks '{k}' in its metadata; it is not a Pictor diffusion checkpoint or is damaged (use an older one from {CheckpointDir}/)");
            if (Get("format") != "pictor-diffusion-checkpoint") throw new FormatException($"'{f.Source}' is a '{m["format"]}' file, not a diffusion checkpoint");
            pipe.LoadWeights(f, "model.");
            ema.LoadState(f);
            adam.LoadState(f);
            var inv = CultureInfo.InvariantCulture;
            step = long.Parse(Get("step"), inv); epoch = long.Parse(Get("epoch"), inv); pos = int.Parse(Get("pos"), inv);
            rng.SetState(Get("rng").Split(',').Select(s => ulong.Parse(s, inv)).ToArray());
            bestVal = double.Parse(Get("best_val"), inv); bestStep = long.Parse(Get("best_step"), inv); badVals = int.Parse(Get("bad_vals"), inv);
            intervalLoss = double.Parse(Get("interval_loss"), inv); intervalCount = int.Parse(Get("interval_count"), inv);
            foreach (var h in JsonSerializer.Deserialize<double[][]>(Get("history"))!) history.Add(new LossPoint((long)h[0], h[1], h[2]));
            order = train.Order(opt.Seed, epoch);
            if (pos > order.Length) throw new FormatException($"checkpoint '{f.Source}' is at position {pos} of an epoch of {order.Length} images; the dataset changed since the run started");
        }
    }
}
