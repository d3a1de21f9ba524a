using System.Runtime.InteropServices;

namespace Pictor.Engine.Kernels;

/// <summary>cblas_sgemm from OpenBLAS, loaded at run time so Pictor still runs (on the managed kernel) without
/// it.</summary>
internal static unsafe class OpenBlas
{
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    private static readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int,
        float, float*, int, void> sgemm;
    private static readonly delegate* unmanaged[Cdecl]<int, void> setThreads;

    public static bool IsAvailable { get; }
    public static string LoadError { get; } = "";
    public static string? LibraryPath { get; }
    /// <summary>The kernel family OpenBLAS chose ("Haswell", "SkylakeX", ...; OPENBLAS_CORETYPE forces it).</summary>
    public static string CoreName { get; } = "";

    /// <summary>True when OpenBLAS runs a kernel without AVX-512 on a CPU that has it (OPENBLAS_CORETYPE=Haswell on an
    /// AVX-512 machine): there the managed Vector512 kernel is faster for all but small products
    /// (bench/RESULTS.md).</summary>
    public static bool BelowCpu => IsAvailable && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated
        && !(CoreName.Contains("skylakex", StringComparison.OrdinalIgnoreCase)
            || CoreName.Contains("cooperlake", StringComparison.OrdinalIgnoreCase)
             || CoreName.Contains("sapphire", StringComparison.OrdinalIgnoreCase)
                 || CoreName.Contains("zen5", StringComparison.OrdinalIgnoreCase));

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv(string name, string value, int overwrite);

    static OpenBlas()
    {
        // OpenBLAS's worker threads spin on sched_yield for 2^28 cycles after each call before sleeping. Between
        // GEMMs our own threads are busy (image-parallel convolution, norms, attention), so on 2 cores the spinning
        // worker steals their time: a third of the xs training step was kernel time. 2^4 cycles makes it sleep at
        // once (bench/RESULTS.md, "Spinning threads"). It must be in the C environment before the library loads;
        // .NET's Environment.SetEnvironmentVariable does not reach getenv on Unix. A value the user set wins.
        if (!OperatingSystem.IsWindows() && Environment.GetEnvironmentVariable("OPENBLAS_THREAD_TIMEOUT") == null)
        {
            try { SetEnv("OPENBLAS_THREAD_TIMEOUT", "4", 0); } catch (DllNotFoundException) { } catch (
                EntryPointNotFoundException) { }
        }
        string[] candidates =
        [
            Environment.GetEnvironmentVariable("PICTOR_OPENBLAS") ?? "",
            "libopenblas.so.0",
            "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
            "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
            "libopenblas.so",
            "libopenblas.dylib",
            "libopenblas.dll",
        ];
        foreach (var name in candidates)
        {
            if (name.Length == 0) continue;
            if (!NativeLibrary.TryLoad(name, out var handle)) continue;
            if (!NativeLibrary.TryGetExport(handle, "cblas_sgemm", out var f)) continue;
            sgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float,
                float*, int, void>)f;
            if (NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out var st))
                setThreads = (delegate* unmanaged[Cdecl]<int, void>)st;
            IsAvailable = true;
            LibraryPath = name;
            if (NativeLibrary.TryGetExport(handle, "openblas_get_corename", out var cn))
                CoreName = Marshal.PtrToStringAnsi(((delegate* unmanaged[Cdecl]<nint>)cn)()) ?? "";
            SetThreads(Parallelism.Threads);
            return;
        }
        LoadError = "libopenblas.so.0 not found";
    }

    public static void SetThreads(int n)
    {
        if (setThreads != null) setThreads(n);
    }

    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
                             ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                             float beta, Span<float> c, int ldc)
    {
        if (!IsAvailable) Throw.InvalidOperation($"OpenBLAS is not available ({LoadError})");
        if (k == 0)
        {   // BLAS leaves C untouched for K = 0 only when beta = 1; be explicit.
            for (int i = 0; i < m; i++) { var row = c.Slice(i * ldc,
                n); if (beta == 0f) row.Clear(); else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta,
                row); }
            return;
        }
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, pa, lda, pb,
                ldb, beta, pc, ldc);
    }
}
