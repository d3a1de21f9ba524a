using Pictor.Engine.Kernels;

namespace Pictor.Engine.Tests;

/// <summary>The implicit-GEMM convolution (im2col packed straight from the image; dX of stride-1 convolutions as the
/// flipped-kernel convolution of dY) against the explicit im2col + GEMM + col2im path it replaces, on geometries that
/// reach every edge of the packing: padding wider than the kernel's reach, stride 2, output rows that do not fill a
/// panel, more columns than one packed block (NC = 256), more rows of im2col than one K block (KC = 256), more output
/// channels than one row block (MC = 96), groups.</summary>
[Collection("BufferPool")]
public class ConvImplicitGemmTests
{
    private static (float[] Y, float[] Dx, float[] Dw) Run(bool implicitGemm, int threads, int b, int c, int o, int h, int w, int k, int stride, int pad, int groups)
    {
        int savedThreads = Parallelism.Threads; bool saved = Ops.UseImplicitGemm;
        try
        {
            Parallelism.Threads = threads; Ops.UseImplicitGemm = implicitGemm;
            var rng = new Rng(11);
            var x = rng.Randn(b, c, h, w); x.RequiresGrad = true;
            var wt = rng.Randn(o, c / groups, k, k); wt.RequiresGrad = true;
            var y = Ops.Conv2d(x, wt, null, stride, pad, groups);
            var r = rng.Randn(y.Shape);   // a random upstream gradient, so every dY entry matters
            Ops.Sum(Ops.Mul(y, r)).Backward();
            return (y.ToArray(), x.Grad!.ToArray(), wt.Grad!.ToArray());
        }
        finally { Parallelism.Threads = savedThreads; Ops.UseImplicitGemm = saved; }
    }

    [Theory]
    [InlineData(3, 5, 7, 9, 9, 3, 1, 1, 1)]       // odd size, one panel per row plus a tail
    [InlineData(2, 3, 8, 32, 32, 3, 1, 1, 1)]     // a panel is exactly one output row; N = 1024 > NC
    [InlineData(2, 4, 6, 7, 11, 3, 2, 1, 1)]      // stride 2, non-square image (dX stays on col2im)
    [InlineData(2, 3, 4, 10, 10, 5, 1, 2, 1)]     // 5x5 kernel
    [InlineData(2, 3, 4, 10, 10, 3, 1, 0, 1)]     // no padding: dX pads dY by 2
    [InlineData(2, 3, 4, 6, 6, 3, 1, 3, 1)]       // padding wider than the kernel reaches (dX falls back)
    [InlineData(2, 40, 100, 12, 12, 3, 1, 1, 1)]  // K = 360 > KC, M = 100 > MC
    [InlineData(3, 8, 6, 9, 9, 3, 1, 1, 2)]       // groups
    public void Implicit_gemm_matches_im2col(int b, int c, int o, int h, int w, int k, int stride, int pad, int groups)
    {
        Assert.True(ImplicitGemm.Available, "this machine has no Vector512/Vector256, so the path under test is never taken");
        // Image-parallel on 2 threads, and one thread (where the implicit GEMM replaces im2col + OpenBLAS too).
        foreach (int threads in new[] { 2, 1 })
            Compare(threads, b, c, o, h, w, k, stride, pad, groups);
    }

    private static void Compare(int threads, int b, int c, int o, int h, int w, int k, int stride, int pad, int groups)
    {
        var reference = Run(false, threads, b, c, o, h, w, k, stride, pad, groups);
        var fast = Run(true, threads, b, c, o, h, w, k, stride, pad, groups);
        foreach (var (a, f, name) in new[] { (reference.Y, fast.Y, "y"), (reference.Dx, fast.Dx, "dx"), (reference.Dw, fast.Dw, "dw") })
        {
            Assert.Equal(a.Length, f.Length);
            double scale = a.Max(v => Math.Abs(v));
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - f[i]) <= 1e-5 * scale, $"{threads} threads, {name}[{i}]: im2col {a[i]} vs implicit {f[i]}");
        }
        var again = Run(true, threads, b, c, o, h, w, k, stride, pad, groups);
        Assert.Equal(fast.Y, again.Y); Assert.Equal(fast.Dx, again.Dx);
    }
}
