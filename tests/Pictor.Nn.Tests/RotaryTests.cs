using Pictor.Engine;
using Pictor.TestSupport;

namespace Pictor.Nn.Tests;

/// <summary>Rotary position embedding: forward and gradient against PyTorch (written there as a complex product, not
/// as Pictor writes it), against a double-precision loop reference with finite differences, the relative-position
/// property it exists for, and the cached path's positions.</summary>
public class RotaryTests
{
    // The textbook definition, one channel pair at a time: (x_i, x_{i+P}) turned by (start + m) theta_i.
    private static D Reference(D x, int start)
    {
        int dh = x.S[^1], t = x.S[^2], p = dh / 2;
        var y = new double[x.N];
        for (int row = 0; row < x.N / dh; row++)
        {
            int m = row % t;
            for (int i = 0; i < p; i++)
            {
                double a = (start + m) * Math.Pow(10000, -2.0 * i / dh);
                double u = x.V[row * dh + i], v = x.V[row * dh + p + i];
                y[row * dh + i] = u * Math.Cos(a) - v * Math.Sin(a);
                y[row * dh + p + i] = v * Math.Cos(a) + u * Math.Sin(a);
            }
        }
        return new D(y, x.S);
    }

    [Fact]
    public void Matches_PyTorch_forward_and_gradient()
    {
        var g = Fixtures.Load("ops_golden.safetensors");
        var x = g.GetTensor("rope_start3.x"); x.RequiresGrad = true;   // [2, 3, 5, 8], positions 3..7
        var y = Rotary.Apply(x, 3);
        OpCheck.AssertClose("rope forward vs PyTorch", y.ToArray(), g.ReadFloat32("rope_start3.y"), 1e-5);
        Ops.Sum(Ops.Mul(y, g.GetTensor("rope_start3.proj"))).Backward();
        OpCheck.AssertClose("rope grad vs PyTorch", x.Grad!.ToArray(), g.ReadFloat32("rope_start3.grad.x"), 1e-5);
    }

    [Fact]
    public void Matches_the_loop_reference_and_its_finite_differences()
    {
        foreach (int start in new[] { 0, 11 })
            OpCheck.Check($"rope start {start}", [OpCheck.Randn(7, true, 2, 2, 6, 16)], t => Rotary.Apply(t[0], start), d => Reference(d[0], start));
    }

    [Fact]
    public void Attention_logits_depend_only_on_the_distance_between_positions()
    {
        var rng = new Rng(3);
        var q = rng.Randn(1, 1, 1, 16); var k = rng.Randn(1, 1, 1, 16);
        float Logit(int m, int n) => Ops.Sum(Ops.Mul(Rotary.Apply(q, m), Rotary.Apply(k, n))).ToArray()[0];
        foreach (var (m, n) in new[] { (0, 1), (4, 2), (7, 7) })
            foreach (int shift in new[] { 1, 5, 20 })
                Assert.Equal(Logit(m, n), Logit(m + shift, n + shift), 4);
        Assert.NotEqual(Logit(0, 1), Logit(0, 2), 3);   // the distance itself does matter
        Assert.Equal(q.ToArray(), Rotary.Apply(q, 0).ToArray());   // position 0 is no turn at all
    }

    [Fact]
    public void Cached_attention_continues_at_the_cache_position()
    {
        var attn = new MultiHeadAttention(new Rng(5), 16, 2, rotary: true);
        var x = new Rng(6).Randn(2, 7, 16);
        float[] full, cached;
        using (Autograd.NoGrad())
        {
            full = Ops.Contiguous(Ops.Narrow(attn.Forward(x, causal: true), 1, 4, 3)).ToArray();
            var cache = new LayerKvCache(2, 2, 8, 8);
            attn.ForwardCached(Ops.Contiguous(Ops.Narrow(x, 1, 0, 4)), cache);
            cached = attn.ForwardCached(Ops.Contiguous(Ops.Narrow(x, 1, 4, 3)), cache).ToArray();
        }
        OpCheck.AssertClose("rope cached vs full", cached, full, 1e-5);
        var plain = new MultiHeadAttention(new Rng(5), 16, 2);
        using (Autograd.NoGrad())
            Assert.NotEqual(plain.Forward(x, causal: true).ToArray(), attn.Forward(x, causal: true).ToArray());   // it does change attention
    }

    [Fact]
    public void Odd_head_widths_and_cross_attention_are_errors_that_say_why()
    {
        var e = Assert.Throws<ArgumentException>(() => Rotary.Apply(Tensor.Zeros(1, 2, 3, 5)));
        Assert.Contains("head width must be even, got 5", e.Message);
        var cross = new MultiHeadAttention(new Rng(1), 8, 2, contextDim: 4, rotary: true);
        e = Assert.Throws<ArgumentException>(() => cross.Forward(Tensor.Zeros(1, 3, 8), Tensor.Zeros(1, 2, 4)));
        Assert.Contains("self-attention", e.Message);
    }
}
