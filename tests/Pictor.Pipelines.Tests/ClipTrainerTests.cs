using Pictor.Engine;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Tests;

/// <summary>'pictor train clip' on the 40-image shapes set at 16x16 (tiny preset), retrieval evaluation, and reranking.</summary>
[Collection("BufferPool")]
public class ClipTrainerTests
{
    private static TrainOptions Options(int steps) => new()
    {
        Data = TrainerTests.Data.Value, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 12, Steps = steps, Lr = 3e-3f, Warmup = 2,
        ValEvery = 20, CkptEvery = 40, Keep = 1, ValImages = 36, Patience = 0, Seed = 2, EmaDecay = 0f,
    };

    [Fact]
    public void Training_lowers_the_contrastive_loss_and_beats_chance_at_retrieval()
    {
        string run = TrainerTests.NewRun();
        // The train split is the evaluation here too (val has 4 images): this checks learning, not generalisation.
        var r = ClipTrainer.Start(run, Options(150) with { ValEvery = 50, CkptEvery = 150 }, new TrainControl());
        Assert.Equal(4, File.ReadAllLines(Path.Combine(run, "log.csv")).Length);   // header + 3 validations (4 val images: too few to judge by)
        var clip = ClipPipeline.Load(run);
        var (train, val) = ImageCaptionSet.LoadSplits(TrainerTests.Data.Value, 16);
        // The exported model is the best by retrieval (what reranking uses), not by contrastive loss.
        var exported = ClipTrainer.Evaluate(clip, val, 36, 12);
        Assert.Equal("retrieval error", r.BestBy);
        Assert.Equal(r.BestVal, 1 - (exported.ImageToText + exported.TextToImage) / 2, 9);
        var before = ClipTrainer.Evaluate(new ClipPipeline("tiny", 16, clip.Config, clip.Tokenizer, new Rng(2)), train, 36, 12);
        var after = ClipTrainer.Evaluate(clip, train, 36, 12);
        Assert.True(after.ValLoss < before.ValLoss - 0.2, $"contrastive loss on train images: untrained {before.ValLoss}, trained {after.ValLoss}");
        Assert.True(after.ImageToText > 2.0 / after.Captions, $"image->text top-1 {after.ImageToText} vs chance {1.0 / after.Captions}");
        // The retrieval picture: one row per val caption (4 val images here): its own image, then CLIP's top 3.
        var pic = Imaging.Image.Load(Directory.GetFiles(Path.Combine(run, "samples")).Single());
        Assert.Equal((4 * 16 + 5 * 2, 4 * 16 + 5 * 2), (pic.Width, pic.Height));
    }

    [Fact]
    public void Rerank_keeps_the_best_scores_first_and_breaks_ties_by_index()
    {
        Assert.Equal([(2, 0.9f), (0, 0.5f), (3, 0.5f)], Rerank.Best([0.5f, 0.1f, 0.9f, 0.5f], 3));
        Assert.Contains("--keep must be between 1 and --candidates (4)", Assert.Throws<ArgumentException>(() => Rerank.Best([0.5f, 0.1f, 0.9f, 0.5f], 5)).Message);
    }
}
