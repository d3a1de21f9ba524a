using Pictor.Engine;

namespace Pictor.Engine.Tests;

/// <summary>Attention reads a KV cache's views ([B, H, Tmax, D] narrowed to the first Tk rows) in place when no
/// gradient is needed: same numbers as on contiguous copies, and no per-step copy for the buffer pool to keep.</summary>
public class AttentionViewTests
{
    [Fact]
    public void Narrowed_cache_views_give_the_contiguous_result_without_copies()
    {
        const int b = 2, h = 3, tmax = 9, tk = 5, d = 4;
        var rng = new Rng(11);
        var kFull = rng.Randn(b, h, tmax, d); var vFull = rng.Randn(b, h, tmax, d);
        var q = rng.Randn(b, h, 1, d);
        using var _ = Autograd.NoGrad();
        using var scope = TensorScope.Begin();
        var kView = Ops.Narrow(kFull, 2, 0, tk); var vView = Ops.Narrow(vFull, 2, 0, tk);
        Assert.False(kView.IsContiguous);
        var kCopy = Ops.Contiguous(kView); var vCopy = Ops.Contiguous(vView);

        long before = Allocs();
        var expected = Ops.ScaledDotProductAttention(q, kCopy, vCopy, causal: true).ToArray();
        long contiguousAllocs = Allocs() - before;
        before = Allocs();
        var actual = Ops.ScaledDotProductAttention(q, kView, vView, causal: true).ToArray();
        long viewAllocs = Allocs() - before;

        Assert.Equal(expected, actual);
        Assert.Equal(contiguousAllocs, viewAllocs);
    }

    // Every Tensor.Empty inside a scope is one rental from the pool.
    private static long Allocs() => BufferPool.RentalsOnThisThread;
}
