using Pictor.Engine;

namespace Pictor.Engine.Tests;

/// <summary>Tests that read the global BufferPool counters run alone, so no parallel test can rent from the pool.</summary>
[CollectionDefinition("BufferPool", DisableParallelization = true)]
public sealed class BufferPoolCollection;

public class AutogradTests
{
    private static Tensor Leaf(float[] v, params int[] shape) { var t = Tensor.FromArray(v, shape); t.RequiresGrad = true; return t; }

    [Fact]
    public void Diamond_graph_sums_both_paths()
    {
        // y = (x*x) + (x*3): dy/dx = 2x + 3
        var x = Leaf([1f, -2f, 0.5f], 3);
        var y = Ops.Sum(Ops.Add(Ops.Mul(x, x), Ops.MulScalar(x, 3f)));
        y.Backward();
        Assert.Equal(new[] { 5f, -1f, 4f }, x.Grad!.ToArray());
    }

    [Fact]
    public void Gradients_accumulate_across_backward_calls_until_zeroed()
    {
        var x = Leaf([2f], 1);
        Ops.Sum(Ops.Square(x)).Backward();
        Ops.Sum(Ops.Square(x)).Backward();
        Assert.Equal(8f, x.Grad!.ToArray()[0]);   // 4 + 4
        x.Grad.Span.Clear();
        Ops.Sum(Ops.Square(x)).Backward();
        Assert.Equal(4f, x.Grad.ToArray()[0]);
    }

    [Fact]
    public void No_grad_records_nothing_and_frozen_leaves_get_no_gradient()
    {
        var x = Leaf([1f, 2f], 2);
        using (Autograd.NoGrad())
        {
            var y = Ops.Mul(x, x);
            Assert.False(y.RequiresGrad);
            Assert.Null(y.GradFn);
        }
        var frozen = Tensor.FromArray([3f, 4f], 2);   // RequiresGrad false
        var z = Ops.Sum(Ops.Mul(x, frozen));
        z.Backward();
        Assert.Null(frozen.Grad);
        Assert.Equal(new[] { 3f, 4f }, x.Grad!.ToArray());
    }

    [Fact]
    public void Backward_errors_name_the_problem()
    {
        var x = Tensor.FromArray([1f, 2f], 2);
        var e = Assert.Throws<InvalidOperationException>(() => Ops.Sum(x).Backward());
        Assert.Contains("does not require grad", e.Message);
        var v = Leaf([1f, 2f], 2);
        e = Assert.Throws<InvalidOperationException>(() => Ops.Mul(v, v).Backward());
        Assert.Contains("needs a scalar", e.Message);
    }

    [Fact]
    public void Views_share_storage_and_route_gradients()
    {
        var x = Leaf([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        var t = Ops.Transpose(x, 0, 1);            // [3, 2] view
        Assert.Same(x.Storage, t.Storage);
        Assert.False(t.IsContiguous);
        Assert.Equal(new[] { 1f, 4f, 2f, 5f, 3f, 6f }, t.ToArray());
        var w = Tensor.FromArray([1f, 10f, 100f, 1000f, 1e4f, 1e5f], 3, 2);
        Ops.Sum(Ops.Mul(t, w)).Backward();
        Assert.Equal(new[] { 1f, 100f, 1e4f, 10f, 1000f, 1e5f }, x.Grad!.ToArray());
    }
}

[Collection("BufferPool")]
public class TensorScopeTests
{
    private static Tensor Leaf(float[] v, params int[] shape) { var t = Tensor.FromArray(v, shape); t.RequiresGrad = true; return t; }

    [Fact]
    public void Scoped_training_step_allocates_no_new_buffers_in_steady_state()
    {
        var w = Leaf(new float[64 * 32], 64, 32); new Rng(1).FillNormal(w.Span, 0, 0.1f);
        var x = new Rng(2).Randn(8, 32);
        long afterWarmup = 0;
        for (int step = 0; step < 4; step++)
        {
            using (var scope = TensorScope.Begin())
            {
                var h = Ops.Gelu(Ops.Linear(x, w));
                var loss = Ops.Mean(Ops.Square(h));
                loss.Backward();
            }
            w.Grad!.Span.Clear();
            if (step == 1) afterWarmup = BufferPool.Allocations;
        }
        Assert.Equal(afterWarmup, BufferPool.Allocations);
    }

    [Fact]
    public void Backward_frees_intermediate_gradients_as_it_goes_but_keeps_leaves_and_retained_ones()
    {
        var w = Leaf(new float[256 * 256], 256, 256); new Rng(3).FillNormal(w.Span, 0, 0.05f);
        var x = new Rng(4).Randn(64, 256);
        using var scope = TensorScope.Begin();
        // A chain of 6 layers: each intermediate gradient is 64x256 floats (64 KiB).
        var hs = new List<Tensor> { x };
        for (int i = 0; i < 6; i++) hs.Add(Ops.Tanh(Ops.Linear(hs[^1], w)));
        hs[3].RetainGrad = true;
        var loss = Ops.Mean(Ops.Square(hs[^1]));
        long before = BufferPool.InUseBytes;
        BufferPool.ResetPeak();
        loss.Backward();
        // Without freeing, the 13 intermediates (6 linear, 6 tanh, square) would each hold a 64 KiB gradient at the end.
        long grown = BufferPool.InUseBytes - before;
        Assert.True(grown <= 2 * 64 * 256 * 4, $"the pool still holds {grown} bytes after backward");
        // Holding all 13 would peak above 13 x 64 KiB; freeing leaves a few gradients plus the 256 KiB weight-gradient
        // temporary of a linear backward.
        Assert.True(BufferPool.PeakInUseBytes - before < 10 * 64 * 256 * 4, $"backward peaked at {BufferPool.PeakInUseBytes - before} bytes over the forward");
        Assert.Null(hs[5].Grad);
        Assert.NotNull(hs[3].Grad);                                   // retained on request
        Assert.Contains(hs[3].Grad!.ToArray(), g => g != 0);
        Assert.Contains(w.Grad!.ToArray(), g => g != 0);             // leaves keep theirs
    }

    [Fact]
    public void Tensor_used_after_its_scope_is_an_error_unless_kept()
    {
        Tensor inner, kept;
        using (var scope = TensorScope.Begin())
        {
            inner = Tensor.Zeros(4);
            kept = scope.Keep(Tensor.Ones(4));
        }
        Assert.Throws<InvalidOperationException>(() => inner.ToArray());
        Assert.Equal(new[] { 1f, 1f, 1f, 1f }, kept.ToArray());
    }
}
