using System.Diagnostics;
using Pictor.Engine;

namespace Pictor.Bench;

/// <summary>
/// The UNet's 3x3 convolutions, batch 32, forward and forward + backward, with the implicit GEMM and with the explicit
/// im2col matrix (Ops.UseImplicitGemm), alternating iteration by iteration so both see the same machine state.
/// `Pictor.Bench conv [iters]`.
/// </summary>
public static class ConvBench
{
    public static void Run(int iters)
    {
        Console.WriteLine($"# 3x3 convolution, stride 1, pad 1, batch 32, {Pictor.Engine.Kernels.Parallelism.Threads} threads, median of {iters}, ms");
        Console.WriteLine("| C -> O, size | pass | im2col | implicit | Winograd | Winograd / implicit speed-up | implicit GFLOP/s | Winograd effective GFLOP/s | max difference |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var (c, o, s) in new[] { (64, 64, 32), (128, 128, 16), (256, 256, 8), (128, 64, 32) })
            foreach (bool backward in new[] { false, true })
            {
                var rng = new Rng(1);
                var x = rng.Randn(32, c, s, s); var w = rng.Randn(o, c, 3, 3);
                x.RequiresGrad = backward; w.RequiresGrad = backward;
                var times = new List<double>[] { [], [], [] };
                var outs = new float[3][];
                for (int it = 0; it < iters + 1; it++)
                    for (int mode = 0; mode < 3; mode++)
                    {
                        Ops.UseImplicitGemm = mode >= 1;
                        Ops.UseWinograd = mode == 2;
                        var sw = Stopwatch.StartNew();
                        using (TensorScope.Begin())
                        {
                            var y = Ops.Conv2d(x, w, null, 1, 1);
                            if (backward) { Ops.Sum(y).Backward(); x.Grad = null; w.Grad = null; }
                            else if (it == 0) outs[mode] = y.ToArray();
                        }
                        if (it > 0) times[mode].Add(sw.Elapsed.TotalMilliseconds);
                    }
                Ops.UseImplicitGemm = true; Ops.UseWinograd = Pictor.Engine.Kernels.Winograd.Available;
                double a = Median(times[0]), b = Median(times[1]), wg = Median(times[2]);
                double flop = 2.0 * 32 * o * c * 9 * s * s * (backward ? 3 : 1);
                string diff = backward ? "" : FormattableString.Invariant($"{outs[1].Zip(outs[2], (p, q) => Math.Abs(p - q)).Max():G3} (of max |y| {outs[1].Max(Math.Abs):G3})");
                Console.WriteLine(FormattableString.Invariant($"| {c} -> {o}, {s}x{s} | {(backward ? "fwd + bwd" : "fwd")} | {a:F1} | {b:F1} | {wg:F1} | {b / wg:F2} | {flop / b / 1e6:F0} | {flop / wg / 1e6:F0} | {diff} |"));
            }
    }

    /// <summary>One image's pieces of the implicit GEMM (64 channels, 32x32, 3x3): packing im2col and its transpose
    /// for the whole K x N, and the forward and weight-gradient products. `Pictor.Bench conv-parts`.</summary>
    /// <summary>One image's convolution parts, C -> C channels at SIZE x SIZE, 3x3, padding 1:
    /// `conv-parts REPS [SIZE [C]]` (default 32, 64).</summary>
    public static unsafe void Parts(int reps, int s = 32, int c = 64)
    {
        int o = c;
        var g = new Pictor.Engine.Kernels.ConvGeometry(c, s, s, 3, 3, 1, 1, s, s);
        var rng = new Rng(1);
        var x = rng.Randn(c * s * s).ToArray(); var wt = rng.Randn(o * c * 9).ToArray(); var dy = rng.Randn(o * s * s).ToArray();
        var y = new float[o * s * s]; var dw = new float[o * c * 9];
        var packed = new float[256 * 1024];
        using var pw = Pictor.Engine.Kernels.Gemm.PackForSerial(false, o, c * 9, wt, c * 9)!;
        int nr = Pictor.Engine.Kernels.SimdGemm.NR;   // the panel width the micro-kernel on this machine uses
        double Time(Action a) { var warm = Stopwatch.StartNew(); while (warm.ElapsedMilliseconds < 500) a(); var sw = Stopwatch.StartNew(); for (int i = 0; i < reps; i++) a(); return sw.Elapsed.TotalMilliseconds / reps; }
        double packFwd = Time(() => { fixed (float* px = x) fixed (float* pp = packed) for (int p0 = 0; p0 < g.K; p0 += 256) for (int j0 = 0; j0 < g.N; j0 += 256) Pictor.Engine.Kernels.ImplicitGemm.PackIm2Col(px, g, p0, Math.Min(256, g.K - p0), j0, Math.Min(256, g.N - j0), nr, pp); });
        double packT = Time(() => { fixed (float* px = x) fixed (float* pp = packed) for (int p0 = 0; p0 < g.N; p0 += 256) for (int j0 = 0; j0 < g.K; j0 += 256) Pictor.Engine.Kernels.ImplicitGemm.PackIm2ColT(px, g, p0, Math.Min(256, g.N - p0), j0, Math.Min(256, g.K - j0), nr, pp); });
        double fwd = Time(() => Pictor.Engine.Kernels.ImplicitGemm.Run(pw, x, g, 0f, y, s * s));
        double wg = Time(() => Pictor.Engine.Kernels.ImplicitGemm.RunWeightGrad(dy, o, x, g, dw, c * 9));
        double flop = 2.0 * o * c * 9 * s * s;
        Console.WriteLine(FormattableString.Invariant($"{c} -> {o} at {s}x{s}, per image, ms: pack im2col {packFwd:F3}, pack im2col^T {packT:F3}, forward {fwd:F3} ({flop / fwd / 1e6:F0} GFLOP/s), weight grad {wg:F3} ({flop / wg / 1e6:F0} GFLOP/s)"));
    }

    private static double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }
}
