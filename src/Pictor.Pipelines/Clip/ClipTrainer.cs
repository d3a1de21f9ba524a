using System.Globalization;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Pipelines.Clip;
using Pictor.Text;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Clip;

/// <summary>Zero-shot retrieval on a val split: each image ranks every distinct caption of the set, each caption every
/// image. Top-1 accuracy: image to text (the image's own caption ranks first) and text to image (an image with that
/// caption ranks first).</summary>
public sealed record ClipRetrieval(int Images, int Captions, double ImageToText, double TextToImage, double ValLoss)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"retrieval top-1 image->text {ImageToText:P1}, text->image {TextToImage:P1} ({Images} images, "
            + $"{Captions} captions)");
}

/// <summary>
/// Trains CLIP on a captioned image folder: each step takes B images with one of their captions and minimises the
/// symmetric contrastive loss (<see cref="Models.Clip.ClipModel.Loss"/>). The loop is <see cref="TrainingSession"/>;
/// validation reports the contrastive loss of the EMA weights on fixed val batches and zero-shot retrieval accuracy;
/// each checkpoint saves a retrieval picture: per row, a val caption's own image, then the 3 val images CLIP ranks
/// highest for that caption.
/// </summary>
public static class ClipTrainer
{
    public const string Family = "clip", CheckpointFormat = "pictor-clip-checkpoint";

    public static TrainResult Start(string runDir, TrainOptions opt, TrainControl ctl)
    {
        opt = opt with { Model = Family };
        var (train, val) = TrainingSession.BeginRun(runDir, opt, ctl);
        var tok = BpeTokenizer.Train(train.Captions.SelectMany(c => c), opt.Vocab);
        var clip = new ClipPipeline(opt.Preset, opt.ImageSize, ClipPipeline.FromPreset(opt.Preset, tok.VocabSize,
            opt.Context), tok, new Rng(opt.Seed));
        TrainingSession.WriteRunFiles(runDir, clip.ToJson(), tok, opt, ctl);
        ctl.RootLog?.Invoke($"model: CLIP preset {opt.Preset}, {clip.Model.ParameterCount():N0} parameters, "
            + $"{clip.Config.EmbedDim}-wide embeddings");
        return new Session(runDir, opt, clip, train, val, ctl).Run(null);
    }

    public static TrainResult Resume(string runDir, TrainControl ctl, TrainOptions? given = null,
        IEnumerable<string>? givenFields = null)
    {
        var (opt, ckpt) = TrainingSession.OpenRun(runDir, Family, given, givenFields);
        string cfgPath = Path.Combine(runDir, ClipPipeline.ConfigFile);
        var (preset, size, config) = ClipPipeline.ParseConfig(File.ReadAllText(cfgPath), cfgPath);
        var tok = BpeTokenizer.Load(Path.Combine(runDir, ClipPipeline.TokenizerDir));
        var clip = new ClipPipeline(preset, size, config, tok, new Rng(opt.Seed));
        if (clip.ToJson() != new ClipPipeline(opt.Preset, opt.ImageSize, ClipPipeline.FromPreset(opt.Preset,
            tok.VocabSize, opt.Context), tok, new Rng(0)).ToJson())
            throw new FormatException($"{cfgPath} does not match preset '{opt.Preset}' of {TrainingSession.TrainFile}; "
                + $"the run was edited or made by another Pictor version");
        var (train, val) = TrainingSession.LoadSplits(opt, ctl);
        ctl.RootLog?.Invoke($"resuming {runDir} from {Path.GetFileName(ckpt)}");
        return new Session(runDir, opt, clip, train, val, ctl).Run(SafeTensorsFile.Read(ckpt));
    }

    /// <summary>Zero-shot retrieval over the first <paramref name="max"/> images of <paramref name="set"/> (their first
    /// captions) and the contrastive loss of that subset in chunks of <paramref name="batch"/>.</summary>
    public static ClipRetrieval Evaluate(ClipPipeline clip, ImageCaptionSet set, int max = int.MaxValue, int batch = 32)
    {
        int n = Math.Min(max, set.Count), size = set.Size, per = 3 * size * size, e = clip.Config.EmbedDim;
        var x = new float[n * per];
        for (int i = 0; i < n; i++) set.Read(i, x.AsSpan(i * per, per));
        var images = Tensor.FromArray(x, n, 3, size, size);
        var captions = Enumerable.Range(0, n).Select(i => set.Captions[i][0]).ToList();
        var distinct = captions.Distinct().ToList();
        var I = clip.ImageEmbeddings(images); var T = clip.TextEmbeddings(distinct);
        int i2t = 0, t2i = 0;
        for (int i = 0; i < n; i++)
        {
            int best = Enumerable.Range(0, distinct.Count).MaxBy(j => ClipPipeline.Cosine(I, i, T, j, e));
            if (distinct[best] == captions[i]) i2t++;
        }
        for (int j = 0; j < distinct.Count; j++)
        {
            int best = Enumerable.Range(0, n).MaxBy(i => ClipPipeline.Cosine(I, i, T, j, e));
            if (captions[best] == distinct[j]) t2i++;
        }
        double loss = 0;
        using (Autograd.NoGrad())
            for (int s = 0; s < n; s += batch)
            {
                int m = Math.Min(batch, n - s);
                using (TensorScope.Begin())
                    loss += clip.Model.Loss(Ops.Contiguous(Ops.Narrow(images, 0, s, m)),
                        clip.Tokenize(captions.GetRange(s, m))).Item() * m;
            }
        return new ClipRetrieval(n, distinct.Count, (double)i2t / n, (double)t2i / distinct.Count, loss / n);
    }

    private sealed class Session : TrainingSession
    {
        private readonly ClipPipeline clip, evalClip;
        private readonly ImageCaptionSet train, val;
        private readonly float[] x;

        public Session(string runDir, TrainOptions opt, ClipPipeline clip, ImageCaptionSet train,
            ImageCaptionSet val, TrainControl ctl)
            : this(runDir, opt, clip, new ClipPipeline(clip.Preset, clip.ImageSize, clip.Config, clip.Tokenizer,
                new Rng(0)), train, val, ctl) { }

        private Session(string runDir, TrainOptions opt, ClipPipeline clip, ClipPipeline evalClip,
            ImageCaptionSet train, ImageCaptionSet val, TrainControl ctl)
            : base(runDir, opt, ctl, CheckpointFormat, clip.Model.NamedParameters(), evalClip.Model.NamedParameters(),
                train.Count)
        {
            this.clip = clip; this.evalClip = evalClip; this.train = train; this.val = val;
            x = new float[opt.Batch * 3 * opt.ImageSize * opt.ImageSize];
        }

        protected override void SetTraining(bool on) => clip.Model.Train(on);

        protected override Tensor Loss()
        {
            // drawn for the whole batch, encoded for the shard's pairs (i - o) only
            int size = Opt.ImageSize, per = 3 * size * size, o = Shard.Offset, b = Shard.Count;
            var captions = new string[b];
            for (int i = 0; i < Opt.Batch; i++)
            {
                int idx = NextIndex();
                var caps = train.Captions[idx];
                string caption = caps[Rng.NextInt(caps.Count)];
                if (!Shard.Contains(i)) continue;
                train.Read(idx, x.AsSpan((i - o) * per, per));
                captions[i - o] = caption;
            }
            var images = Tensor.FromArray(x[..(b * per)], b, 3, size, size);
            if (World.Size == 1) return clip.Model.Loss(images, clip.Tokenize(captions));
            var l = clip.Model.Loss(images, clip.Tokenize(captions), Gather, World.Size);
            // every rank computed the whole batch's loss: report its 1/ranks share (the sum over ranks is the loss)
            return Ops.AddScalar(l, l.Item() / World.Size - l.Item());
        }

        /// <summary>The whole batch's embeddings [B, E] from every rank's [M, E]: the others' as constants, this
        /// rank's (with gradient) in its place.</summary>
        private Tensor Gather(Tensor local)
        {
            int m = local.Shape[0], e = local.Shape[1], o = Shard.Offset;
            var all = new float[World.Size * m * e];
            World.Allgather(local.ToArray(), all);
            var parts = new List<Tensor>();
            if (o > 0) parts.Add(Tensor.FromArray(all[..(o * e)], o, e));
            parts.Add(local);
            int rest = Opt.Batch - o - m;
            if (rest > 0) parts.Add(Tensor.FromArray(all[((o + m) * e)..], rest, e));
            return Ops.Concat(parts, 0);
        }

        /// <summary>The best CLIP is the one that retrieves best (reranking and R-precision use the ranking, not the
        /// loss): 1 - mean of the two top-1 accuracies. The contrastive val loss can rise while retrieval still
        /// improves, as the learned temperature sharpens the softmax.</summary>
        protected override Validation Validate()
        {
            var r = Evaluate(evalClip, val, Opt.ValImages, Opt.Batch);
            return new(r.ValLoss, ", " + r, 1 - (r.ImageToText + r.TextToImage) / 2);
        }

        protected override string BestBy => "retrieval error";

        protected override void ExportModel(string dir) => evalClip.Save(dir);

        /// <summary>For the first 8 val captions: the caption's image, then the 3 val images CLIP ranks highest for
        /// it.</summary>
        protected override void SaveSamples(string path)
        {
            int n = Math.Min(Opt.ValImages, val.Count), size = Opt.ImageSize, per = 3 * size * size,
                e = evalClip.Config.EmbedDim;
            var xs = new float[n * per];
            for (int i = 0; i < n; i++) val.Read(i, xs.AsSpan(i * per, per));
            var I = evalClip.ImageEmbeddings(Tensor.FromArray(xs, n, 3, size, size));
            var queries = Enumerable.Range(0, Math.Min(8, n)).ToList();
            var T = evalClip.TextEmbeddings(queries.Select(q => val.Captions[q][0]).ToList());
            Image Tile(int i) => Image.FromTensor(Tensor.FromArray(xs.AsSpan(i * per, per).ToArray(), 3, size, size));
            var tiles = new List<Image>();
            foreach (int q in queries)
            {
                tiles.Add(Tile(q));
                tiles.AddRange(Enumerable.Range(0, n).OrderByDescending(i => ClipPipeline.Cosine(I, i, T, q, e))
                    .Take(3).Select(Tile));
            }
            Image.Grid(tiles, 4)
                .Save(path,
                [new("rows",
                "each row: a val caption's own image, then the 3 val images CLIP ranks highest for that caption")]);
        }
    }
}
