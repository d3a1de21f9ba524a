using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Models.Diffusion;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Unclip;

// Dimension legend: B batch (M this rank's shard), E CLIP embedding width, C = 3, H = W = image size.

/// <summary>
/// Trains unCLIP's decoder (Ramesh et al. 2022, section 2.1): DDPM with the v target on the training images, each
/// conditioned on its own CLIP image embedding from the frozen CLIP (computed once), which is replaced by the zero
/// vector with probability caption_dropout ("we enable classifier-free guidance by randomly setting the CLIP
/// embeddings to zero ... 10% of the time"). The loop (AdamW, EMA, validation, early stop, checkpoints, exact resume,
/// data-parallel) is <see cref="TrainingSession"/>; the val loss is the plain MSE of the EMA weights on fixed val
/// images, steps and noise; each checkpoint's grid shows 8 val images (top) and what the decoder draws from their
/// embeddings (bottom).
///
/// Run directory, besides the session's files: config.json, clip/ (the frozen CLIP); model/ is an unCLIP model
/// directory with the decoder only (variations work; text-to-image needs 'pictor train prior --decoder').
/// </summary>
public static class DecoderTrainer
{
    public const string Family = "decoder", CheckpointFormat = "pictor-unclip-decoder-checkpoint";
    private const int SampleImages = 8;

    public static TrainResult Start(string runDir, TrainOptions opt, TrainControl ctl)
    {
        opt = opt with { Model = Family };
        var (pipe, clipDir, train, val) = UnclipRun.Begin(runDir, opt, ctl);
        ctl.RootLog?.Invoke($"model: unCLIP decoder preset {opt.Preset}, "
            + $"{pipe.DecoderParameters().Sum(p => (long)p.Param.Numel):N0} parameters, reading the "
            + $"{pipe.Config.EmbedDim}-wide image embeddings of {opt.Clip} as {pipe.Config.EmbedTokens} tokens");
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
        private readonly ImageCaptionSet val;
        private readonly ImageCaptionSet train;
        private readonly float[] trainEmb, valEmb, x0, eps, xt, target, emb, tf;
        private readonly int[] ts;

        public Session(string runDir, TrainOptions opt, UnclipPipeline pipe, string clipDir, ImageCaptionSet train,
            ImageCaptionSet val, TrainControl ctl)
            : this(runDir, opt, pipe, new UnclipPipeline(pipe.Config, pipe.Clip, new Rng(0)), clipDir, train, val,
                ctl) { }

        private Session(string runDir, TrainOptions opt, UnclipPipeline pipe, UnclipPipeline emaPipe, string clipDir,
            ImageCaptionSet train, ImageCaptionSet val, TrainControl ctl)
            : base(runDir, opt, ctl, CheckpointFormat, pipe.DecoderParameters(), emaPipe.DecoderParameters(),
                train.Count)
        {
            this.pipe = pipe; this.emaPipe = emaPipe; this.clipDir = clipDir; this.train = train; this.val = val;
            trainEmb = UnclipRun.Embeddings(pipe.Clip, train);   // (N, E), the same on every rank
            valEmb = UnclipRun.Embeddings(pipe.Clip, val);
            int b = opt.Batch, m = Shard.Count, per = 3 * opt.ImageSize * opt.ImageSize, e = pipe.Config.EmbedDim;
            x0 = new float[m * per]; xt = new float[m * per]; target = new float[m * per]; emb = new float[m * e];
            eps = new float[b * per]; ts = new int[b]; tf = new float[b];
        }

        protected override void SetTraining(bool on) => pipe.Train(on);

        protected override Tensor Loss()
        {
            int size = Opt.ImageSize, per = 3 * size * size, o = Shard.Offset, b = Shard.Count,
                e = pipe.Config.EmbedDim;
            // drawn for the whole batch, computed for the shard's images (i - o) only
            for (int i = 0; i < Opt.Batch; i++)
            {
                int idx = NextIndex();
                bool dropped = Rng.NextFloat() < Opt.CaptionDropout;
                ts[i] = Rng.NextInt(pipe.DecoderSchedule.Steps); tf[i] = ts[i];
                if (!Shard.Contains(i)) continue;
                int j = i - o;
                train.Read(idx, x0.AsSpan(j * per, per));
                if (dropped) emb.AsSpan(j * e, e).Clear();
                else trainEmb.AsSpan(idx * e, e).CopyTo(emb.AsSpan(j * e, e));
            }
            Rng.FillNormal(eps);
            var epsShard = eps.AsSpan(o * per, b * per); var tsShard = ts.AsSpan(o, b);
            pipe.DecoderSchedule.AddNoise(x0, epsShard, tsShard, xt);
            pipe.DecoderSchedule.Target(Prediction.V, x0, epsShard, tsShard, target);
            var outp = pipe.DecoderForward(Tensor.FromArray(xt, b, 3, size, size), tf[o..(o + b)],
                Tensor.FromArray(emb, b, e));
            var loss = Ops.MseLoss(outp, Tensor.FromArray(target, b, 3, size, size));
            return World.Size == 1 ? loss : Ops.MulScalar(loss, Shard.Fraction);
        }

        /// <summary>MSE of the EMA decoder on the first val images with their own embeddings, fixed steps and
        /// noise.</summary>
        protected override Validation Validate()
        {
            int n = Math.Min(Opt.ValImages, val.Count), size = Opt.ImageSize, per = 3 * size * size,
                e = pipe.Config.EmbedDim;
            var vr = new Rng(Opt.Seed + 77);
            double sum = 0; const int chunk = 32;
            using (Autograd.NoGrad())
                for (int s = 0; s < n; s += chunk)
                {
                    int m = Math.Min(chunk, n - s);
                    var x = new float[m * per]; var noise = new float[m * per]; var xn = new float[m * per];
                    var tgt = new float[m * per]; var t = new int[m]; var tfl = new float[m];
                    for (int i = 0; i < m; i++)
                    {
                        val.Read(s + i, x.AsSpan(i * per, per));
                        t[i] = vr.NextInt(emaPipe.DecoderSchedule.Steps); tfl[i] = t[i];
                    }
                    vr.FillNormal(noise);
                    emaPipe.DecoderSchedule.AddNoise(x, noise, t, xn);
                    emaPipe.DecoderSchedule.Target(Prediction.V, x, noise, t, tgt);
                    using (TensorScope.Begin())
                        sum += Ops.MseLoss(emaPipe.DecoderForward(Tensor.FromArray(xn, m, 3, size, size), tfl,
                            Tensor.FromArray(valEmb[(s * e)..((s + m) * e)], m, e)),
                            Tensor.FromArray(tgt, m, 3, size, size)).Item() * m;
                }
            return new(sum / n, "");
        }

        protected override void ExportModel(string dir) =>
            emaPipe.Save(dir, clipDir, prior: null, decoder: UnclipRun.Weights(emaPipe.DecoderParameters()));

        /// <summary>Val images 0..7 (top row) and the EMA decoder's images from their embeddings (bottom row): seeds
        /// 0..7, 20 DPM-Solver++ steps, the config's guidance.</summary>
        protected override void SaveSamples(string path)
        {
            int n = Math.Min(SampleImages, val.Count), size = Opt.ImageSize, per = 3 * size * size,
                e = pipe.Config.EmbedDim;
            var imgs = emaPipe.Decode(valEmb[..(n * e)], new SamplingSettings("dpm++", 20,
                (float)emaPipe.Config.DefaultCfg));
            var cells = new List<Image>();
            var x = new float[per];
            for (int i = 0; i < n; i++) { val.Read(i, x); cells.Add(Image.FromTensor(Tensor.FromArray(x, 3, size,
                size))); }
            for (int i = 0; i < n; i++)
                cells.Add(Image.FromTensor(Ops.Reshape(Ops.Narrow(imgs, 0, i, 1), 3, size, size)));
            Image.Grid(cells, n).Save(path, [new("Description", "val images (top) and their decoded embeddings")]);
        }
    }
}
