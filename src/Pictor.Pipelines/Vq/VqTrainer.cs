using System.Globalization;
using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Pipelines.Vq;
using Pictor.Pipelines.Inside;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Vq;

/// <summary>Reconstruction quality and codebook use of a VQ-VAE on val images.</summary>
/// <param name="Mse">Mean squared error in [-1, 1] pixel units.</param>
/// <param name="Psnr">Mean over images of 10 log10(peak^2 / mse_image), peak = 2 (pixels in [-1, 1]; the same number
/// as with [0, 1] pixels and peak 1), in dB.</param>
/// <param name="Perplexity">exp(entropy) of the code histogram over all val tokens (the codebook size at most).</param>
/// <param name="Used">Fraction of codebook entries used at least once.</param>
/// <param name="Codebook">The val codes' usage: counts, dead entries, the histogram (<see cref="CodebookHealth"/>).
/// </param>
public sealed record VqReport(int Images, double Mse, double Psnr, double Perplexity, double Used,
    CodebookHealth Codebook)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"PSNR {Psnr:F2} dB, perplexity {Perplexity:F1}, codes used {Used:P0}, dead {Codebook.Dead}");
}

/// <summary>
/// Trains the VQ-VAE image tokenizer (van den Oord et al. 2017): loss = ||x - dec(q(enc(x)))||^2 + beta ||enc(x) -
/// sg[e]||^2 by AdamW on the encoder and decoder; after each backward the codebook takes its moving-average step and
/// dead entries restart from the batch's latents (<see cref="Models.Vq.VectorQuantizer.Update"/>). Captions are not
/// used. The loop is <see cref="TrainingSession"/>; validation reports reconstruction PSNR and codebook use (the best
/// one also as RUN/model/metrics.json; the latest usage histogram as RUN/codebook.png), and each checkpoint saves a
/// reconstruction grid (val images above, reconstructions below). The EMA of weights is off by default for this
/// trainer (--ema 0): the codebook is itself a moving average, and an averaged encoder would not match it. The
/// discrete-VAE presets (dvae-*) train DALL-E's Gumbel-softmax tokenizer instead: loss = MSE + kl_weight KL(q ||
/// uniform), codebook trained by the optimiser, temperature annealed by <see cref="GumbelTemperature"/>.
/// </summary>
public static class VqTrainer
{
    public const string Family = "vqvae", CheckpointFormat = "pictor-vqvae-checkpoint", MetricsFile = "metrics.json",
        CodebookFile = "codebook.png";
    private const int GridImages = 8;

    public static TrainResult Start(string runDir, TrainOptions opt, TrainControl ctl)
    {
        opt = opt with { Model = Family };
        var (train, val) = TrainingSession.BeginRun(runDir, opt, ctl);
        var model = new VqModel(opt.Preset, opt.ImageSize, VqModel.FromPreset(opt.Preset), new Rng(opt.Seed));
        TrainingSession.WriteRunFiles(runDir, model.ToJson(), null, opt, ctl);
        ctl.RootLog?.Invoke($"model: VQ-VAE preset {opt.Preset}, {model.Net.ParameterCount():N0} parameters and "
            + $"buffers, "
            + $"{model.Config.Codes} codes of width {model.Config.CodeDim}, {model.Grid}x{model.Grid} "
            + $"tokens per image");
        return new Session(runDir, opt, model, train, val, ctl).Run(null);
    }

    public static TrainResult Resume(string runDir, TrainControl ctl, TrainOptions? given = null,
        IEnumerable<string>? givenFields = null)
    {
        var (opt, ckpt) = TrainingSession.OpenRun(runDir, Family, given, givenFields);
        string cfgPath = Path.Combine(runDir, VqModel.ConfigFile);
        var (preset, size, cfg) = VqModel.ParseConfig(File.ReadAllText(cfgPath), cfgPath);
        var model = new VqModel(preset, size, cfg, new Rng(opt.Seed));
        if (model.ToJson() != new VqModel(opt.Preset, opt.ImageSize, VqModel.FromPreset(opt.Preset),
            new Rng(0)).ToJson())
            throw new FormatException($"{cfgPath} does not match preset '{opt.Preset}' at size {opt.ImageSize} of "
                + $"{TrainingSession.TrainFile}; the run was edited or made by another Pictor version");
        var (train, val) = TrainingSession.LoadSplits(opt, ctl);
        ctl.RootLog?.Invoke($"resuming {runDir} from {Path.GetFileName(ckpt)}");
        return new Session(runDir, opt, model, train, val, ctl).Run(SafeTensorsFile.Read(ckpt));
    }

    /// <summary>The discrete VAE's Gumbel-softmax temperature at <paramref name="step"/> of <paramref name="steps"/>:
    /// cosine from 1 down to 1/16 over the run (Ramesh et al. 2021 anneal tau from 1 to 1/16 over their first 150k
    /// updates; a run here is much shorter, so the schedule spans the run).</summary>
    public static float GumbelTemperature(long step, long steps)
    {
        const double lo = 1.0 / 16;
        double f = Math.Clamp((double)step / Math.Max(1, steps), 0, 1);
        return (float)(lo + (1 - lo) * 0.5 * (1 + Math.Cos(Math.PI * f)));
    }

    /// <summary>Reconstruction and codebook report of <paramref name="model"/> on the first <paramref name="max"/>
    /// images of <paramref name="set"/>.</summary>
    public static VqReport Evaluate(VqModel model, ImageCaptionSet set, int max = int.MaxValue)
    {
        int n = Math.Min(max, set.Count), size = set.Size, per = 3 * size * size;
        if (size != model.ImageSize)
            Throw.Argument($"images are {size}x{size}, the VQ-VAE expects {model.ImageSize}x{model.ImageSize}");
        double sse = 0, psnr = 0; var codes = new List<int>(n * model.Grid * model.Grid);
        const int chunk = 32;
        using (Autograd.NoGrad())
            for (int s = 0; s < n; s += chunk)
            {
                int m = Math.Min(chunk, n - s);
                var x = new float[m * per];
                for (int i = 0; i < m; i++) set.Read(s + i, x.AsSpan(i * per, per));
                using (TensorScope.Begin())
                {
                    var (y, _, _, _, _, c) = model.Net.Forward(Tensor.FromArray(x, m, 3, size, size));
                    var Y = y.Span;
                    for (int i = 0; i < m; i++)
                    {
                        double e = 0;
                        for (int j = 0; j < per; j++) { double d = Y[i * per + j] - x[i * per + j]; e += d * d; }
                        sse += e;
                        psnr += 10 * Math.Log10(4.0 / Math.Max(e / per, 1e-12));
                    }
                    codes.AddRange(c.Data.ToArray());
                }
            }
        var (perplexity, used) = model.Net.Usage(codes.ToArray());
        return new VqReport(n, sse / ((double)n * per), psnr / n, perplexity, used,
            CodebookHealth.FromCodes(codes.ToArray(), model.Net.Config.Codes, $"{codes.Count} val tokens"));
    }

    private sealed class Session : TrainingSession
    {
        private readonly VqModel model, evalModel;
        private readonly ImageCaptionSet train, val;
        private readonly float[] x;
        private Tensor? latent; private IntTensor? codes;
        private VqReport? last;

        public Session(string runDir, TrainOptions opt, VqModel model, ImageCaptionSet train,
            ImageCaptionSet val, TrainControl ctl)
            : this(runDir, opt, model, new VqModel(model.Preset, model.ImageSize, model.Config, new Rng(0)),
                train, val, ctl) { }

        private Session(string runDir, TrainOptions opt, VqModel model, VqModel evalModel, ImageCaptionSet train,
            ImageCaptionSet val, TrainControl ctl)
            : base(runDir, opt, ctl, CheckpointFormat, model.Net.NamedParameters(), evalModel.Net.NamedParameters(),
                train.Count)
        {
            this.model = model; this.evalModel = evalModel; this.train = train; this.val = val;
            x = new float[opt.Batch * 3 * opt.ImageSize * opt.ImageSize];
        }

        protected override void SetTraining(bool on) => model.Net.Train(on);

        protected override Tensor Loss()
        {
            // the whole batch's order, the shard's images (i - o)
            int size = Opt.ImageSize, per = 3 * size * size, o = Shard.Offset, b = Shard.Count;
            for (int i = 0; i < Opt.Batch; i++)
            {
                int idx = NextIndex();
                if (Shard.Contains(i)) train.Read(idx, x.AsSpan((i - o) * per, per));
            }
            if (model.Net.Gumbel is { } g) g.Temperature = GumbelTemperature(Step, Opt.Steps);
            var (_, _, _, loss, z, c) = model.Net.Forward(Tensor.FromArray(x[..(b * per)], b, 3, size, size),
                LocalRng());
            latent = z; codes = c;
            return World.Size == 1 ? loss : Ops.MulScalar(loss, Shard.Fraction);
        }

        /// <summary>The codebook's moving-average update, from the whole batch's latents and codes (gathered from
        /// every rank, so every rank makes the same update, and the same restarts from <see cref="Rng"/>).</summary>
        protected override void AfterBackward()
        {
            if (model.Net.Quantizer is not { } q) return;
            if (World.Size == 1) { q.Update(latent!, codes!.Data, Rng); return; }
            var z = latent!.ToArray(); var c = codes!.Data;                       // (M, D, h, w), (M, h, w)
            var zAll = new float[World.Size * z.Length]; var cAll = new float[World.Size * c.Length];
            World.Allgather(z, zAll);
            World.Allgather(c.Select(k => (float)k).ToArray(), cAll);             // codes < 2^24: exact as floats
            int[] shape = [Opt.Batch, .. latent.Shape[1..]];
            q.Update(Tensor.FromArray(zAll, shape), cAll.Select(k => (int)k).ToArray(), Rng);
        }

        protected override Validation Validate()
        {
            var r = last = Evaluate(evalModel, val, Opt.ValImages);
            r.Codebook.Histogram().Save(Path.Combine(RunDir, CodebookFile));   // the val codes' usage, this step
            return new(r.Mse, ", " + r);
        }

        /// <summary>The model directory, with the validation report of these weights as metrics.json.</summary>
        protected override void ExportModel(string dir)
        {
            evalModel.Save(dir);
            var r = last!;
            AtomicFile.WriteAllText(Path.Combine(dir, MetricsFile), new JsonObject
            {
                ["step"] = Step, ["val_images"] = r.Images, ["val_mse"] = r.Mse, ["psnr_db"] = r.Psnr,
                    ["perplexity"] = r.Perplexity, ["codes_used"] = r.Used, ["dead_codes"] = r.Codebook.Dead,
            }.ToJsonString());
        }

        /// <summary>The first val images (top row) and their reconstructions (bottom row).</summary>
        protected override void SaveSamples(string path)
        {
            int n = Math.Min(GridImages, val.Count), size = Opt.ImageSize, per = 3 * size * size;
            var xs = new float[n * per];
            for (int i = 0; i < n; i++) val.Read(i, xs.AsSpan(i * per, per));
            var input = Tensor.FromArray(xs, n, 3, size, size);
            Tensor recon;
            using (Autograd.NoGrad()) recon = evalModel.Net.Forward(input).Reconstruction;
            var tiles = new List<Image>();
            foreach (var t in new[] { input, recon })
                for (int i = 0; i < n; i++)
                    tiles.Add(Image.FromTensor(Ops.Reshape(Ops.Narrow(t, 0, i, 1), 3, size, size)));
            Image.Grid(tiles, n).Save(path);
        }
    }
}
