using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Vq;
using Pictor.Text;
using Pictor.Pipelines.Inside;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Dalle;

/// <summary>
/// Trains the DALL-E transformer on a frozen VQ-VAE's tokens (Ramesh et al. 2021, stage 2): every image is encoded once
/// into its G*G code grid; a step takes a batch of (caption, grid) pairs, replaces the caption by the empty one with
/// probability caption_dropout (the null caption classifier-free guidance needs), and minimises the 1/8 text + 7/8
/// image next-token loss. The loop is <see cref="TrainingSession"/>; validation reports the image-token loss (nats per
/// token) of the EMA weights on val captions and grids; checkpoints save a grid of samples for fixed val prompts.
/// The run holds a copy of the VQ-VAE (RUN/vqvae), so it stays usable if the tokenizer run moves.
/// </summary>
public static class DalleTrainer
{
    public const string Family = "dalle", CheckpointFormat = "pictor-dalle-checkpoint";
    private const int SamplePrompts = 8;

    public static TrainResult Start(string runDir, TrainOptions opt, TrainControl ctl)
    {
        opt = opt with { Model = Family };
        // names a missing --vqvae before loading anything
        opt.Validate();
        var vq = VqModel.Load(opt.Vqvae);
        if (vq.ImageSize != opt.ImageSize)
            throw new ArgumentException($"the VQ-VAE in '{opt.Vqvae}' works on {vq.ImageSize}x{vq.ImageSize} images; "
                + $"pass --size {vq.ImageSize}");
        var (train, val) = TrainingSession.BeginRun(runDir, opt, ctl);
        var tok = BpeTokenizer.Train(train.Captions.SelectMany(c => c), opt.Vocab);
        var setup = DalleSetup.FromPreset(opt.Preset, opt.ImageSize, tok.VocabSize, opt.Context,
            vq.Config.Codes, vq.Grid);
        var pipe = new DallePipeline(setup, tok, vq, new Rng(opt.Seed));
        TrainingSession.WriteRunFiles(runDir, setup.ToJson(), tok, opt, ctl);
        vq.Save(Path.Combine(runDir, DallePipeline.VqDir));
        ctl.RootLog?.Invoke($"model: DALL-E preset {opt.Preset}, {pipe.Transformer.ParameterCount():N0} parameters, "
            + $"{tok.VocabSize}-token BPE x {opt.Context} + {vq.Config.Codes} codes x {vq.Grid * vq.Grid}");
        return new Session(runDir, opt, pipe, train, val, ctl).Run(null);
    }

    public static TrainResult Resume(string runDir, TrainControl ctl, TrainOptions? given = null,
        IEnumerable<string>? givenFields = null)
    {
        var (opt, ckpt) = TrainingSession.OpenRun(runDir, Family, given, givenFields);
        string cfgPath = Path.Combine(runDir, "config.json");
        var setup = DalleSetup.FromJson(File.ReadAllText(cfgPath), cfgPath);
        var vq = VqModel.Load(Path.Combine(runDir, DallePipeline.VqDir));
        var expected = DalleSetup.FromPreset(opt.Preset, opt.ImageSize, setup.Transformer.TextVocab, opt.Context,
            vq.Config.Codes, vq.Grid);
        if (expected.ToJson() != setup.ToJson())
            throw new FormatException($"{cfgPath} does not match preset '{opt.Preset}' of {TrainingSession.TrainFile}; "
                + $"the run was edited or made by another Pictor version");
        var tok = BpeTokenizer.Load(Path.Combine(runDir, DallePipeline.TokenizerDir));
        var (train, val) = TrainingSession.LoadSplits(opt, ctl);
        var pipe = new DallePipeline(setup, tok, vq, new Rng(opt.Seed));
        ctl.RootLog?.Invoke($"resuming {runDir} from {Path.GetFileName(ckpt)}");
        return new Session(runDir, opt, pipe, train, val, ctl).Run(SafeTensorsFile.Read(ckpt));
    }

    /// <summary>Every image of a split as its code grid, [N * G*G] (row-major per image).</summary>
    public static int[] EncodeAll(VqModel vq, ImageCaptionSet set)
    {
        int size = set.Size, per = 3 * size * size, n = set.Count, g2 = vq.Grid * vq.Grid;
        var codes = new int[n * g2];
        const int chunk = 64;
        for (int s = 0; s < n; s += chunk)
        {
            int m = Math.Min(chunk, n - s);
            var x = new float[m * per];
            for (int i = 0; i < m; i++) set.Read(s + i, x.AsSpan(i * per, per));
            using (TensorScope.Begin()) vq.Net.Encode(Tensor.FromArray(x, m, 3, size, size)).Data.CopyTo(codes, s * g2);
        }
        return codes;
    }

    private sealed class Session : TrainingSession
    {
        private readonly DallePipeline pipe, evalPipe;
        private readonly ImageCaptionSet train, val;
        private readonly int[] trainCodes, valCodes;
        private readonly int g2;

        public Session(string runDir, TrainOptions opt, DallePipeline pipe, ImageCaptionSet train,
            ImageCaptionSet val, TrainControl ctl)
            : this(runDir, opt, pipe, new DallePipeline(pipe.Setup, pipe.Tokenizer, pipe.Vq, new Rng(0)),
                train, val, ctl) { }

        private Session(string runDir, TrainOptions opt, DallePipeline pipe, DallePipeline evalPipe,
            ImageCaptionSet train, ImageCaptionSet val, TrainControl ctl)
            : base(runDir, opt, ctl, CheckpointFormat, pipe.Transformer.NamedParameters(),
                evalPipe.Transformer.NamedParameters(), train.Count)
        {
            this.pipe = pipe; this.evalPipe = evalPipe; this.train = train; this.val = val;
            g2 = pipe.Setup.Transformer.ImageLen;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            trainCodes = EncodeAll(pipe.Vq, train); valCodes = EncodeAll(pipe.Vq, val);
            ctl.RootLog?.Invoke($"tokenized {train.Count + val.Count} images with the VQ-VAE in "
                + $"{clock.Elapsed.TotalSeconds:F1} s");
            // What the transformer will learn from: a tokenizer that uses few of its codes caps what it can draw.
            var health = CodebookHealth.FromCodes(trainCodes, pipe.Vq.Net.Config.Codes,
                $"{trainCodes.Length} training tokens");
            ctl.RootLog?.Invoke($"VQ codebook on the training images: {health}");
            if (World.Rank == 0) health.Histogram().Save(Path.Combine(runDir, VqTrainer.CodebookFile));
        }

        protected override void SetTraining(bool on) => pipe.Transformer.Train(on);

        protected override Tensor Loss()
        {
            // drawn for the whole batch, computed for the shard's images only
            int b = Shard.Count;
            var captions = new string[b]; var codes = new int[b * g2];
            var batch = DrawBatch(train);
            for (int i = 0; i < b; i++)
            {
                captions[i] = batch[i].Caption;
                Array.Copy(trainCodes, batch[i].Index * g2, codes, i * g2, g2);
            }
            var seq = pipe.Sequences(pipe.Tokenize(captions, truncate: true), codes);
            int padId = pipe.Tokenizer.PadId;
            (int, int)? whole = World.Size == 1 ? null
                : (Opt.Batch, (int)SumOverRanks(pipe.Transformer.TextTargets(seq, padId))[0]);
            // the masks come from the checkpointed rng (one process) or the step's (LocalRng): resume stays exact
            return pipe.Transformer.Loss(seq, padId, dropout: Opt.Dropout, rng: Opt.Dropout > 0 ? LocalRng() : null,
                whole: whole);
        }

        /// <summary>Image-token loss (nats per token) of the EMA weights on the first val images, first
        /// captions.</summary>
        protected override Validation Validate()
        {
            int n = Math.Min(Opt.ValImages, val.Count);
            double sum = 0; const int chunk = 32;
            using (Autograd.NoGrad())
                for (int s = 0; s < n; s += chunk)
                {
                    int m = Math.Min(chunk, n - s);
                    var caps = Enumerable.Range(s, m).Select(i => val.Captions[i][0]).ToList();
                    using (TensorScope.Begin())
                        sum += evalPipe.Transformer.Loss(evalPipe.Sequences(evalPipe.Tokenize(caps, truncate: true),
                            valCodes.AsSpan(s * g2, m * g2)), evalPipe.Tokenizer.PadId, imageOnly: true).Item() * m;
                }
            double v = sum / n;
            return new(v, FormattableString.Invariant($" (nats per image token; perplexity {Math.Exp(v):F1})"));
        }

        protected override void ExportModel(string dir) => evalPipe.Save(dir);

        /// <summary>Fixed val prompts, seeds 0..7, temperature 1, CFG 3, EMA weights.</summary>
        protected override void SaveSamples(string path)
        {
            // Cut to the context as training cuts captions (a long val caption must not fail the checkpoint).
            var prompts = val.Captions.Select(c => evalPipe.Tokenizer.Fit(c[0], evalPipe.TextContext)).Distinct()
                .Take(SamplePrompts).ToList();
            var imgs = evalPipe.Sample(prompts, new SamplingSettings(DallePipeline.SamplerName,
                evalPipe.DefaultSteps, Guidance: 3f));
            int s = Opt.ImageSize;
            Image.Grid(Enumerable.Range(0, prompts.Count)
                .Select(i => Image.FromTensor(Ops.Reshape(Ops.Narrow(imgs, 0, i, 1), 3, s, s))).ToList(), prompts.Count)
                .Save(path, [new("prompts", string.Join("\n", prompts))]);
        }
    }
}
