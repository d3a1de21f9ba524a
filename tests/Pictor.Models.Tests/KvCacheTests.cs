using Pictor.Engine;
using Pictor.Models.Transformer;

namespace Pictor.Models.Tests;

public class KvCacheTests
{
    private static readonly ArConfig Tiny = new(Layers: 2, Dim: 32, Heads: 4, TextVocab: 40, ImageVocab: 24, TextLen: 4, ImageLen: 12);

    [Fact]
    public void Cached_logits_equal_full_forward()
    {
        var model = new ArTransformer(Tiny, new Rng(1));
        var ids = new IntTensor(Enumerable.Range(0, 2 * 10).Select(i => (i * 7) % 64).ToArray(), 2, 10);
        using var _ = Autograd.NoGrad();
        var full = model.Forward(ids).ToArray();                 // (2, 10, 64)
        var cache = model.NewCache(2);
        var part1 = model.ForwardCached(new IntTensor(ids.Data.Where((_, i) => i % 10 < 6).ToArray(), 2, 6), cache).ToArray();
        var part2 = model.ForwardCached(new IntTensor(ids.Data.Where((_, i) => i % 10 >= 6).ToArray(), 2, 4), cache).ToArray();
        Assert.Equal(10, cache.Length);
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < 10; t++)
                for (int v = 0; v < 64; v++)
                {
                    float got = t < 6 ? part1[(b * 6 + t) * 64 + v] : part2[(b * 4 + t - 6) * 64 + v];
                    Assert.True(Math.Abs(got - full[(b * 10 + t) * 64 + v]) < 1e-4, $"logit ({b}, {t}, {v}): cached {got}, full {full[(b * 10 + t) * 64 + v]}");
                }
    }

    [Theory]
    [InlineData(0f, 0)]      // greedy
    [InlineData(1f, 0)]      // plain sampling
    [InlineData(0.8f, 5)]    // temperature + top-k
    public void Sampling_with_the_cache_gives_the_same_tokens_as_without(float temperature, int topK)
    {
        var model = new ArTransformer(Tiny, new Rng(2));
        var prompt = new IntTensor([1, 5, 9, 3, 2, 8, 30, 4], 2, 4);
        var opt = new ArSamplingOptions(temperature, topK, AllowedFrom: Tiny.TextVocab);
        var withCache = ArSampler.Generate(model, prompt, 12, opt, new Rng(7), useCache: true);
        var without = ArSampler.Generate(model, prompt, 12, opt, new Rng(7), useCache: false);
        Assert.Equal(without.Data, withCache.Data);
        Assert.Equal(prompt.Data[..4], withCache.Data[..4]);
        Assert.All(withCache.Data.Where((_, i) => i % 16 >= 4), id => Assert.InRange(id, Tiny.TextVocab, Tiny.Vocab - 1));
    }

    [Fact]
    public void Overflowing_the_cache_or_the_model_is_a_clear_error()
    {
        var model = new ArTransformer(Tiny, new Rng(3));
        var e = Assert.Throws<ArgumentException>(() => ArSampler.Generate(model, new IntTensor([1, 2], 1, 2), 15, new ArSamplingOptions(), new Rng(1)));
        Assert.Contains("exceed the model's 16 positions", e.Message);
        e = Assert.Throws<ArgumentException>(() => ArSampler.Generate(model, new IntTensor([1], 1, 1), 2, new ArSamplingOptions(AllowedFrom: 70), new Rng(1)));
        Assert.Contains("allowed token range [70, 64)", e.Message);
    }
}
