using System.Globalization;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models.Gan;
using Pictor.Pipelines.Training;
using Pictor.Text;

namespace Pictor.Pipelines.Gan;

// Dimension legend: B batch (this rank's share), Z noise width, H = W image side.

/// <summary>
/// Trains the conditional GAN: the generator (<see cref="GanGenerator"/>, the run's model, with EMA weights exported)
/// against the projection discriminator (<see cref="ProjectionDiscriminator"/>, the session's
/// <see cref="Adversary"/>: its own AdamW, saved in every checkpoint). Each step, on one batch of real images and their
/// captions:
///   1. discriminator: L_D = mean(relu(1 - D(A(x), y))) + mean(relu(1 + D(A(G(z, y)), y)))   (hinge loss, Lim and Ye
///      2017; Miyato et al. 2018), one power step of every spectral norm first;
///   2. generator, with new noise: L_G = -mean(D(A(G(z', y)), y)),
/// A the differentiable augmentation (<see cref="DiffAugment"/>), drawn anew for every image of each term. Both
/// optimisers use Adam betas (0, 0.9) and two learning rates (--lr for G, --d-lr for D; Heusel et al. 2017's TTUR).
/// Why DiffAugment rather than an R1 penalty: the emoji sets are a few thousand images, where the discriminator
/// memorises the training set (DiffAugment's case), and R1 needs the gradient of a gradient, which this engine's
/// autograd does not record.
/// A GAN has no validation loss that follows image quality, so the exported model is the latest EMA generator; each
/// validation logs the discriminator's mean score on held-out real images, on training images and on EMA samples
/// (train far above val: the discriminator memorises) and its hinge loss on the val pair.
/// </summary>
public static class GanTrainer
{
    public const string Family = "gan", CheckpointFormat = "pictor-gan-checkpoint";
    private const int SamplePrompts = 8;
    private const float Beta1 = 0f, Beta2 = 0.9f;

    public static TrainResult Start(string runDir, TrainOptions opt, TrainControl ctl)
    {
        opt = opt with { Model = Family };
        CheckSize(opt);
        var (train, val) = TrainingSession.BeginRun(runDir, opt, ctl);
        var tok = BpeTokenizer.Train(train.Captions.SelectMany(c => c), opt.Vocab);
        var gan = new GanPipeline(opt.Preset, GanPipeline.FromPreset(opt.Preset, tok.VocabSize, opt.Context), tok,
            new Rng(opt.Seed));
        TrainingSession.WriteRunFiles(runDir, gan.ToJson(), tok, opt, ctl);
        var disc = new ProjectionDiscriminator(gan.Config, new Rng(opt.Seed + 7));
        ctl.RootLog?.Invoke($"model: GAN preset {opt.Preset}, generator {gan.Model.ParameterCount():N0} parameters, "
            + $"discriminator {disc.ParameterCount():N0} (spectral norm, projection head); {gan.Latent}-number noise; "
            + $"lr {opt.Lr:G3} (G), {opt.DiscriminatorLr:G3} (D)");
        return new Session(runDir, opt, gan, disc, train, val, ctl).Run(null);
    }

    public static TrainResult Resume(string runDir, TrainControl ctl, TrainOptions? given = null,
        IEnumerable<string>? givenFields = null)
    {
        var (opt, ckpt) = TrainingSession.OpenRun(runDir, Family, given, givenFields);
        string cfgPath = Path.Combine(runDir, GanPipeline.ConfigFile);
        var (preset, config) = GanPipeline.ParseConfig(File.ReadAllText(cfgPath), cfgPath);
        var tok = BpeTokenizer.Load(Path.Combine(runDir, GanPipeline.TokenizerDir));
        var gan = new GanPipeline(preset, config, tok, new Rng(opt.Seed));
        if (gan.ToJson() != new GanPipeline(opt.Preset, GanPipeline.FromPreset(opt.Preset, tok.VocabSize,
            opt.Context), tok, new Rng(0)).ToJson())
            throw new FormatException($"{cfgPath} does not match preset '{opt.Preset}' of {TrainingSession.TrainFile}; "
                + "the run was edited or made by another Pictor version");
        var (train, val) = TrainingSession.LoadSplits(opt, ctl);
        ctl.RootLog?.Invoke($"resuming {runDir} from {Path.GetFileName(ckpt)}");
        return new Session(runDir, opt, gan, new ProjectionDiscriminator(config, new Rng(opt.Seed + 7)), train, val,
            ctl).Run(SafeTensorsFile.Read(ckpt));
    }

    /// <summary>A GAN preset draws one size: --size must be it.</summary>
    private static void CheckSize(TrainOptions opt)
    {
        if (!GanPipeline.PresetNames.Contains(opt.Preset)) return;   // Validate names the presets
        int side = GanPipeline.PresetSize(opt.Preset);
        if (opt.ImageSize != side)
            throw new ArgumentException($"GAN preset '{opt.Preset}' draws {side}x{side} images, but --size is "
                + $"{opt.ImageSize}; pass --size {side} or choose another preset");
    }

    /// <summary>Hinge loss of the discriminator, mean(relu(1 - real)) + mean(relu(1 + fake)), over scores
    /// [n].</summary>
    public static Tensor HingeLoss(Tensor real, Tensor fake) =>
        Ops.Add(Ops.Mean(Ops.Relu(Ops.AddScalar(Ops.Neg(real), 1f))), Ops.Mean(Ops.Relu(Ops.AddScalar(fake, 1f))));

    private sealed class Session : TrainingSession
    {
        private readonly GanPipeline gan, evalGan;
        private readonly ProjectionDiscriminator disc;
        private readonly ImageCaptionSet train, val;
        private readonly float[] x, z;
        private readonly string[] captions;

        public Session(string runDir, TrainOptions opt, GanPipeline gan, ProjectionDiscriminator disc,
            ImageCaptionSet train, ImageCaptionSet val, TrainControl ctl)
            : this(runDir, opt, gan, new GanPipeline(gan.Preset, gan.Config, gan.Tokenizer, new Rng(0)), disc, train,
                val, ctl) { }

        private Session(string runDir, TrainOptions opt, GanPipeline gan, GanPipeline evalGan,
            ProjectionDiscriminator disc, ImageCaptionSet train, ImageCaptionSet val, TrainControl ctl)
            : base(runDir, opt, ctl, CheckpointFormat, gan.Model.NamedParameters(), evalGan.Model.NamedParameters(),
                train.Count, new Adversary(disc.NamedParameters().ToList(), opt.DiscriminatorLr, Beta1, Beta2))
        {
            this.gan = gan; this.evalGan = evalGan; this.disc = disc; this.train = train; this.val = val;
            x = new float[Shard.Count * 3 * opt.ImageSize * opt.ImageSize];
            z = new float[opt.Batch * gan.Latent];   // the whole batch's noise (the stream is the same on all ranks)
            captions = new string[Shard.Count];
        }

        protected override void SetTraining(bool on) => gan.Model.Train(on);

        /// <summary>This rank's noise rows of a fresh draw for the whole batch: [B, Z].</summary>
        private Tensor Noise()
        {
            Rng.FillNormal(z);
            int per = gan.Latent, o = Shard.Offset;
            return Tensor.FromArray(z[(o * per)..((o + Shard.Count) * per)], Shard.Count, per);
        }

        /// <summary>Augmentations for <paramref name="copies"/> images of each batch slot (drawn for the whole batch),
        /// this rank's rows in the order [copy 0 rows; copy 1 rows; ...].</summary>
        private List<AugmentDraw> Draws(int copies)
        {
            var all = new AugmentDraw[copies * Opt.Batch];
            for (int i = 0; i < all.Length; i++)
                all[i] = DiffAugment.Draw(Rng, Opt.ImageSize, gan.Config.Translation, gan.Config.Cutout);
            var mine = new List<AugmentDraw>();
            for (int c = 0; c < copies; c++)
                for (int i = 0; i < Shard.Count; i++) mine.Add(all[c * Opt.Batch + Shard.Offset + i]);
            return mine;
        }

        private Tensor Scale(Tensor loss) => World.Size == 1 ? loss : Ops.MulScalar(loss, Shard.Fraction);

        /// <summary>The discriminator's step: a new batch of real images and captions (kept for the generator's
        /// step), fakes from new noise without gradients, one forward over [real; fake].</summary>
        protected override Tensor AdversaryLoss()
        {
            int size = Opt.ImageSize, per = 3 * size * size, b = Shard.Count;
            var batch = DrawBatch(train);
            for (int i = 0; i < b; i++)
            {
                train.Read(batch[i].Index, x.AsSpan(i * per, per));
                captions[i] = batch[i].Caption;
            }
            var ids = gan.Ids(captions, truncate: true);
            var fake = gan.Model.Generate(ids, Noise());                                   // (B, 3, H, W)
            var real = Tensor.FromArray(x, b, 3, size, size);
            var both = DiffAugment.Apply(Ops.Concat([real, fake], 0), Draws(2), gan.Config.Cutout);
            disc.ArmPowerSteps();
            var text = disc.EncodeText(ids);                                               // (B, Dd)
            var scores = disc.Forward(both, Ops.Concat([text, text], 0));                  // (2B)
            return Scale(HingeLoss(Ops.Narrow(scores, 0, 0, b), Ops.Narrow(scores, 0, b, b)));
        }

        /// <summary>The generator's step on the discriminator's captions with new noise.</summary>
        protected override Tensor Loss()
        {
            var ids = gan.Ids(captions, truncate: true);
            var fake = gan.Model.Forward(Noise(), gan.Model.EncodeText(ids));             // (B, 3, H, W)
            var scores = disc.Forward(DiffAugment.Apply(fake, Draws(1), gan.Config.Cutout), disc.EncodeText(ids));
            return Scale(Ops.Neg(Ops.Mean(scores)));
        }

        /// <summary>The discriminator's mean scores on val and train images and on EMA samples for the val
        /// captions (no augmentation); the loss is its hinge loss on the val pair. The latest weights are kept.
        /// </summary>
        protected override Validation Validate()
        {
            var s = Scores(evalGan, disc, val, train, Opt.ValImages, Opt.Seed + 77);
            return new(s.ValHinge, string.Create(CultureInfo.InvariantCulture,
                $" (discriminator hinge on val; mean D: val real {s.ValReal:F3}, train real {s.TrainReal:F3}, "
                + $"EMA fake {s.Fake:F3})"));
        }

        protected override bool KeepsLatest => true;

        protected override void ExportModel(string dir) => evalGan.Save(dir);

        /// <summary>Fixed val prompts, seeds 0..7, temperature 1, EMA weights.</summary>
        protected override void SaveSamples(string path) => SavePromptRow(evalGan, val, SamplePrompts,
            new SamplingSettings(GanPipeline.SamplerName, 1, 1f), path);
    }

    /// <summary>What the discriminator makes of real and generated images.</summary>
    public readonly record struct DiscriminatorScores(double ValReal, double TrainReal, double Fake, double ValHinge);

    /// <summary>Mean scores of <paramref name="disc"/> on the first <paramref name="max"/> val images (first captions),
    /// as many train images, and <paramref name="gen"/>'s samples for the val captions (noise from
    /// <paramref name="seed"/>), with the hinge loss of the val pair.</summary>
    public static DiscriminatorScores Scores(GanPipeline gen, ProjectionDiscriminator disc, ImageCaptionSet val,
        ImageCaptionSet train, int max, ulong seed)
    {
        int size = val.Size, per = 3 * size * size;
        var rng = new Rng(seed);
        double Mean(ImageCaptionSet set, bool fake, out double hingeTerm)
        {
            int n = Math.Min(max, set.Count); double sum = 0, hinge = 0; const int chunk = 32;
            for (int s = 0; s < n; s += chunk)
                using (TensorScope.Begin())
                {
                    int m = Math.Min(chunk, n - s);
                    var caps = Enumerable.Range(s, m).Select(i => set.Captions[i][0]).ToList();
                    var ids = gen.Ids(caps, truncate: true);
                    Tensor img;
                    if (fake)
                    {
                        var zz = new float[m * gen.Latent]; rng.FillNormal(zz);
                        img = gen.Model.Generate(ids, Tensor.FromArray(zz, m, gen.Latent));
                    }
                    else
                    {
                        var xs = new float[m * per];
                        for (int i = 0; i < m; i++) set.Read(s + i, xs.AsSpan(i * per, per));
                        img = Tensor.FromArray(xs, m, 3, size, size);
                    }
                    var sc = disc.Forward(img, disc.EncodeText(ids)).ToArray();
                    foreach (var v in sc)
                    {
                        sum += v; hinge += Math.Max(0, fake ? 1 + v : 1 - v);
                    }
                }
            hingeTerm = hinge / n;
            return sum / n;
        }
        using (Autograd.NoGrad())
        {
            double valReal = Mean(val, false, out var hReal), trainReal = Mean(train, false, out _);
            double fake = Mean(val, true, out var hFake);
            return new(valReal, trainReal, fake, hReal + hFake);
        }
    }
}
