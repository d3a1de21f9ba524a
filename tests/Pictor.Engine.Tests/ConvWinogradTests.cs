using Pictor.Engine.Kernels;

namespace Pictor.Engine.Tests;

/// <summary>Winograd's F(2x2, 3x3) convolution (forward, and dX as the flipped-kernel convolution of dY) against the
/// explicit im2col + GEMM path, the oracle every convolution path is tested against: widths 8, 16, 32 and 64,
/// small images sharing a chunk, a non-square image, more input channels than one K block (KC = 256), more output channels than one row block
/// (MC = 96) and a tail row panel; then that it is really the path taken, that it is deterministic and the same on one
/// thread and two, and that the shapes it does not cover still fall back.</summary>
[Collection("BufferPool")]
public class ConvWinogradTests
{
    private static (float[] Y, float[] Dx, float[] Dw) Run(int path, int threads, int b, int c, int o, int h, int w, int k = 3, int stride = 1, int pad = 1)
    {
        int savedThreads = Parallelism.Threads; bool savedImplicit = Ops.UseImplicitGemm, savedWinograd = Ops.UseWinograd;
        try
        {
            // path 0: im2col + GEMM (the oracle); 1: implicit GEMM; 2: implicit GEMM with Winograd where it applies.
            Parallelism.Threads = threads; Ops.UseImplicitGemm = path >= 1; Ops.UseWinograd = path == 2;
            var rng = new Rng(5);
            var x = rng.Randn(b, c, h, w); x.RequiresGrad = true;
            var wt = rng.Randn(o, c, k, k); wt.RequiresGrad = true;
            var bias = rng.Randn(o); bias.RequiresGrad = true;
            var y = Ops.Conv2d(x, wt, bias, stride, pad);
            var r = rng.Randn(y.Shape);   // a random upstream gradient, so every dY entry matters
            Ops.Sum(Ops.Mul(y, r)).Backward();
            return (y.ToArray(), x.Grad!.ToArray(), wt.Grad!.ToArray());
        }
        finally { Parallelism.Threads = savedThreads; Ops.UseImplicitGemm = savedImplicit; Ops.UseWinograd = savedWinograd; }
    }

    private static void AssertClose(float[] expected, float[] actual, string what, double tolerance = 2e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(v => Math.Abs(v));
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * scale, $"{what}[{i}]: im2col {expected[i]} vs Winograd {actual[i]} (scale {scale})");
    }

    [Theory]
    [InlineData(2, 8, 12, 16, 16)]     // 64 tiles: one chunk, two 32-tile panels; 12 outputs = two row panels
    [InlineData(2, 5, 7, 32, 32)]      // 256 tiles: four chunks; odd channel counts
    [InlineData(2, 3, 4, 8, 32)]       // non-square: 4 tile rows of 16
    [InlineData(1, 4, 3, 16, 64)]      // width 64: a chunk is two tile rows
    [InlineData(2, 300, 6, 16, 16)]    // C = 300 > KC: two K blocks of transformed input
    [InlineData(2, 16, 100, 16, 16)]   // O = 100 > MC: two row blocks, the last panel partial
    [InlineData(5, 16, 8, 8, 8)]       // 8x8: images share chunks (calls of 3 and 2 images: 48 and 32 tiles)
    [InlineData(1, 4, 4, 4, 8)]        // 8 tiles: one part-filled panel
    public void Winograd_matches_im2col(int b, int c, int o, int h, int w)
    {
        Assert.True(Winograd.Available, "this machine has no Vector512, so the path under test is never taken");
        Assert.True(Winograd.Applies(new ConvGeometry(c, h, w, 3, 3, 1, 1, h, w)), "the test geometry is one Winograd does not take");
        var reference = Run(0, 2, b, c, o, h, w);
        foreach (int threads in new[] { 2, 1 })
        {
            var fast = Run(2, threads, b, c, o, h, w);
            AssertClose(reference.Y, fast.Y, $"{threads} threads, y");
            AssertClose(reference.Dx, fast.Dx, $"{threads} threads, dx");
            AssertClose(reference.Dw, fast.Dw, $"{threads} threads, dw");
        }
    }

    [Fact]
    public void Winograd_is_the_path_taken_and_deterministic_on_any_thread_count()
    {
        // Its sums run in another order than the implicit GEMM's, so the bits differ where it ran; dW (not Winograd)
        // stays identical.
        var implicitGemm = Run(1, 2, 2, 16, 16, 32, 32);
        var two = Run(2, 2, 2, 16, 16, 32, 32);
        Assert.NotEqual(implicitGemm.Y, two.Y);
        Assert.NotEqual(implicitGemm.Dx, two.Dx);
        Assert.Equal(implicitGemm.Dw, two.Dw);
        var again = Run(2, 2, 2, 16, 16, 32, 32);
        var one = Run(2, 1, 2, 16, 16, 32, 32);
        Assert.Equal(two.Y, again.Y); Assert.Equal(two.Dx, again.Dx);
        Assert.Equal(two.Y, one.Y); Assert.Equal(two.Dx, one.Dx);
    }

    [Theory]
    [InlineData(6, 8, 3, 1, 1)]      // 12 tiles: neither a chunk nor a divisor of one
    [InlineData(16, 24, 3, 1, 1)]    // width 24: a tile row is not whole 8-tile vectors
    [InlineData(16, 16, 3, 2, 1)]    // stride 2
    [InlineData(16, 16, 3, 1, 0)]    // no padding
    [InlineData(16, 16, 5, 1, 2)]    // 5x5
    public void Shapes_it_does_not_take_fall_back_to_the_implicit_gemm(int h, int w, int k, int stride, int pad)
    {
        int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
        Assert.False(Winograd.Applies(new ConvGeometry(4, h, w, k, k, stride, pad, oh, ow)));
        var implicitGemm = Run(1, 2, 2, 4, 5, h, w, k, stride, pad);
        var withWinograd = Run(2, 2, 2, 4, 5, h, w, k, stride, pad);
        Assert.Equal(implicitGemm.Y, withWinograd.Y);
        Assert.Equal(implicitGemm.Dx, withWinograd.Dx);
    }

    [Fact]
    public void Kernel_accumulates_with_beta_and_rejects_what_it_cannot_compute()
    {
        Assert.True(Winograd.Available, "this machine has no Vector512");
        var rng = new Rng(9);
        int c = 6, o = 5, h = 16, w = 16;
        var g = new ConvGeometry(c, h, w, 3, 3, 1, 1, h, w);
        var x = rng.Randn(c * h * w).ToArray(); var wt = rng.Randn(o * c * 9).ToArray(); var y0 = rng.Randn(o * h * w).ToArray();
        // Oracle: the implicit GEMM kernel with the same beta.
        var expected = (float[])y0.Clone();
        using (var packed = Gemm.PackForSerial(false, o, c * 9, wt, c * 9)!) ImplicitGemm.Run(packed, x, g, 0.5f, expected, h * w);
        var actual = (float[])y0.Clone();
        using (var u = Winograd.TransformWeights(wt, o, c)) Winograd.Run(u, x, g, 0.5f, actual);
        AssertClose(expected, actual, "y");
        using var u2 = Winograd.TransformWeights(wt, o, c);
        var e1 = Assert.Throws<ArgumentException>(() => Winograd.Run(u2, x, g with { C = 7 }, 0f, new float[o * h * w]));
        Assert.Contains("transformed for 6 input channels", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => Winograd.Run(u2, x, g with { Stride = 2, OH = 8, OW = 8 }, 0f, new float[o * h * w]));
        Assert.Contains("stride-1", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => Winograd.Run(u2, x.AsSpan(0, 10), g, 0f, new float[o * h * w]));
        Assert.Contains("input has 10 values", e3.Message);
    }
}
