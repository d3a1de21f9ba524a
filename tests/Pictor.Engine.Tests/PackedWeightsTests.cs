using Pictor.Engine;
using Pictor.Engine.Kernels;
using Pictor.TestSupport;

namespace Pictor.Engine.Tests;

/// <summary>B packed once (Gemm.PackB) gives the managed kernel's product bit for bit, and a PackedWeights scope packs
/// only its registered weights, only without gradients, and never an activation whose values change.</summary>
public class PackedWeightsTests
{
    [Theory]
    [InlineData(false, 16, 100, 600)]   // K spans three K blocks, N is not a whole number of panels
    [InlineData(true, 16, 100, 600)]
    [InlineData(true, 130, 70, 40)]
    [InlineData(false, 1, 33, 257)]
    [InlineData(true, 16, 300, 600)]    // big enough to be shared among threads: one fork, each tile over every K block
    [InlineData(false, 200, 300, 600)]  // and with several row blocks
    public void Packed_B_gives_the_managed_kernels_product_bit_for_bit(bool transB, int m, int n, int k)
    {
        var rng = new Rng(3);
        var a = rng.Randn(m, k).ToArray(); var b = rng.Randn(transB ? n : k, transB ? k : n).ToArray();
        int ldb = transB ? k : n;
        var want = new float[m * n]; var got = new float[m * n];
        Gemm.Sgemm(GemmBackend.Simd, false, transB, m, n, k, 0.5f, a, k, b, ldb, 0f, want, n);
        var packed = Gemm.PackB(transB, n, k, b, ldb);
        if (Gemm.Backend == GemmBackend.Reference) { Assert.Null(packed); return; }
        Gemm.Sgemm(false, transB, m, n, k, 0.5f, a, k, b, ldb, 0f, got, n, packed!);
        Assert.Equal(want, got);
        var other = Gemm.PackB(transB, n, k - 1, b, ldb)!;   // a packing of another K
        var e = Assert.ThrowsAny<ArgumentException>(() => Gemm.Sgemm(false, transB, m, n, k, 1f, a, k, b, ldb, 0f, got, n, other));
        Assert.Contains("pack the B of this call", e.Message);
    }

    [Fact]
    public void A_scope_packs_registered_weights_once_and_nothing_else()
    {
        if (Gemm.Backend == GemmBackend.Reference) return;   // nothing is packed there
        bool was = PackedWeights.Enabled;
        PackedWeights.Enabled = true;   // the default; PICTOR_PACK_WEIGHTS=0 turns it off
        try { ScopeBehaviour(); }
        finally { PackedWeights.Enabled = was; }
    }

    [Fact]
    public void A_closed_scopes_arrays_are_reused_with_the_new_weights_values()
    {
        if (Gemm.Backend == GemmBackend.Reference) return;
        bool was = PackedWeights.Enabled;
        PackedWeights.Enabled = true;
        try
        {
            var rng = new Rng(5);
            var x = rng.Randn(16, 300);
            var w1 = rng.Randn(200, 300); var w2 = rng.Randn(200, 300);   // same shape: the second scope gets w1's array
            using var ng = Autograd.NoGrad();
            foreach (var w in new[] { w1, w2, w1 })
            {
                var want = new float[16 * 200];
                Gemm.Sgemm(GemmBackend.Simd, false, true, 16, 200, 300, 1f, x.ToArray(), 300, w.ToArray(), 300, 0f, want, 200);
                using var scope = PackedWeights.Begin([w]);
                Assert.Equal(want, Ops.Linear(x, w).ToArray());
            }
        }
        finally { PackedWeights.Enabled = was; }
    }

    private static void ScopeBehaviour()
    {
        var rng = new Rng(4);
        var w = rng.Randn(24, 40); var bias = rng.Randn(24); var x = rng.Randn(5, 40);
        float[] simd = new float[5 * 24];
        Gemm.Sgemm(GemmBackend.Simd, false, true, 5, 24, 40, 1f, x.ToArray(), 40, w.ToArray(), 40, 0f, simd, 24);
        for (int i = 0; i < simd.Length; i++) simd[i] += bias.ToArray()[i % 24];

        using (Autograd.NoGrad())
        using (var scope = PackedWeights.Begin([w, bias]))
        {
            Assert.Equal(simd, Ops.Linear(x, w, bias).ToArray());   // the managed kernel's bits, through the packing
            long bytes = scope.Bytes;
            Assert.True(bytes >= 4L * 24 * 40);
            Ops.Linear(x, w, bias);
            Assert.Equal(bytes, scope.Bytes);                      // packed once

            // An operand that is not a registered weight is never cached: new values give a new product.
            var act = rng.Randn(40, 24);
            var first = Ops.MatMul(x, act).ToArray();
            act.Span[0] += 1f;
            Assert.NotEqual(first, Ops.MatMul(x, act).ToArray());
            Assert.Equal(bytes, scope.Bytes);
        }

        // With a gradient to compute, the product takes the ordinary path (the weights may change between steps).
        w.RequiresGrad = true;
        using (var scope = PackedWeights.Begin([w]))
        {
            Ops.Linear(x, w);
            Assert.Equal(0, scope.Bytes);
        }
    }
}
