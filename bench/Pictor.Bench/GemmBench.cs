using System.Diagnostics;
using System.Runtime.InteropServices;
using Pictor.Engine;
using Pictor.Engine.Kernels;

namespace Pictor.Bench;

/// <summary>
/// GEMM through Pictor's entry point (each backend) against cblas_sgemm called directly (its own P/Invoke here, so the
/// ratio shows what our entry point costs). Napkin maths: an M x N x K product is 2 M N K flops; the FMA peak of this
/// machine is 2 cores x 2 FMA units x 16 lanes x 2 flops x clock (about 455 GFLOP/s at 3.55 GHz, AVX-512).
/// </summary>
internal static unsafe class GemmBench
{
    [DllImport("libopenblas.so.0", EntryPoint = "cblas_sgemm")]
    private static extern void CblasSgemm(int order, int ta, int tb, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    public static void Run(int[] sizes, int iters)
    {
        Console.WriteLine($"# GEMM, row-major C = A B, {Parallelism.Threads} threads, OPENBLAS_CORETYPE={Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)"}, median of {iters} after warm-up");
        Console.WriteLine($"# default entry point: {Gemm.Backend}{(Gemm.Hybrid ? $", hybrid (OpenBLAS core {OpenBlasInfo.CoreName} lacks AVX-512: managed kernel for M N K >= 2^25)" : "")}");
        Console.WriteLine("| M=N=K | OpenBLAS direct GFLOP/s | Pictor (OpenBLAS) GFLOP/s | ratio | Pictor managed SIMD GFLOP/s | managed / direct |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (int n in sizes)
        {
            var rng = new Rng(1);
            var a = new float[n * n]; var b = new float[n * n]; var c = new float[n * n];
            rng.FillNormal(a); rng.FillNormal(b);
            double flops = 2.0 * n * n * n;
            double direct = double.NaN, viaPictor = double.NaN;
            if (OpenBlasInfo.Available)
            {
                direct = Median(iters, () =>
                {
                    fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
                        CblasSgemm(101, 111, 111, n, n, n, 1f, pa, n, pb, n, 0f, pc, n);
                });
                viaPictor = Median(iters, () => Gemm.Sgemm(GemmBackend.OpenBlas, false, false, n, n, n, 1f, a, n, b, n, 0f, c, n));
            }
            double managed = Median(Math.Max(3, n >= 2048 ? iters / 3 : iters), () => Gemm.Sgemm(GemmBackend.Simd, false, false, n, n, n, 1f, a, n, b, n, 0f, c, n));
            double g(double s) => flops / s / 1e9;
            Console.WriteLine($"| {n} | {g(direct):F1} | {g(viaPictor):F1} | {direct / viaPictor:F3} | {g(managed):F1} | {direct / managed:F3} |");
        }
    }

    /// <summary>Median seconds of <paramref name="iters"/> runs after 2 warm-up runs.</summary>
    internal static double Median(int iters, Action f)
    {
        f(); f();
        var t = new double[iters];
        for (int i = 0; i < iters; i++)
        {
            var sw = Stopwatch.StartNew();
            f();
            t[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(t);
        return t[iters / 2];
    }
}
