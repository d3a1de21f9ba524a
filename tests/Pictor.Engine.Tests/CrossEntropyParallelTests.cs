using Pictor.Engine.Kernels;

namespace Pictor.Engine.Tests;

/// <summary>Cross-entropy shares blocks of rows among threads and adds the row losses in row order: 1 and 2 threads
/// give bit-identical losses and gradients, which also match a double-precision reference (ignored rows, row weights,
/// label smoothing, more rows than one block).</summary>
[Collection("BufferPool")]
public class CrossEntropyParallelTests
{
    private const int Rows = 203, C = 37;

    private static (float Loss, float[] Dx) Run(int threads, float[] x, int[] t, float[] w, float eps)
    {
        int saved = Parallelism.Threads;
        try
        {
            Parallelism.Threads = threads;
            var logits = Tensor.FromArray((float[])x.Clone(), Rows, C); logits.RequiresGrad = true;
            var loss = Ops.CrossEntropy(logits, new IntTensor(t, Rows), ignoreIndex: -1, labelSmoothing: eps, rowWeights: w);
            loss.Backward();
            return (loss.Item(), logits.Grad!.ToArray());
        }
        finally { Parallelism.Threads = saved; }
    }

    [Fact]
    public void One_and_two_threads_agree_bit_for_bit_and_with_the_double_reference()
    {
        var rng = new Rng(5);
        var x = rng.Randn(Rows, C).ToArray().Select(v => 3 * v).ToArray();
        var t = Enumerable.Range(0, Rows).Select(r => r % 11 == 0 ? -1 : rng.NextInt(C)).ToArray();
        var w = Enumerable.Range(0, Rows).Select(r => r % 3 == 0 ? 0.125f : 0.875f).ToArray();
        const float eps = 0.1f;
        var one = Run(1, x, t, w, eps); var two = Run(2, x, t, w, eps);
        Assert.Equal(one.Loss, two.Loss);
        Assert.Equal(one.Dx, two.Dx);

        // Reference: loss = sum_r w_r (-(1-eps) logp[t] - eps/C sum logp) / sum_r w_r; dx = w_r (p - q) / sum w.
        double total = 0, count = 0; var dx = new double[Rows * C];
        for (int r = 0; r < Rows; r++)
        {
            if (t[r] < 0) continue;
            var row = x.Skip(r * C).Take(C).Select(v => (double)v).ToArray();
            double max = row.Max(), lse = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
            var logp = row.Select(v => v - lse).ToArray();
            total += w[r] * (-(1 - eps) * logp[t[r]] - eps / C * logp.Sum()); count += w[r];
            for (int i = 0; i < C; i++) dx[r * C + i] = w[r] * (Math.Exp(logp[i]) - eps / C - (i == t[r] ? 1 - eps : 0));
        }
        Assert.True(Math.Abs(one.Loss - total / count) <= 1e-5 * Math.Abs(total / count), $"loss {one.Loss} vs {total / count}");
        for (int i = 0; i < dx.Length; i++) Assert.True(Math.Abs(one.Dx[i] - dx[i] / count) <= 1e-6, $"dx[{i}] {one.Dx[i]} vs {dx[i] / count}");
    }
}
