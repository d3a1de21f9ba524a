using Pictor.Models.Diffusion.Samplers;
using Pictor.Engine;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Eval;
using Pictor.Pipelines.Training;
using Pictor.Text;

namespace Pictor.Pipelines.Tests;

/// <summary>'pictor eval clip' against an oracle built from the reranker's own scores, with a stand-in model whose image
/// is a known function of its seed.</summary>
[Collection("BufferPool")]
public class ClipEvalTests
{
    /// <summary>Image for seed s: a horizontal ramp whose level and colour balance depend on s, already on the 8-bit grid.</summary>
    private sealed class SeedImages(BpeTokenizer tokenizer) : ITextToImage
    {
        public string Family => "stub"; public int ImageSize => 16; public string WeightsHash => "0000000000";
        public BpeTokenizer Tokenizer => tokenizer; public int TextContext => 12;
        public string DefaultSampler => "stub"; public int DefaultSteps => 1;
        public static float[] Image(ulong seed)
        {
            var img = new float[3 * 16 * 16];
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 256; p++) img[c * 256 + p] = ((int)((seed * 37 + (ulong)c * 71 + (ulong)(p % 16) * 5) % 256)) / 127.5f - 1f;
            return img;
        }
        public string? Refuse(SamplingSettings s) => null;
        public Tensor Sample(IReadOnlyList<string> prompts, SamplingSettings o, SampleStep? onStep = null) =>
            Tensor.FromArray(Enumerable.Range(0, prompts.Count).SelectMany(i => Image(o.Seed + (ulong)i)).ToArray(), prompts.Count, 3, 16, 16);
    }

    [Fact]
    public void Clip_score_is_the_mean_of_the_kept_candidates_scores_with_and_without_reranking()
    {
        string run = TrainerTests.NewRun();
        ClipTrainer.Start(run, new TrainOptions { Model = "clip", Data = TrainerTests.Data.Value, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 4,
            Steps = 2, ValEvery = 2, CkptEvery = 2, Keep = 1, ValImages = 4, Patience = 0, EmaDecay = 0f }, new TrainControl());
        var clip = ClipPipeline.Load(run);
        var (train, _) = ImageCaptionSet.LoadSplits(TrainerTests.Data.Value, 16);   // 36 images: enough prompts
        var model = new SeedImages(clip.Tokenizer);
        var o = new SamplingSettings("stub", 1, 3f);
        const int n = 5, N = 4;
        for (int rerank = 1; rerank <= N; rerank += N - 1)
        {
            var r = ClipEval.Run(model, clip, train, o, images: n, candidates: 3, batch: 3, rerank: rerank);
            double expected = 0;
            for (int i = 0; i < n; i++)
            {
                var cand = Enumerable.Range(0, rerank).SelectMany(j => SeedImages.Image((ulong)(i * rerank + j))).ToArray();
                expected += Rerank.Scores(clip, Tensor.FromArray(cand, rerank, 3, 16, 16), train.Captions[i][0]).Max();
            }
            Assert.Equal((n, rerank), (r.Images, r.Rerank));
            Assert.Equal(100 * expected / n, r.ClipScore, 3);
        }
        Assert.Contains("--rerank must be at least 1", Assert.Throws<ArgumentException>(() => ClipEval.Run(model, clip, train, o, images: n, rerank: 0)).Message);
    }
}
