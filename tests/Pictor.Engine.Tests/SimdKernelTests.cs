using Pictor.Engine;
using Pictor.Engine.Kernels;
using Pictor.TestSupport;

namespace Pictor.Engine.Tests;

/// <summary>SIMD kernels at every length 0..256 (all vector remainders), in place, and with NaN/Inf inputs.</summary>
public class SimdKernelTests
{
    private static float[] Values(int n, ulong seed)
    {
        var a = new float[n]; new Rng(seed).FillNormal(a);
        return a;
    }

    [Fact]
    public void Binary_kernels_every_length_and_in_place()
    {
        foreach (BinaryOp op in Enum.GetValues<BinaryOp>())
            for (int n = 0; n <= 256; n++)
            {
                var a = Values(n, 1); var b = Values(n, 2).Select(v => op == BinaryOp.Div ? v + MathF.CopySign(1f, v) : v).ToArray();
                var want = a.Zip(b, (x, y) => Broadcast.Apply(op, x, y)).ToArray();
                var ta = Tensor.FromArray((float[])a.Clone(), n); var tb = Tensor.FromArray(b, n);
                var y = Tensor.Empty(n);
                Broadcast.Binary(op, ta, tb, y);
                Assert.Equal(want, y.ToArray());
                Broadcast.Binary(op, ta, tb, ta);   // in place: out aliases a
                Assert.Equal(want, ta.ToArray());
                // scalar broadcast on either side
                var s = Tensor.FromArray([1.5f], 1);
                Broadcast.Binary(op, Tensor.FromArray(a, n), s, y);
                Assert.Equal(a.Select(x => Broadcast.Apply(op, x, 1.5f)).ToArray(), y.ToArray());
                Broadcast.Binary(op, s, Tensor.FromArray(b, n), y);
                Assert.Equal(b.Select(x => Broadcast.Apply(op, 1.5f, x)).ToArray(), y.ToArray());
            }
    }

    [Fact]
    public void Activations_every_length_match_scalar_definitions()
    {
        for (int n = 0; n <= 256; n++)
        {
            var x = Values(n, 3);
            var y = new float[n];
            Activations.SiluForward(x, y);
            OpCheck.AssertClose($"silu n={n}", y.Select(v => (double)v).ToArray(), x.Select(v => RefOps.Silu(v)).ToArray(), 1e-6);
            Activations.GeluForward(x, y);
            OpCheck.AssertClose($"gelu n={n}", y.Select(v => (double)v).ToArray(), x.Select(v => RefOps.Gelu(v)).ToArray(), 1e-6);
            var inPlace = (float[])x.Clone();
            Activations.SiluForward(inPlace, inPlace);
            var ref2 = new float[n]; Activations.SiluForward(x, ref2);
            Assert.Equal(ref2, inPlace);
        }
    }

    [Fact]
    public void Nan_and_inf_propagate_through_elementwise_and_softmax()
    {
        var x = Tensor.FromArray([1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f], 5);
        var y = Ops.Add(x, Tensor.FromArray([1f], 1)).ToArray();
        Assert.True(float.IsNaN(y[1])); Assert.Equal(float.PositiveInfinity, y[2]); Assert.Equal(float.NegativeInfinity, y[3]);
        var e = Ops.Exp(x).ToArray();
        Assert.True(float.IsNaN(e[1])); Assert.Equal(float.PositiveInfinity, e[2]); Assert.Equal(0f, e[3]);
        // softmax: a -inf logit gets probability 0; a +inf logit makes the row NaN (inf - inf), as in PyTorch.
        var p = Ops.Softmax(Tensor.FromArray([0f, float.NegativeInfinity, 1f], 1, 3)).ToArray();
        Assert.Equal(0f, p[1]); Assert.Equal(1f, p[0] + p[2], 5);
        var q = Ops.Softmax(Tensor.FromArray([0f, float.PositiveInfinity], 1, 2)).ToArray();
        Assert.True(float.IsNaN(q[1]));
        var m = Ops.Max(x, 0).Item();
        Assert.True(float.IsNaN(m));   // max propagates NaN like torch.max
    }

    [Fact]
    public void Sum_of_every_length_is_exact_to_double_accumulation()
    {
        for (int n = 0; n <= 256; n++)
        {
            var x = Values(n, 9);
            float got = Ops.Sum(Tensor.FromArray(x, n)).Item();
            Assert.Equal((float)x.Sum(v => (double)v), got);
        }
    }

    [Fact]
    public void Vectorised_gelu_matches_the_scalar_reference_every_length_in_place_and_at_the_edges()
    {
        for (int n = 0; n <= 67; n++)
        {
            var x = Values(n, 3).Select(v => 4f * v).ToArray();
            if (n > 9) { x[1] = float.NaN; x[2] = float.PositiveInfinity; x[3] = -0f; x[4] = 0f; x[5] = 12f; x[6] = -12f; x[7] = 1e-20f; }
            var want = new float[n]; Activations.GeluForwardReference(x, want);
            var got = new float[n]; Activations.GeluForward(x, got);
            for (int i = 0; i < n; i++)
            {
                if (!float.IsFinite(want[i])) { Assert.Equal(want[i], got[i]); continue; }   // NaN, +-inf: the same special value
                Assert.True(Math.Abs(want[i] - got[i]) <= 1e-6f * (1 + Math.Abs(want[i])), $"n={n} i={i} x={x[i]}: {got[i]} vs {want[i]}");
            }
            var inPlace = (float[])x.Clone(); Activations.GeluForward(inPlace, inPlace);
            Assert.Equal(got, inPlace);
            // Backward against the derivative computed from the scalar erf: Phi(x) + x phi(x).
            var dY = Values(n, 4); var dX = new float[n]; Activations.GeluBackward(x, got, dY, dX);
            for (int i = 0; i < n; i++)
            {
                double v = x[i]; if (!double.IsFinite(v)) continue;
                double cdf = 0.5 * (1 + Activations.Erf((float)(v / Math.Sqrt(2)))), pdf = Math.Exp(-0.5 * v * v) / Math.Sqrt(2 * Math.PI);
                Assert.True(Math.Abs(dX[i] - dY[i] * (cdf + v * pdf)) <= 1e-5 * (1 + Math.Abs(dY[i])), $"backward n={n} i={i}");
            }
        }
    }
    [Fact]
    public void Vectorised_silu_backward_matches_the_scalar_reference_every_length()
    {
        foreach (int n in Enumerable.Range(0, 70).Concat([255, 256, 257, 600]))
        {
            var x = Values(n, 5).Select(v => 6f * v).ToArray();
            var dY = Values(n, 6);
            var want = Values(n, 7); var got = (float[])want.Clone();   // both accumulate into the same start
            Activations.SiluBackwardReference(x, dY, want);
            Activations.SiluBackward(x, x, dY, got);
            for (int i = 0; i < n; i++)
                Assert.True(Math.Abs(want[i] - got[i]) <= 2e-6f * (1 + Math.Abs(want[i])), $"n={n} i={i} x={x[i]}: {got[i]} vs {want[i]}");
        }
    }

    [Fact]
    public void Vectorised_norm_rows_match_the_scalar_double_reference_even_far_from_zero()
    {
        // Lengths around the vector width and the 256-element chunk, means far from zero (cancellation), per-run
        // channels (GroupNorm) and per-element channels (LayerNorm).
        foreach (int n in new[] { 1, 2, 7, 16, 33, 255, 256, 257, 1024, 4100 })
            foreach (float offset in new[] { 0f, 300f, -5000f })
            {
                var x = Values(n, 8).Select(v => offset + 2f * v).ToArray();
                var g = Values(n, 9); var b = Values(n, 10);
                var want = new float[n];
                var (wm, wr) = NormKernels.NormalizeRowReference(x, want, 1e-5f, 1, i => i, g, b);
                var (m, r) = NormKernels.RowMoments(x, 1e-5f);
                Assert.True(Math.Abs(m - wm) <= 1e-6f * (1 + Math.Abs(wm)), $"mean n={n} offset={offset}: {m} vs {wm}");
                Assert.True(Math.Abs(r - wr) <= 2e-5f * wr, $"rstd n={n} offset={offset}: {r} vs {wr}");
                var got = new float[n];
                NormKernels.ApplyPerElement(x, got, m, r, g, b);
                for (int i = 0; i < n; i++)
                    Assert.True(Math.Abs(got[i] - want[i]) <= 2e-3f * (1 + Math.Abs(want[i])), $"layer n={n} offset={offset} i={i}: {got[i]} vs {want[i]}");
                if (n % 4 != 0) continue;
                int run = n / 4;
                NormKernels.NormalizeRowReference(x, want, 1e-5f, run, i => i / run, g, b);
                for (int q = 0; q < 4; q++) NormKernels.ApplyRun(x.AsSpan(q * run, run), got.AsSpan(q * run, run), m, r, g[q], b[q]);
                for (int i = 0; i < n; i++)
                    Assert.True(Math.Abs(got[i] - want[i]) <= 2e-3f * (1 + Math.Abs(want[i])), $"group n={n} offset={offset} i={i}: {got[i]} vs {want[i]}");
            }
    }

    [Fact]
    public void Vectorised_norm_backward_rows_match_the_scalar_reference()
    {
        // Runs sharing a channel (GroupNorm: 4 runs per row) and per-element channels (LayerNorm), lengths around the
        // vector width and the 256-element chunk, means far from zero.
        foreach (int n in new[] { 4, 8, 36, 64, 1024, 1028, 4096 })
            foreach (float offset in new[] { 0f, 300f })
            {
                var x = Values(n, 11).Select(v => offset + 2f * v).ToArray();
                var d = Values(n, 12); var g = Values(n, 13); var start = Values(n, 14);
                var (m, rs) = NormKernels.RowMoments(x, 1e-5f);
                int run = n / 4;
                // GroupNorm: the kernels as Ops.Normalize chains them.
                var want = (float[])start.Clone();
                var (wantG, wantB) = NormKernels.BackwardRowReference(x, d, want, m, rs, run, i => i / run, g);
                var got = (float[])start.Clone();
                double s1 = 0, s2 = 0;
                for (int j = 0; j < 4; j++)
                {
                    var (sumD, sumDXhat) = NormKernels.GradSums(x.AsSpan(j * run, run), d.AsSpan(j * run, run), default, m, rs);
                    Assert.True(Math.Abs(sumD - wantB[j]) <= 1e-4 * (1 + Math.Abs(wantB[j])), $"dbeta n={n} run {j}: {sumD} vs {wantB[j]}");
                    Assert.True(Math.Abs(sumDXhat - wantG[j]) <= 1e-4 * (1 + Math.Abs(wantG[j])), $"dgamma n={n} run {j}: {sumDXhat} vs {wantG[j]}");
                    s1 += g[j] * sumD; s2 += g[j] * sumDXhat;
                }
                for (int j = 0; j < 4; j++)
                    NormKernels.ApplyGradRun(x.AsSpan(j * run, run), d.AsSpan(j * run, run), got.AsSpan(j * run, run), m, rs, g[j], (float)(s1 / n), (float)(s2 / n));
                for (int i = 0; i < n; i++)
                    Assert.True(Math.Abs(got[i] - want[i]) <= 1e-4f * (1 + Math.Abs(want[i])), $"group dX n={n} offset={offset} i={i}: {got[i]} vs {want[i]}");
                // LayerNorm: per-element gamma.
                want = (float[])start.Clone(); got = (float[])start.Clone();
                NormKernels.BackwardRowReference(x, d, want, m, rs, 1, i => i, g);
                var (p1, p2) = NormKernels.GradSums(x, d, g, m, rs);
                NormKernels.ApplyGradPerElement(x, d, got, m, rs, g, (float)(p1 / n), (float)(p2 / n));
                for (int i = 0; i < n; i++)
                    Assert.True(Math.Abs(got[i] - want[i]) <= 1e-4f * (1 + Math.Abs(want[i])), $"layer dX n={n} offset={offset} i={i}: {got[i]} vs {want[i]}");
            }
    }

    [Fact]
    public void Vectorised_silu_gradient_through_the_norm_matches_the_scalar_definition()
    {
        foreach (int n in new[] { 1, 7, 16, 255, 256, 257, 1000 })
        {
            var x = Values(n, 15).Select(v => 3f + 4f * v).ToArray(); var dOut = Values(n, 16);
            var (m, rs) = NormKernels.RowMoments(x, 1e-5f);
            float g = 1.7f, b = -0.3f;
            var got = new float[n];
            NormKernels.SiluGradThroughRun(x, dOut, got, m, rs, g, b);
            for (int i = 0; i < n; i++)
            {
                double a = (x[i] - m) * (double)rs * g + b, s = 1 / (1 + Math.Exp(-a));
                double want = dOut[i] * s * (1 + a * (1 - s));
                Assert.True(Math.Abs(got[i] - want) <= 1e-5 * (1 + Math.Abs(want)), $"n={n} i={i}: {got[i]} vs {want}");
            }
        }
    }
}
