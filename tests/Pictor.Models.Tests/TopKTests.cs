using Pictor.Engine;
using Pictor.Models.Transformer;

namespace Pictor.Models.Tests;

/// <summary>Top-k's threshold by a heap is the value sorting gives (sorted ascending, element n - k), repeats and
/// infinities included, and NaN sorts first as in Array.Sort.</summary>
public class TopKTests
{
    [Fact]
    public void Kth_largest_matches_sorting()
    {
        var rng = new Rng(12);
        foreach (int n in new[] { 1, 2, 7, 64, 1000 })
            for (int trial = 0; trial < 20; trial++)
            {
                // Few distinct values, so repeats straddle the k-th place; some infinities.
                var v = new float[n];
                for (int i = 0; i < n; i++) v[i] = rng.NextInt(10) switch { 0 => float.NegativeInfinity, 1 => float.PositiveInfinity, var r => r % 4 };
                var sorted = v.ToArray(); Array.Sort(sorted);
                foreach (int k in new[] { 1, 2, n / 2 + 1, n }.Where(k => k >= 1 && k <= n).Distinct())
                    Assert.Equal(sorted[n - k], ArSampler.KthLargest(v, k));
            }
    }

    [Fact]
    public void NaN_counts_as_smallest_and_bad_k_is_an_error()
    {
        float[] v = [3f, float.NaN, 1f, 2f];
        Assert.Equal(1f, ArSampler.KthLargest(v, 3));
        Assert.True(float.IsNaN(ArSampler.KthLargest(v, 4)));   // Array.Sort puts NaN first
        Assert.ThrowsAny<ArgumentException>(() => ArSampler.KthLargest(v, 0));
        Assert.ThrowsAny<ArgumentException>(() => ArSampler.KthLargest(v, 5));
    }
}
