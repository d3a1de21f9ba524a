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

    /// <summary>Mean and 1/sqrt(biased variance + eps) of x, variance from deviations (two passes, no cancellation).</summary>
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

    /// <summary>y = (x - m) rstd g + b over a run that shares one channel (GroupNorm: one channel's positions).</summary>
    public static void ApplyRun(ReadOnlySpan<float> x, Span<float> y, float m, float rstd, float g, float b)
    {
        float sg = rstd * g;
        var mv = new Vector<float>(m); var sv = new Vector<float>(sg); var bv = new Vector<float>(b);
        int i = 0, w = Vector<float>.Count;
        for (; i <= x.Length - w; i += w) ((new Vector<float>(x.Slice(i, w)) - mv) * sv + bv).CopyTo(y.Slice(i, w));
        for (; i < x.Length; i++) y[i] = (x[i] - m) * sg + b;
    }

    /// <summary>y_i = (x_i - m) rstd g_i + b_i with per-element channels (LayerNorm); g, b empty means 1, 0.</summary>
    public static void ApplyPerElement(ReadOnlySpan<float> x, Span<float> y, float m, float rstd, ReadOnlySpan<float> g, ReadOnlySpan<float> b)
    {
        TensorPrimitives.Subtract(x, m, y);
        TensorPrimitives.Multiply(y, rstd, y);
        if (!g.IsEmpty) TensorPrimitives.Multiply(y, g, y);
        if (!b.IsEmpty) TensorPrimitives.Add(y, b, y);
    }

    /// <summary>Reference: the scalar double-precision loops (statistics and affine map) for one row whose channel
    /// is constant over runs of <paramref name="run"/>; channel(i) gives element i's affine channel.</summary>
    public static (float Mean, float Rstd) NormalizeRowReference(ReadOnlySpan<float> xs, Span<float> ys, float eps, int run,
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
}
