using System.Globalization;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Pipelines.Training;
using Pictor.Text;

namespace Pictor.Pipelines.Vae;

/// <summary>
/// Trains the conditional VAE (<see cref="Models.Vae.ConditionalVae"/>) by maximising the ELBO: per step B images with
/// one caption each (or the empty one, with caption dropout), z by the reparameterisation with noise from the run's
/// random stream, loss = (recon + w_t KL) / N with the KL weight w_t rising linearly from 0 to beta over kl_warmup
/// steps (Bowman et al. 2016's KL annealing, against posterior collapse). The loop is <see cref="TrainingSession"/>;
/// validation reports the negative ELBO (w = 1, in nats per dimension, with the Gaussian constant) of the EMA weights
/// on fixed val images and noise, and its two terms; each checkpoint saves a grid sampled from the prior.
/// </summary>
public static class VaeTrainer
{
    public const string Family = "vae", CheckpointFormat = "pictor-vae-checkpoint";
    private const int SamplePrompts = 8;

    public static TrainResult Start(string runDir, TrainOptions opt, TrainControl ctl)
    {
        opt = opt with { Model = Family };
        var (train, val) = TrainingSession.BeginRun(runDir, opt, ctl);
        var tok = BpeTokenizer.Train(train.Captions.SelectMany(c => c), opt.Vocab);
        var vae = new VaePipeline(opt.Preset, opt.ImageSize, VaePipeline.FromPreset(opt.Preset, tok.VocabSize,
            opt.Context), tok, new Rng(opt.Seed));
        TrainingSession.WriteRunFiles(runDir, vae.ToJson(), tok, opt, ctl);
        ctl.RootLog?.Invoke($"model: VAE preset {opt.Preset}, {vae.Model.ParameterCount():N0} parameters, "
            + $"{vae.Latent}-number latent, KL weight {vae.Config.Beta} after {vae.Config.KlWarmup} warm-up steps");
        return new Session(runDir, opt, vae, train, val, ctl).Run(null);
    }

    public static TrainResult Resume(string runDir, TrainControl ctl, TrainOptions? given = null,
        IEnumerable<string>? givenFields = null)
    {
        var (opt, ckpt) = TrainingSession.OpenRun(runDir, Family, given, givenFields);
        string cfgPath = Path.Combine(runDir, VaePipeline.ConfigFile);
        var (preset, size, config) = VaePipeline.ParseConfig(File.ReadAllText(cfgPath), cfgPath);
        var tok = BpeTokenizer.Load(Path.Combine(runDir, VaePipeline.TokenizerDir));
        var vae = new VaePipeline(preset, size, config, tok, new Rng(opt.Seed));
        if (vae.ToJson() != new VaePipeline(opt.Preset, opt.ImageSize, VaePipeline.FromPreset(opt.Preset,
            tok.VocabSize, opt.Context), tok, new Rng(0)).ToJson())
            throw new FormatException($"{cfgPath} does not match preset '{opt.Preset}' of {TrainingSession.TrainFile}; "
                + "the run was edited or made by another Pictor version");
        var (train, val) = TrainingSession.LoadSplits(opt, ctl);
        ctl.RootLog?.Invoke($"resuming {runDir} from {Path.GetFileName(ckpt)}");
        return new Session(runDir, opt, vae, train, val, ctl).Run(SafeTensorsFile.Read(ckpt));
    }

    /// <summary>The KL weight at <paramref name="step"/>: beta * min(1, (step + 1) / warmup).</summary>
    public static float KlWeight(long step, float beta, int warmup) =>
        warmup <= 0 ? beta : beta * Math.Min(1f, (step + 1) / (float)warmup);

    private sealed class Session : TrainingSession
    {
        private readonly VaePipeline vae, evalVae;
        private readonly ImageCaptionSet train, val;
        private readonly float[] x, eps;

        public Session(string runDir, TrainOptions opt, VaePipeline vae, ImageCaptionSet train, ImageCaptionSet val,
            TrainControl ctl)
            : this(runDir, opt, vae, new VaePipeline(vae.Preset, vae.ImageSize, vae.Config, vae.Tokenizer, new Rng(0)),
                train, val, ctl) { }

        private Session(string runDir, TrainOptions opt, VaePipeline vae, VaePipeline evalVae, ImageCaptionSet train,
            ImageCaptionSet val, TrainControl ctl)
            : base(runDir, opt, ctl, CheckpointFormat, vae.Model.NamedParameters(), evalVae.Model.NamedParameters(),
                train.Count)
        {
            this.vae = vae; this.evalVae = evalVae; this.train = train; this.val = val;
            x = new float[Shard.Count * 3 * opt.ImageSize * opt.ImageSize];
            eps = new float[opt.Batch * vae.Latent];   // the whole batch's noise (the stream is the same on all ranks)
        }

        protected override void SetTraining(bool on) => vae.Model.Train(on);

        protected override Tensor Loss()
        {
            int size = Opt.ImageSize, per = 3 * size * size, o = Shard.Offset, b = Shard.Count;
            int zper = vae.Latent;
            var batch = DrawBatch(train);
            var captions = new string[b];
            for (int i = 0; i < b; i++)
            {
                train.Read(batch[i].Index, x.AsSpan(i * per, per));
                captions[i] = batch[i].Caption;
            }
            Rng.FillNormal(eps);
            var (loss, _, _) = vae.Model.Loss(Tensor.FromArray(x, b, 3, size, size), vae.Ids(captions, truncate: true),
                Tensor.FromArray(eps[(o * zper)..((o + b) * zper)], b, zper),
                KlWeight(Step, vae.Config.Beta, vae.Config.KlWarmup));
            return World.Size == 1 ? loss : Ops.MulScalar(loss, Shard.Fraction);
        }

        /// <summary>-ELBO of the EMA weights (KL weight 1) on the first val images with their first captions and
        /// fixed noise, nats per dimension; the log adds both terms per image.</summary>
        protected override Validation Validate()
        {
            var (elbo, recon, kl) = Elbo(evalVae, val, Opt.ValImages, Opt.Seed + 77);
            return new(elbo, string.Create(CultureInfo.InvariantCulture,
                $" (nats per dimension; per image: reconstruction {recon:F1}, KL {kl:F1})"));
        }

        protected override void ExportModel(string dir) => evalVae.Save(dir);

        /// <summary>Fixed val prompts, seeds 0..7, temperature 1, EMA weights.</summary>
        protected override void SaveSamples(string path) => SavePromptRow(evalVae, val, SamplePrompts,
            new SamplingSettings(VaePipeline.SamplerName, 1, 1f), path);
    }

    /// <summary>The negative ELBO of <paramref name="model"/> on the first <paramref name="max"/> images of
    /// <paramref name="set"/> (first captions, noise from <paramref name="seed"/>): nats per dimension, and per image
    /// its reconstruction term (with the Gaussian constant) and KL.</summary>
    public static (double Elbo, double Recon, double Kl) Elbo(VaePipeline model, ImageCaptionSet set, int max,
        ulong seed)
    {
        int n = Math.Min(max, set.Count), size = set.Size, per = 3 * size * size;
        int zc = model.Latent;
        var rng = new Rng(seed);
        double recon = 0, kl = 0; const int chunk = 32;
        model.Model.Train(false);
        using (Autograd.NoGrad())
            for (int s = 0; s < n; s += chunk)
            {
                int m = Math.Min(chunk, n - s);
                var x = new float[m * per]; var eps = new float[m * zc];
                for (int i = 0; i < m; i++) set.Read(s + i, x.AsSpan(i * per, per));
                rng.FillNormal(eps);
                using (TensorScope.Begin())
                {
                    var caps = Enumerable.Range(s, m).Select(i => set.Captions[i][0]).ToList();
                    var (_, r, k) = model.Model.Loss(Tensor.FromArray(x, m, 3, size, size),
                        model.Ids(caps, truncate: true), Tensor.FromArray(eps, m, zc), 1f);
                    recon += r.Item() * m; kl += k.Item() * m;
                }
            }
        recon = recon / n + model.Model.LikelihoodConstant(per); kl /= n;
        return ((recon + kl) / per, recon, kl);
    }
}
