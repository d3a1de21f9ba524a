using System.Globalization;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Models.Diffusion;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Unclip;

// Dimension legend: B batch (M this rank's shard), E CLIP embedding width, S CLIP text tokens, N images of a split.

/// <summary>
/// Trains unCLIP's diffusion prior (Ramesh et al. 2022, section 2.1): per image one of its captions (or the empty
/// caption with probability caption_dropout, for guidance), its CLIP image embedding z from the frozen CLIP (computed
/// once) scaled by sqrt(E), a uniform step t and z_t = alpha_t z + sigma_t eps; the loss is the MSE between the
/// prior's prediction and z itself. Validation: that MSE of the EMA weights on fixed val captions, steps and noise,
/// and the mean cosine similarity between the embedding the prior samples for a val caption (10 DDIM steps, the
/// config's candidates and guidance) and the caption's own image's; the best weights are those with the highest
/// cosine. Each checkpoint's grid shows, for 8 val captions, their own image (top) and the training image whose
/// embedding is nearest the sampled one (bottom): what the prior means, without a decoder.
///
/// Run directory, besides the session's files: config.json, clip/; model/ is an unCLIP model directory with the prior,
/// and with --decoder DIR that decoder too (then it generates from text).
/// </summary>
public static class PriorTrainer
{
    public const string Family = "prior", CheckpointFormat = "pictor-unclip-prior-checkpoint";
    private const int SamplePrompts = 8, CosineCaptions = 64;

    public static TrainResult Start(string runDir, TrainOptions opt, TrainControl ctl)
    {
        opt = opt with { Model = Family };
        var (pipe, clipDir, train, val) = UnclipRun.Begin(runDir, opt, ctl);
        if (opt.Decoder != "") UnclipRun.DecoderWeights(opt.Decoder, pipe);   // refuse a decoder that does not fit now
        ctl.RootLog?.Invoke($"model: unCLIP prior preset {opt.Preset}, "
            + $"{pipe.PriorParameters().Sum(p => (long)p.Param.Numel):N0} parameters, from the text to the image "
            + $"embeddings of {opt.Clip}");
        return new Session(runDir, opt, pipe, clipDir, train, val, ctl).Run(null);
    }

    public static TrainResult Resume(string runDir, TrainControl ctl, TrainOptions? given = null,
        IEnumerable<string>? givenFields = null)
    {
        var (opt, pipe, clipDir, train, val, ckpt) = UnclipRun.Reopen(runDir, Family, ctl, given, givenFields);
        return new Session(runDir, opt, pipe, clipDir, train, val, ctl).Run(SafeTensorsFile.Read(ckpt));
    }

    private sealed class Session : TrainingSession
    {
        private readonly UnclipPipeline pipe, emaPipe;
        private readonly string clipDir;
        private readonly ImageCaptionSet train, val;
        private readonly float[] trainEmb, valEmb, z0, eps, zt, tf;
        private readonly int[] ts;
        private readonly string[] captions;

        public Session(string runDir, TrainOptions opt, UnclipPipeline pipe, string clipDir, ImageCaptionSet train,
            ImageCaptionSet val, TrainControl ctl)
            : this(runDir, opt, pipe, new UnclipPipeline(pipe.Config, pipe.Clip, new Rng(0)), clipDir, train, val,
                ctl) { }

        private Session(string runDir, TrainOptions opt, UnclipPipeline pipe, UnclipPipeline emaPipe, string clipDir,
            ImageCaptionSet train, ImageCaptionSet val, TrainControl ctl)
            : base(runDir, opt, ctl, CheckpointFormat, pipe.PriorParameters(), emaPipe.PriorParameters(), train.Count)
        {
            this.pipe = pipe; this.emaPipe = emaPipe; this.clipDir = clipDir; this.train = train; this.val = val;
            trainEmb = UnclipRun.Embeddings(pipe.Clip, train);   // (N, E), the same on every rank
            valEmb = UnclipRun.Embeddings(pipe.Clip, val);
            int b = opt.Batch, m = Shard.Count, e = pipe.Config.EmbedDim;
            z0 = new float[m * e]; zt = new float[m * e]; eps = new float[b * e];
            ts = new int[b]; tf = new float[b]; captions = new string[b];
        }

        protected override void SetTraining(bool on) => pipe.Prior.Train(on);

        protected override Tensor Loss()
        {
            int o = Shard.Offset, b = Shard.Count, e = pipe.Config.EmbedDim;
            float scale = MathF.Sqrt(e);
            for (int i = 0; i < Opt.Batch; i++)
            {
                int idx = NextIndex();
                var caps = train.Captions[idx];
                string cap = caps[Rng.NextInt(caps.Count)];
                captions[i] = Rng.NextFloat() < Opt.CaptionDropout ? "" : cap;
                ts[i] = Rng.NextInt(pipe.PriorSchedule.Steps); tf[i] = ts[i];
                if (!Shard.Contains(i)) continue;
                for (int k = 0; k < e; k++) z0[(i - o) * e + k] = trainEmb[idx * e + k] * scale;
            }
            Rng.FillNormal(eps);
            var tsShard = ts.AsSpan(o, b);
            pipe.PriorSchedule.AddNoise(z0, eps.AsSpan(o * e, b * e), tsShard, zt);
            var (tokens, textEmb) = pipe.TextConditioning(captions[o..(o + b)]);
            var outp = pipe.PriorForward(Tensor.FromArray(zt, b, e), tf[o..(o + b)], tokens, textEmb);
            var loss = Ops.MseLoss(outp, Tensor.FromArray(z0, b, e));   // x0 target: z itself
            return World.Size == 1 ? loss : Ops.MulScalar(loss, Shard.Fraction);
        }

        protected override string BestBy => "val cosine distance (1 - cosine)";

        protected override Validation Validate()
        {
            int n = Math.Min(Opt.ValImages, val.Count), e = pipe.Config.EmbedDim;
            float scale = MathF.Sqrt(e);
            var vr = new Rng(Opt.Seed + 77);
            double sum = 0; const int chunk = 64;
            using (Autograd.NoGrad())
                for (int s = 0; s < n; s += chunk)
                {
                    int m = Math.Min(chunk, n - s);
                    var z = new float[m * e]; var noise = new float[m * e]; var zn = new float[m * e];
                    var t = new int[m]; var tfl = new float[m];
                    for (int i = 0; i < m; i++)
                    {
                        for (int k = 0; k < e; k++) z[i * e + k] = valEmb[(s + i) * e + k] * scale;
                        t[i] = vr.NextInt(emaPipe.PriorSchedule.Steps); tfl[i] = t[i];
                    }
                    vr.FillNormal(noise);
                    emaPipe.PriorSchedule.AddNoise(z, noise, t, zn);
                    using (TensorScope.Begin())
                    {
                        var (tok, te) = emaPipe.TextConditioning(Enumerable.Range(s, m).Select(i => val.Captions[i][0])
                            .ToList());
                        sum += Ops.MseLoss(emaPipe.PriorForward(Tensor.FromArray(zn, m, e), tfl, tok, te),
                            Tensor.FromArray(z, m, e)).Item() * m;
                    }
                }
            double cos = SampledCosine(Math.Min(CosineCaptions, val.Count));
            return new(sum / n, string.Create(CultureInfo.InvariantCulture,
                $", sampled-embedding cosine with the caption's image {cos:F4}"), Key: 1 - cos);
        }

        /// <summary>Mean cosine between the EMA prior's sampled embedding for the first val captions and their own
        /// images' embeddings (10 DDIM steps, seeds 0..n-1).</summary>
        private double SampledCosine(int n)
        {
            var caps = Enumerable.Range(0, n).Select(i => val.Captions[i][0]).ToList();
            var z = emaPipe.PriorSample(caps, new SamplingSettings("ddim", 10, 1f));
            int e = pipe.Config.EmbedDim;
            double sum = 0;
            for (int i = 0; i < n; i++) sum += Clip.ClipPipeline.Cosine(z, i, valEmb, i, e);
            return sum / n;
        }

        protected override void ExportModel(string dir) =>
            emaPipe.Save(dir, clipDir, prior: UnclipRun.Weights(emaPipe.PriorParameters()),
                decoder: Opt.Decoder == "" ? null : UnclipRun.DecoderWeights(Opt.Decoder, emaPipe));

        /// <summary>For 8 val captions: their own image (top) and the training image nearest the embedding the EMA
        /// prior samples for them (bottom; seeds 0..7, 20 DPM-Solver++ steps).</summary>
        protected override void SaveSamples(string path)
        {
            int n = Math.Min(SamplePrompts, val.Count), size = Opt.ImageSize, per = 3 * size * size,
                e = pipe.Config.EmbedDim;
            var caps = Enumerable.Range(0, n).Select(i => val.Captions[i][0]).ToList();
            var z = emaPipe.PriorSample(caps, new SamplingSettings("dpm++", 20, 1f));
            var cells = new List<Image>(); var x = new float[per];
            for (int i = 0; i < n; i++) { val.Read(i, x); cells.Add(Image.FromTensor(Tensor.FromArray(x, 3, size,
                size))); }
            for (int i = 0; i < n; i++)
            {
                int best = 0; float bestCos = float.NegativeInfinity;
                for (int j = 0; j < train.Count; j++)
                {
                    float c = Clip.ClipPipeline.Cosine(z, i, trainEmb, j, e);
                    if (c > bestCos) { bestCos = c; best = j; }
                }
                train.Read(best, x);
                cells.Add(Image.FromTensor(Tensor.FromArray(x, 3, size, size)));
            }
            Image.Grid(cells, n).Save(path, [new("prompts", string.Join("\n", caps))]);
        }
    }
}
