using System.Diagnostics;
using Pictor.Engine;

namespace Pictor.Bench;

/// <summary>
/// Strided copies of transposed feature maps, as every AttnBlock makes them ([B, C, T] to [B, T, C] forward, the
/// accumulate back in backward), with the tiled kernel and with the odometer, alternating so both see the same machine
/// state. `Pictor.Bench transpose [iters]`.
/// </summary>
public static class TransposeBench
{
    public static void Run(int iters)
    {
        Console.WriteLine($"# transposed copy [B, C, T] -> [B, T, C] and accumulate back, {Pictor.Engine.Kernels.Parallelism.Threads} threads, median of {iters}, ms");
        Console.WriteLine("| B, C, T | pass | odometer | tiled | speed-up |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var (b, c, t) in new[] { (32, 32, 1024), (32, 64, 256), (32, 128, 64), (32, 128, 256) })
            foreach (bool scatter in new[] { false, true })
            {
                var rng = new Rng(1);
                var x = rng.Randn(b, c, t); var view = Ops.Transpose(x, 1, 2);
                var flat = new float[x.Numel]; var src = rng.Randn(b * t * c).ToArray();
                var times = new List<double>[] { [], [] };
                for (int it = 0; it < iters + 1; it++)
                    for (int mode = 0; mode < 2; mode++)
                    {
                        var sw = Stopwatch.StartNew();
                        if (scatter) { if (mode == 0) StridedCopy.WriteFromContiguousReference(src, view, true); else StridedCopy.WriteFromContiguous(src, view, true); }
                        else { if (mode == 0) StridedCopy.ToContiguousReference(view, flat); else StridedCopy.ToContiguous(view, flat); }
                        if (it > 0) times[mode].Add(sw.Elapsed.TotalMilliseconds);
                    }
                times[0].Sort(); times[1].Sort();
                double a = times[0][times[0].Count / 2], m = times[1][times[1].Count / 2];
                Console.WriteLine(FormattableString.Invariant($"| {b}, {c}, {t} | {(scatter ? "accumulate back" : "gather")} | {a:F2} | {m:F2} | {a / m:F1} |"));
            }
    }
}
