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
        Console.WriteLine("| C -> O, size | pass | im2col | implicit | speed-up | implicit GFLOP/s |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (c, o, s) in new[] { (64, 64, 32), (128, 128, 16), (256, 256, 8), (128, 64, 32) })
            foreach (bool backward in new[] { false, true })
            {
                var rng = new Rng(1);
                var x = rng.Randn(32, c, s, s); var w = rng.Randn(o, c, 3, 3);
                x.RequiresGrad = backward; w.RequiresGrad = backward;
                var times = new List<double>[] { [], [] };
                for (int it = 0; it < iters + 1; it++)
                    for (int mode = 0; mode < 2; mode++)
                    {
                        Ops.UseImplicitGemm = mode == 1;
                        var sw = Stopwatch.StartNew();
                        using (TensorScope.Begin())
                        {
                            var y = Ops.Conv2d(x, w, null, 1, 1);
                            if (backward) { Ops.Sum(y).Backward(); x.Grad = null; w.Grad = null; }
                        }
                        if (it > 0) times[mode].Add(sw.Elapsed.TotalMilliseconds);
                    }
                double a = Median(times[0]), b = Median(times[1]);
                double flop = 2.0 * 32 * o * c * 9 * s * s * (backward ? 3 : 1);
                Console.WriteLine(FormattableString.Invariant($"| {c} -> {o}, {s}x{s} | {(backward ? "fwd + bwd" : "fwd")} | {a:F1} | {b:F1} | {a / b:F2} | {flop / b / 1e6:F0} |"));
            }
        Ops.UseImplicitGemm = true;
    }

    private static double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }
}
