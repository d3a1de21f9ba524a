using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Unclip;

// Dimension legend: N images of a split, E CLIP embedding width, C = 3, H = W = image size.

/// <summary>What the prior's and the decoder's runs share: the frozen CLIP copied into RUN/clip (so the run does not
/// depend on where the CLIP was), the config from the preset and that CLIP, and the CLIP image embeddings of a
/// split, computed once.</summary>
internal static class UnclipRun
{
    public const string ClipDir = "clip";

    /// <summary>A new run: checks the options, loads the CLIP given by --clip-model, copies it into RUN/clip (rank 0),
    /// and writes config.json and train.json.</summary>
    public static (UnclipPipeline Pipe, string ClipDir, ImageCaptionSet Train, ImageCaptionSet Val) Begin(
        string runDir, TrainOptions opt, TrainControl ctl)
    {
        var (train, val) = TrainingSession.BeginRun(runDir, opt, ctl);
        var clip = ClipPipeline.Load(opt.Clip);
        if (clip.ImageSize != opt.ImageSize)
            throw new ArgumentException($"the CLIP at {opt.Clip} reads {clip.ImageSize}x{clip.ImageSize} images but "
                + $"--size is {opt.ImageSize}; train at the CLIP's size (--size {clip.ImageSize})");
        var config = UnclipConfig.FromPreset(opt.Preset, clip, UnclipPipeline.ClipHash(opt.Clip));
        var pipe = new UnclipPipeline(config, clip, new Rng(opt.Seed));
        string runClip = Path.Combine(runDir, ClipDir);
        TrainingSession.WriteRunFiles(runDir, config.ToJson(), null, opt, ctl);
        if (ctl.IsRoot) UnclipPipeline.CopyDir(ModelDirectory.Open(opt.Clip, ClipPipeline.Format, "CLIP model").Path,
            runClip);
        ctl.Group.Barrier();
        return (pipe, runClip, train, val);
    }

    /// <summary>An existing run: its options, newest checkpoint, RUN/clip and config.json, which must still be the
    /// preset's for that CLIP.</summary>
    public static (TrainOptions Options, UnclipPipeline Pipe, string ClipDir, ImageCaptionSet Train,
        ImageCaptionSet Val, string Checkpoint) Reopen(string runDir, string family, TrainControl ctl,
            TrainOptions? given, IEnumerable<string>? fields)
    {
        var (opt, ckpt) = TrainingSession.OpenRun(runDir, family, given, fields);
        string runClip = Path.Combine(runDir, ClipDir), cfgPath = Path.Combine(runDir, UnclipPipeline.ConfigFile);
        var clip = ClipPipeline.Load(runClip);
        var config = UnclipConfig.FromJson(File.ReadAllText(cfgPath), cfgPath);
        var expected = UnclipConfig.FromPreset(opt.Preset, clip, UnclipPipeline.ClipHash(runClip));
        if (expected.ShapeKey() != config.ShapeKey())
            throw new FormatException($"{cfgPath} does not match preset '{opt.Preset}' of {TrainingSession.TrainFile} "
                + $"with the CLIP in {runClip}; the run was edited or made by another Pictor version");
        var (train, val) = TrainingSession.LoadSplits(opt, ctl);
        ctl.RootLog?.Invoke($"resuming {runDir} from {Path.GetFileName(ckpt)}");
        return (opt, new UnclipPipeline(config, clip, new Rng(opt.Seed)), runClip, train, val, ckpt);
    }

    /// <summary>Unit CLIP image embeddings [N, E] of every image of <paramref name="set"/>.</summary>
    public static float[] Embeddings(ClipPipeline clip, ImageCaptionSet set)
    {
        int size = set.Size, per = 3 * size * size, e = clip.Config.EmbedDim;
        var all = new float[set.Count * e];
        for (int s = 0; s < set.Count; s += 64)
        {
            int m = Math.Min(64, set.Count - s);
            var x = new float[m * per];
            for (int i = 0; i < m; i++) set.Read(s + i, x.AsSpan(i * per, per));
            using (TensorScope.Begin())
                clip.ImageEmbeddings(Tensor.FromArray(x, m, 3, size, size)).CopyTo(all, s * e);
        }
        return all;
    }

    /// <summary>The weights of named parameters as a name -> values map (what <see cref="UnclipPipeline.Save"/>
    /// writes).</summary>
    public static Dictionary<string, float[]> Weights(IEnumerable<(string Name, Tensor Param)> ps) =>
        ps.ToDictionary(p => p.Name, p => p.Param.ToArray());

    /// <summary>A model directory's decoder weights, for a prior run's export: its config must be this run's
    /// (same preset and CLIP).</summary>
    public static Dictionary<string, float[]> DecoderWeights(string decoderDir, UnclipPipeline pipe)
    {
        var m = ModelDirectory.Open(decoderDir, UnclipPipeline.Format, "unCLIP decoder");
        var cfg = UnclipConfig.FromJson(m.ConfigJson, m.ConfigPath);
        if (cfg.ShapeKey() != pipe.Config.ShapeKey())
            throw new ArgumentException($"the decoder in {m.Path} was trained with another preset or CLIP than this "
                + $"prior ({cfg.Preset}, CLIP {cfg.ClipHash} against {pipe.Config.Preset}, CLIP "
                + $"{pipe.Config.ClipHash}); train both with the same --preset and --clip-model");
        var f = SafeTensorsFile.Read(m.Require(UnclipPipeline.DecoderFile));
        var other = new UnclipPipeline(cfg, pipe.Clip, new Rng(0));
        other.LoadPart(f, "", prior: false);
        return Weights(other.DecoderParameters());
    }
}
