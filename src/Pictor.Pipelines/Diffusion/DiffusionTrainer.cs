using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Pipelines.Diffusion;
using Pictor.Text;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Diffusion;

/// <summary>
/// DDPM training of a text-to-image pipeline (Ho et al. 2020, algorithm 1, with the cosine schedule and eps or v
/// target): per image a uniform step t, x_t = alpha_t x0 + sigma_t eps, loss = mean (model(x_t, t, text) - target)^2
/// (each image's term weighted by <see cref="MinSnrWeighting"/> with --min-snr; the val loss stays unweighted,
/// comparable across runs). Captions are replaced by the empty caption with probability caption_dropout so the same
/// model gives the unconditional prediction for classifier-free guidance. The loop (AdamW, EMA, validation,
/// checkpoints, resume) is <see cref="TrainingSession"/>.
///
/// Run directory, besides the session's files: config.json, tokenizer/ (trained on the train captions); model/ is a
/// diffusion model directory for 'pictor generate'; samples/ are grids of fixed val prompts.
/// </summary>
public static class DiffusionTrainer
{
    public const string Family = "diffusion", CheckpointFormat = "pictor-diffusion-checkpoint";
    private const int SamplePrompts = 8;

    /// <summary>Starts a new run in <paramref name="runDir"/> (which must not hold one yet) and trains.</summary>
    public static TrainResult Start(string runDir, TrainOptions opt, TrainControl ctl)
    {
        opt = opt with { Model = Family };
        var (train, val) = TrainingSession.BeginRun(runDir, opt, ctl);
        CheckObjectBoxes(opt, train);
        var tok = BpeTokenizer.Train(train.Captions.SelectMany(c => c), opt.Vocab);
        var config = DiffusionConfig.FromPreset(opt.Preset, tok.VocabSize, opt.ImageSize,
            opt.Context) with { ScheduleShift = opt.NoiseShift };
        CheckPlacementModel(opt, config);
        var pipe = new DiffusionPipeline(config, tok, new Rng(opt.Seed));
        TrainingSession.WriteRunFiles(runDir, config.ToJson(), tok, opt, ctl);
        ctl.RootLog?.Invoke($"model: preset {opt.Preset}, {pipe.NamedParameters().Sum(p => (long)p.Param.Numel):N0} "
            + $"parameters, {tok.VocabSize}-token BPE, context {opt.Context}"
            + (opt.NoiseShift != 1 ? $", noise schedule shifted by {opt.NoiseShift}" : ""));
        return new Session(runDir, opt, pipe, train, val, ctl).Run(null);
    }

    /// <summary>Continues the run in <paramref name="runDir"/> from its newest checkpoint. <paramref name="given"/> and
    /// <paramref name="givenFields"/>: options the user passed again, which must equal the stored ones.</summary>
    public static TrainResult Resume(string runDir, TrainControl ctl, TrainOptions? given = null,
        IEnumerable<string>? givenFields = null)
    {
        var (opt, ckpt) = TrainingSession.OpenRun(runDir, Family, given, givenFields);
        string cfgPath = Path.Combine(runDir, DiffusionPipeline.ConfigFile);
        var config = DiffusionConfig.FromJson(File.ReadAllText(cfgPath), cfgPath);
        var expected = DiffusionConfig.FromPreset(opt.Preset, config.Text.Vocab, opt.ImageSize,
            opt.Context) with { ScheduleShift = opt.NoiseShift };
        if (DiffusionConfig.FirstDifference(expected, config) is { } d)
            throw new FormatException($"{cfgPath} does not match preset '{opt.Preset}' of {TrainingSession.TrainFile} "
                + $"({d}); the run was edited or made by another Pictor version");
        var tok = BpeTokenizer.Load(Path.Combine(runDir, DiffusionPipeline.TokenizerDir));
        var (train, val) = TrainingSession.LoadSplits(opt, ctl);
        CheckObjectBoxes(opt, train);
        CheckPlacementModel(opt, config);
        var pipe = new DiffusionPipeline(config, tok, new Rng(opt.Seed));
        ctl.RootLog?.Invoke($"resuming {runDir} from {Path.GetFileName(ckpt)}");
        return new Session(runDir, opt, pipe, train, val, ctl).Run(SafeTensorsFile.Read(ckpt));
    }

    public static string? LatestCheckpoint(string runDir) => TrainingSession.LatestCheckpoint(runDir);

    private static void CheckObjectBoxes(TrainOptions opt, ImageCaptionSet train)
    {
        if (!(opt.Grounding > 0 || opt.Placement > 0) || train.HasObjects) return;
        string option = opt.Grounding > 0 ? "--grounding" : "--placement";
        throw new ArgumentException($"{option} needs object boxes in {opt.Data}/train/metadata.jsonl (\"objects\": "
            + $"[{{\"bbox\": [x0, y0, x1, y1], \"shape\": \"circle\", ...}}], "
            + $"the words that name each object as string values), as 'pictor data shapes' writes them; this data has "
                + $"none. Leave {option} out, or add the boxes");
    }

    private static void CheckPlacementModel(TrainOptions opt, DiffusionConfig config)
    {
        if (opt.Placement > 0 && !config.Unet.TokenPlaces)
            throw new ArgumentException($"--placement trains the UNet's token places, which preset '{opt.Preset}' does "
                + $"not have; use --preset xs-rel-place or leave --placement out");
    }

    private sealed class Session : TrainingSession
    {
        private readonly DiffusionPipeline pipe, emaPipe;
        private readonly ImageCaptionSet train, val;
        private readonly float[] x0, eps, xt, target, tf;
        private readonly int[] ts;
        private readonly string[] captions;
        private readonly float[]? masks;       // (M, S, N) grounding masks of the shard (M images), with --grounding
        private readonly bool[]? grounded;     // (M, S)
        private readonly float[]? placeTargets;   // (M, S, 2) placement targets, with --placement
        private readonly bool[]? placed;          // (M, S)

        public Session(string runDir, TrainOptions opt, DiffusionPipeline pipe, ImageCaptionSet train,
            ImageCaptionSet val, TrainControl ctl)
            : this(runDir, opt, pipe, new DiffusionPipeline(pipe.Config, pipe.Tokenizer, new Rng(0)),
                train, val, ctl) { }

        private Session(string runDir, TrainOptions opt, DiffusionPipeline pipe, DiffusionPipeline emaPipe,
            ImageCaptionSet train, ImageCaptionSet val, TrainControl ctl)
            : base(runDir, opt, ctl, CheckpointFormat, pipe.NamedParameters(), emaPipe.NamedParameters(), train.Count)
        {
            this.pipe = pipe; this.emaPipe = emaPipe; this.train = train; this.val = val;
            int b = opt.Batch, m = Shard.Count, per = 3 * opt.ImageSize * opt.ImageSize;
            // per image of the shard (M = B with one process); the noise, steps and captions of the whole batch
            x0 = new float[m * per]; eps = new float[b * per]; xt = new float[m * per]; target = new float[m * per];
            ts = new int[b]; tf = new float[b]; captions = new string[b];
            if (opt.Grounding > 0) { masks = new float[m * opt.Context * opt.ImageSize * opt.ImageSize]; grounded =
                new bool[m * opt.Context]; }
            if (opt.Placement > 0) { placeTargets = new float[m * opt.Context * 2]; placed =
                new bool[m * opt.Context]; }
        }

        protected override void SetTraining(bool on) => pipe.Train(on);

        protected override Tensor Loss()
        {
            int size = Opt.ImageSize, per = 3 * size * size, o = Shard.Offset, b = Shard.Count;
            // images in epoch order, a caption each (or the empty one), a step and noise each: drawn for the whole
            // batch, read and computed for the shard's images (i - o) only
            for (int i = 0; i < Opt.Batch; i++)
            {
                int idx = NextIndex();
                var caps = train.Captions[idx];
                string cap = caps[Rng.NextInt(caps.Count)];
                // no draw when off, so runs without it are unchanged
                bool flipped = Opt.Hflip > 0 && Rng.NextFloat() < Opt.Hflip;
                if (flipped) cap = HorizontalFlip.MirrorCaption(cap);
                captions[i] = Rng.NextFloat() < Opt.CaptionDropout ? "" : cap;
                ts[i] = Rng.NextInt(pipe.Schedule.Steps); tf[i] = ts[i];
                if (!Shard.Contains(i)) continue;
                int j = i - o;
                train.Read(idx, x0.AsSpan(j * per, per));
                if (flipped) HorizontalFlip.MirrorInPlace(x0.AsSpan(j * per, per), 3, size, size);
                if (masks != null) SetGrounding(j, captions[i], train.Objects[idx], flipped);   // draws nothing
                if (placed != null)
                    Placement.Targets(pipe.Tokenizer, captions[i], train.Objects[idx], Opt.Context, size, flipped,
                        placeTargets.AsSpan(j * Opt.Context * 2, Opt.Context * 2))
                        .CopyTo(placed, j * Opt.Context);
            }
            Rng.FillNormal(eps);
            var epsShard = eps.AsSpan(o * per, b * per); var tsShard = ts.AsSpan(o, b);
            pipe.Schedule.AddNoise(x0, epsShard, tsShard, xt);
            pipe.Schedule.Target(pipe.Config.Prediction, x0, epsShard, tsShard, target);
            var maps = masks != null ? new List<Tensor>() : null;
            var places = placed != null ? new List<Tensor>() : null;
            var outp = pipe.Forward(Tensor.FromArray(xt, b, 3, size, size), tf[o..(o + b)],
                pipe.Tokenize(captions[o..(o + b)], truncate: true), maps, places);
            var w = Opt.MinSnr == 0 ? null   // per-image w_t of MinSnrWeighting, broadcast over the image
                : Tensor.FromArray(MinSnrWeighting.Weights(pipe.Schedule, pipe.Config.Prediction, ts[o..(o + b)],
                    Opt.MinSnr), b, 1, 1, 1);
            var loss = Ops.MseLoss(outp, Tensor.FromArray(target, b, 3, size, size), w);
            // L = MSE + W_g * L_token (GroundingLoss) + W_p * L_place (Placement); the val loss stays the plain MSE,
            // comparable with runs without them. Data-parallel: this shard's share of each mean over the whole batch.
            int gLocal = grounded?.Count(g => g) ?? 0, pLocal = placed?.Count(p => p) ?? 0;
            var totals = World.Size > 1 ? SumOverRanks(gLocal, pLocal) : [gLocal, pLocal];
            if (World.Size > 1) loss = Ops.MulScalar(loss, Shard.Fraction);
            if (maps != null)
                loss = Ops.Add(loss, Ops.MulScalar(GroundingLoss.Compute(maps, masks!, grounded!, b, Opt.Context, size),
                    Opt.Grounding * Share(gLocal, totals[0])));
            if (places != null)
                loss = Ops.Add(loss, Ops.MulScalar(Placement.Loss(places.Single(), placeTargets!, placed!),
                    Opt.Placement * Share(pLocal, totals[1])));
            return loss;
        }

        /// <summary>The shard's weight in a mean over the whole batch's <paramref name="total"/> items, of which it
        /// holds <paramref name="local"/> (1 with one process).</summary>
        private static float Share(int local, double total) => total > 0 ? (float)(local / total) : 0f;

        private void SetGrounding(int i, string caption, IReadOnlyList<Imaging.Datasets.ImageObject> objects,
            bool flipped)
        {
            int n = Opt.ImageSize * Opt.ImageSize, s = Opt.Context;
            Grounding.TokenMasks(pipe.Tokenizer, caption, objects, s, Opt.ImageSize, flipped, masks.AsSpan(i * s * n,
                s * n)).CopyTo(grounded!, i * s);
        }

        /// <summary>Val loss of the EMA weights on a fixed subset with fixed steps and noise.</summary>
        protected override Validation Validate()
        {
            int n = Math.Min(Opt.ValImages, val.Count), size = Opt.ImageSize, per = 3 * size * size;
            var vr = new Rng(Opt.Seed + 77);   // the same t and noise at every validation, so points compare
            double sum = 0, gsum = 0, psum = 0; const int chunk = 32;
            bool ground = Opt.Grounding > 0 && val.HasObjects, place = Opt.Placement > 0 && val.HasObjects;
            using (Autograd.NoGrad())
                for (int s = 0; s < n; s += chunk)
                {
                    int m = Math.Min(chunk, n - s);
                    var x0 = new float[m * per]; var eps = new float[m * per]; var xt = new float[m * per];
                    var target = new float[m * per];
                    var ts = new int[m]; var tf = new float[m]; var caps = new string[m];
                    for (int i = 0; i < m; i++) { val.Read(s + i, x0.AsSpan(i * per, per)); caps[i] = val.Captions[s
                        + i][0]; ts[i] = vr.NextInt(emaPipe.Schedule.Steps); tf[i] = ts[i]; }
                    vr.FillNormal(eps);
                    emaPipe.Schedule.AddNoise(x0, eps, ts, xt);
                    emaPipe.Schedule.Target(emaPipe.Config.Prediction, x0, eps, ts, target);
                    using (TensorScope.Begin())
                    {
                        var maps = ground ? new List<Tensor>() : null;
                        var places = place ? new List<Tensor>() : null;
                        sum += Ops.MseLoss(emaPipe.Forward(Tensor.FromArray(xt, m, 3, size, size), tf,
                            emaPipe.Tokenize(caps, truncate: true), maps, places),
                            Tensor.FromArray(target, m, 3, size, size)).Item() * m;
                        if (maps != null) gsum += ValGrounding(maps, s, m, caps) * m;
                        if (places != null)
                        {
                            var (pt, pp) = Placement.BatchTargets(emaPipe.Tokenizer, caps, val.Objects.GetRange(s, m),
                                Opt.Context, Opt.ImageSize);
                            psum += Placement.Loss(places.Single(), pt, pp).Item() * m;
                        }
                    }
                }
            return new(sum / n, (ground ? $", grounding {gsum / n:F4}" : "")
                + (place ? $", placement {psum / n:F4}" : ""));
        }

        /// <summary>L_token of the val images s..s+m-1 (their first captions, not mirrored).</summary>
        private double ValGrounding(List<Tensor> maps, int s, int m, string[] caps)
        {
            var (vm, vg) = Grounding.BatchMasks(emaPipe.Tokenizer, caps, val.Objects.GetRange(s, m),
                Opt.Context, Opt.ImageSize);
            return GroundingLoss.Compute(maps, vm, vg, m, Opt.Context, Opt.ImageSize).Item();
        }

        protected override void ExportModel(string dir) => emaPipe.Save(dir);

        /// <summary>The sample grid: fixed val prompts, seeds 0..7, 20 DPM-Solver++ steps, CFG 3, EMA
        /// weights.</summary>
        protected override void SaveSamples(string path)
        {
            // Cut to the context as training cuts captions (a long val caption must not fail the checkpoint).
            var prompts = val.Captions.Select(c => emaPipe.Tokenizer.Fit(c[0], emaPipe.Config.Text.Context)).Distinct()
                .Take(SamplePrompts).ToList();
            var imgs = emaPipe.Sample(prompts, new SamplingSettings("dpm++", 20, Guidance: 3f));
            Image.Grid(Enumerable.Range(0, prompts.Count).Select(i => Image.FromTensor(Ops.Reshape(Ops.Narrow(imgs, 0,
                i, 1), 3, Opt.ImageSize, Opt.ImageSize))).ToList(), prompts.Count)
                .Save(path, [new("prompts", string.Join("\n", prompts))]);
        }
    }
}
