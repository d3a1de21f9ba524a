using Pictor.Models.Vq;
using Pictor.Pipelines.Inside;

namespace Pictor.Pipelines.Tests;

/// <summary>Codebook health: perplexity, used and dead entries, against hand-made assignments.</summary>
public class CodebookHealthTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(512)]
    public void Perplexity_of_a_uniform_assignment_is_the_codebook_size(int k)
    {
        var codes = Enumerable.Range(0, 3 * k).Select(i => i % k).ToArray();
        var h = CodebookHealth.FromCodes(codes, k, "test");
        Assert.Equal(k, h.Perplexity, 9);
        Assert.Equal((k, 0), (h.Used, h.Dead));
    }

    [Fact]
    public void One_code_for_everything_has_perplexity_one_and_the_rest_dead()
    {
        var h = CodebookHealth.FromCodes(new int[100], 16, "test");
        Assert.Equal(1, h.Perplexity, 12);
        Assert.Equal((1, 15), (h.Used, h.Dead));
    }

    [Fact]
    public void Agrees_with_the_quantizers_own_usage_and_marks_rare_counts_dead()
    {
        var rng = new Random(5);
        var codes = Enumerable.Range(0, 1000).Select(_ => rng.Next(40) * rng.Next(2)).ToArray();
        var (perplexity, used) = VectorQuantizer.UsageOf(codes, 64);
        var h = CodebookHealth.FromCodes(codes, 64, "test");
        Assert.Equal(perplexity, h.Perplexity, 9);
        Assert.Equal(used, h.Used / 64.0, 12);
        // moving-average counts never reach 0: 1e-4 of the mean is dead, 0.5 of it is not
        var ema = CodebookHealth.FromCounts([1, 1, 1, 1e-4, 0.5, 1.4999], "ema");
        Assert.Equal((5, 1), (ema.Used, ema.Dead));
        var img = h.Histogram();
        Assert.True(img.Width >= 64 && img.Height > 100);
    }
}
