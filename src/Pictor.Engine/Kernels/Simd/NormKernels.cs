using System.Numerics;
using System.Numerics.Tensors;

namespace Pictor.Engine.Kernels;

/// <summary>
/// Row kernels of GroupNorm and LayerNorm forward (Ops.Normalize): the statistics of one block of n elements and the
/// affine map. Vectorised: float vector partial sums over chunks of <see cref="Chunk"/> elements, added in double, so
/// a row of 65,536 elements keeps the accuracy of the scalar double loop it replaced (kept below as the reference;
/// SimdKernelTests compares the two). The scalar loop was 8% of UNet-S sampling (bench/RESULTS.md).
/// </summary>
internal static class NormKernels
{
    private const int Chunk = 256;

    /// <summary>Mean and 1/sqrt(biased variance + eps) of x, variance from deviations (two passes, no
    /// cancellation).</summary>
    public static (float Mean, float Rstd) RowMoments(ReadOnlySpan<float> x, float eps)
    {
        int n = x.Length;
        double sum = 0;
        for (int i = 0; i < n; i += Chunk) sum += TensorPrimitives.Sum(x.Slice(i, Math.Min(Chunk, n - i)));
        double mu = sum / n;
        float m = (float)mu;
        double sq = 0;
        for (int i = 0; i < n; i += Chunk) sq += SumSquaredDeviation(x.Slice(i, Math.Min(Chunk, n - i)), m);
        // sum (x - mu)^2 = sum (x - m)^2 - n (mu - m)^2, since sum (x - m) = n (mu - m)
        double d = mu - m;
        sq = Math.Max(0, sq - n * d * d);
        return (m, (float)(1.0 / Math.Sqrt(sq / n + eps)));
    }

    private static float SumSquaredDeviation(ReadOnlySpan<float> x, float m)
    {
        var acc = Vector<float>.Zero; var mv = new Vector<float>(m);
        int i = 0, w = Vector<float>.Count;
        for (; i <= x.Length - w; i += w) { var d = new Vector<float>(x.Slice(i, w)) - mv; acc += d * d; }
        float s = Vector.Sum(acc);
        for (; i < x.Length; i++) { float d = x[i] - m; s += d * d; }
        return s;
    }

    /// <summary>y = (x - m) rstd g + b over a run that shares one channel (GroupNorm: one channel's
    /// positions).</summary>
    public static void ApplyRun(ReadOnlySpan<float> x, Span<float> y, float m, float rstd, float g, float b)
    {
        float sg = rstd * g;
        var mv = new Vector<float>(m); var sv = new Vector<float>(sg); var bv = new Vector<float>(b);
        int i = 0, w = Vector<float>.Count;
        for (; i <= x.Length - w; i += w) ((new Vector<float>(x.Slice(i, w)) - mv) * sv + bv).CopyTo(y.Slice(i, w));
        for (; i < x.Length; i++) y[i] = (x[i] - m) * sg + b;
    }

    /// <summary>y_i = (x_i - m) rstd g_i + b_i with per-element channels (LayerNorm); g, b empty means 1, 0.</summary>
    public static void ApplyPerElement(ReadOnlySpan<float> x, Span<float> y, float m, float rstd, ReadOnlySpan<float> g,
        ReadOnlySpan<float> b)
    {
        TensorPrimitives.Subtract(x, m, y);
        TensorPrimitives.Multiply(y, rstd, y);
        if (!g.IsEmpty) TensorPrimitives.Multiply(y, g, y);
        if (!b.IsEmpty) TensorPrimitives.Add(y, b, y);
    }

    /// <summary>Reference: the scalar double-precision loops (statistics and affine map) for one row whose channel
    /// is constant over runs of <paramref name="run"/>; channel(i) gives element i's affine channel.</summary>
    public static (float Mean, float Rstd) NormalizeRowReference(ReadOnlySpan<float> xs, Span<float> ys, float eps,
        int run,
                                                                 Func<int, int> channel, float[]? g, float[]? b)
    {
        int n = xs.Length;
        double sum = 0, sq = 0;
        for (int i = 0; i < n; i++) sum += xs[i];
        double mu = sum / n;
        for (int i = 0; i < n; i++) { double dv = xs[i] - mu; sq += dv * dv; }
        float rs = (float)(1.0 / Math.Sqrt(sq / n + eps)), m = (float)mu;
        for (int i0 = 0; i0 < n; i0 += run)
        {
            int ch = channel(i0);
            float gg = g == null ? 1f : g[ch], bb = b == null ? 0f : b[ch];
            for (int i = i0; i < i0 + run; i++) ys[i] = (xs[i] - m) * rs * gg + bb;
        }
        return (m, rs);
    }

    // ---- Backward (Ops.Normalize). With xhat = (x - m) rstd and dxhat = dY g:
    //   dX = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dgamma = sum dY xhat,  dbeta = sum dY.
    // Derivation: docs/derivations/normalization.md. The row sums are float vector partial sums over chunks of
    // Chunk elements, added in double (as RowMoments); BackwardRowReference is the scalar loop they replaced.

    /// <summary>Sum d g and sum d g xhat, xhat = (x - m) rstd, with per-element channels g (LayerNorm). With g empty
    /// (taken as 1), over a run that shares one channel (GroupNorm), they are the run's dbeta and dgamma, and times
    /// the channel's gamma its share of sum dxhat and sum dxhat xhat.</summary>
    public static (double SumDg, double SumDgXhat) GradSums(ReadOnlySpan<float> x, ReadOnlySpan<float> d,
        ReadOnlySpan<float> g, float m, float rstd)
    {
        double s1 = 0, s2 = 0;
        var mv = new Vector<float>(m);
        int w = Vector<float>.Count;
        for (int c0 = 0; c0 < x.Length; c0 += Chunk)
        {
            int len = Math.Min(Chunk, x.Length - c0), i = 0;
            var xs = x.Slice(c0, len); var ds = d.Slice(c0, len); var gs = g.IsEmpty ? default : g.Slice(c0, len);
            var a1 = Vector<float>.Zero; var a2 = Vector<float>.Zero;
            for (; i <= len - w; i += w)
            {
                var dv = new Vector<float>(ds.Slice(i, w));
                if (!gs.IsEmpty) dv *= new Vector<float>(gs.Slice(i, w));
                a1 += dv; a2 += dv * (new Vector<float>(xs.Slice(i, w)) - mv);
            }
            float p1 = Vector.Sum(a1), p2 = Vector.Sum(a2);
            for (; i < len; i++) { float dg = ds[i] * (gs.IsEmpty ? 1f : gs[i]); p1 += dg; p2 += dg * (xs[i] - m); }
            s1 += p1; s2 += p2;
        }
        return (s1, s2 * rstd);
    }

    /// <summary>dX += rstd (d g - a1 - xhat a2) over a run sharing one channel (a1 = mean dxhat, a2 = mean dxhat xhat);
    /// the same float operations per element as the scalar reference, so each element matches it given a1,
    /// a2.</summary>
    public static void ApplyGradRun(ReadOnlySpan<float> x, ReadOnlySpan<float> d, Span<float> dX, float m, float rstd,
        float g, float a1, float a2)
    {
        var mv = new Vector<float>(m); var rv = new Vector<float>(rstd); var gv = new Vector<float>(g);
        var a1v = new Vector<float>(a1); var a2v = new Vector<float>(a2);
        int i = 0, w = Vector<float>.Count;
        for (; i <= x.Length - w; i += w)
        {
            var xh = (new Vector<float>(x.Slice(i, w)) - mv) * rv;
            var upd = rv * (new Vector<float>(d.Slice(i, w)) * gv - a1v - xh * a2v);
            (new Vector<float>(dX.Slice(i, w)) + upd).CopyTo(dX.Slice(i, w));
        }
        for (; i < x.Length; i++) { float xh = (x[i] - m) * rstd; dX[i] += rstd * (d[i] * g - a1 - xh * a2); }
    }

    /// <summary><see cref="ApplyGradRun"/> with per-element channels (LayerNorm); g empty means 1.</summary>
    public static void ApplyGradPerElement(ReadOnlySpan<float> x, ReadOnlySpan<float> d, Span<float> dX, float m,
        float rstd, ReadOnlySpan<float> g, float a1, float a2)
    {
        if (g.IsEmpty) { ApplyGradRun(x, d, dX, m, rstd, 1f, a1, a2); return; }
        var mv = new Vector<float>(m); var rv = new Vector<float>(rstd);
        var a1v = new Vector<float>(a1); var a2v = new Vector<float>(a2);
        int i = 0, w = Vector<float>.Count;
        for (; i <= x.Length - w; i += w)
        {
            var xh = (new Vector<float>(x.Slice(i, w)) - mv) * rv;
            var upd = rv * (new Vector<float>(d.Slice(i, w)) * new Vector<float>(g.Slice(i, w)) - a1v - xh * a2v);
            (new Vector<float>(dX.Slice(i, w)) + upd).CopyTo(dX.Slice(i, w));
        }
        for (; i < x.Length; i++) { float xh = (x[i] - m) * rstd; dX[i] += rstd * (d[i] * g[i] - a1 - xh * a2); }
    }

    /// <summary>
    /// GroupNorm+SiLU backward's first step over a run sharing one channel: a = (x - m) (rstd g) + b recomputed as the
    /// forward's <see cref="ApplyRun"/> computed it, then dA = dOut silu'(a) (written, not accumulated) by
    /// <see cref="Activations.SiluBackward"/>, chunk by chunk through the stack.
    /// </summary>
    public static void SiluGradThroughRun(ReadOnlySpan<float> x, ReadOnlySpan<float> dOut, Span<float> dA, float m,
        float rstd, float g, float b)
    {
        Span<float> a = stackalloc float[Chunk];
        for (int c0 = 0; c0 < x.Length; c0 += Chunk)
        {
            int len = Math.Min(Chunk, x.Length - c0);
            var ac = a[..len]; var dc = dA.Slice(c0, len);
            ApplyRun(x.Slice(c0, len), ac, m, rstd, g, b);
            dc.Clear();
            Activations.SiluBackward(ac, ac, dOut.Slice(c0, len), dc);
        }
    }

    /// <summary>
    /// Reference for one row of the backward: the scalar loops the kernels above replaced. Channel constant over runs
    /// of <paramref name="run"/> (run 1: element i uses channel ch0 + i); g null means 1. Accumulates into dX and
    /// returns the per-run (sum dY xhat, sum dY) of runs longer than one element.
    /// </summary>
    public static (double[] SumDXhat, double[] SumD) BackwardRowReference(ReadOnlySpan<float> xs,
        ReadOnlySpan<float> D, Span<float> dX,
                                                                         float m, float rs, int run,
                                                                             Func<int, int> channel, float[]? g)
    {
        int n = xs.Length, runs = n / run;
        var gs = new double[runs]; var bs = new double[runs];
        double s1 = 0, s2 = 0;
        for (int i0 = 0, j = 0; i0 < n; i0 += run, j++)
            for (int i = i0; i < i0 + run; i++)
            {
                float gg = g == null ? 1f : g[channel(i)];
                float xh = (xs[i] - m) * rs, d = D[i], dxh = d * gg;
                s1 += dxh; s2 += dxh * xh;
                gs[j] += d * xh; bs[j] += d;
            }
        float a1 = (float)(s1 / n), a2 = (float)(s2 / n);
        for (int i = 0; i < n; i++)
        {
            float gg = g == null ? 1f : g[channel(i)];
            float xh = (xs[i] - m) * rs;
            dX[i] += rs * (D[i] * gg - a1 - xh * a2);
        }
        return (gs, bs);
    }
}
