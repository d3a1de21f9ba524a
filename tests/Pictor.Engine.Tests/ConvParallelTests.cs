using Pictor.Engine.Kernels;

namespace Pictor.Engine.Tests;

/// <summary>Convolution shares a batch's images among threads (serial GEMM per image) when there is at least one
/// image per thread; with one thread it splits each GEMM instead. Both paths must give the same values and
/// gradients, for a batch that does not divide evenly, and repeat bit-identically.</summary>
[Collection("BufferPool")]
public class ConvParallelTests
{
    private static (float[] Y, float[] Dx, float[] Dw, float[] Db) Run(int threads)
    {
        int saved = Parallelism.Threads;
        try
        {
            Parallelism.Threads = threads;
            var rng = new Rng(4);
            var x = rng.Randn(3, 5, 9, 9); x.RequiresGrad = true;
            var w = rng.Randn(7, 5, 3, 3); w.RequiresGrad = true;
            var b = rng.Randn(7); b.RequiresGrad = true;
            var y = Ops.Conv2d(x, w, b, stride: 1, padding: 1);
            Ops.Sum(Ops.Mul(y, y)).Backward();
            return (y.ToArray(), x.Grad!.ToArray(), w.Grad!.ToArray(), b.Grad!.ToArray());
        }
        finally { Parallelism.Threads = saved; }
    }

    [Fact]
    public void Image_parallel_and_gemm_parallel_paths_agree()
    {
        var one = Run(1); var two = Run(2); var twoAgain = Run(2);
        foreach (var (a, c, name) in new[] { (one.Y, two.Y, "y"), (one.Dx, two.Dx, "dx"), (one.Dw, two.Dw, "dw"), (one.Db, two.Db, "db") })
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - c[i]) <= 1e-4 * (1 + Math.Abs(a[i])), $"{name}[{i}]: {a[i]} vs {c[i]}");
        Assert.Equal(two.Dw, twoAgain.Dw);
        Assert.Equal(two.Dx, twoAgain.Dx);
    }
}
