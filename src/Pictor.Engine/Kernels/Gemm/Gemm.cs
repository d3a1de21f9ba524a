namespace Pictor.Engine.Kernels;

public enum GemmBackend
{
    /// <summary>Triple loop, the oracle for the others (llm.c keeps its naive matmul the same way).</summary>
    Reference,
    /// <summary>Managed, cache-blocked, packed, Vector512/Vector256 micro-kernel.</summary>
    Simd,
    /// <summary>cblas_sgemm from libopenblas through P/Invoke.</summary>
    OpenBlas,
}

/// <summary>
/// The single GEMM entry point, row-major: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, where op(X) is X or
/// X^T. Chooses OpenBLAS when it loads, otherwise the managed SIMD kernel; PICTOR_GEMM=reference|simd|openblas
/// overrides. Every backend splits work by fixed blocks of C, each summed in one fixed K order, so results are
/// bit-identical run to run for a given backend and thread count.
/// </summary>
public static class Gemm
{
    private static GemmBackend? backend;
    private static bool hybrid;

    /// <summary>The backend in use (settable, e.g. by tests and benchmarks; setting it turns off <see
    /// cref="Hybrid"/>).</summary>
    public static GemmBackend Backend
    {
        get => backend ??= DefaultBackend();
        set
        {
            if (value == GemmBackend.OpenBlas && !OpenBlas.IsAvailable)
                Throw.InvalidOperation($"OpenBLAS is not available ({OpenBlas.LoadError}); install it with 'apt-get "
                    + $"install libopenblas0-pthread' or use GemmBackend.Simd");
            backend = value;
            hybrid = false;
        }
    }

    /// <summary>
    /// Opt-in (PICTOR_GEMM_HYBRID=1, with PICTOR_GEMM unset): when OpenBLAS runs below the CPU (an AVX2 kernel on an
    /// AVX-512 machine, as OPENBLAS_CORETYPE=Haswell forces), products of at least <see cref="HybridMinVolume"/>
    /// multiply-adds go to the managed Vector512 kernel (303 against 200 GFLOP/s at 1024^3 on 2 cores), smaller
    /// ones stay with OpenBLAS (154 against 123 at 256^3). Off by default: it made the UNet-xs training step slower
    /// (1028 -> 1360 ms; the step's products are thin, transposed backward shapes where OpenBLAS wins) and UNet-S
    /// sampling only a little faster (bench/RESULTS.md). The choice depends only on the shape, so results stay
    /// bit-identical run to run.
    /// </summary>
    public static bool Hybrid { get { _ = Backend; return hybrid; } }

    /// <summary>M N K at and above which the hybrid default uses the managed kernel (2^25, about 322^3).</summary>
    public const long HybridMinVolume = 1L << 25;

    private static GemmBackend DefaultBackend()
    {
        var env = Environment.GetEnvironmentVariable("PICTOR_GEMM")?.Trim().ToLowerInvariant();
        switch (env)
        {
            case null or "":
                if (!OpenBlas.IsAvailable) return GemmBackend.Simd;
                hybrid = OpenBlas.BelowCpu && Environment.GetEnvironmentVariable("PICTOR_GEMM_HYBRID") == "1";
                return GemmBackend.OpenBlas;
            case "reference": return GemmBackend.Reference;
            case "simd" or "managed": return GemmBackend.Simd;
            case "openblas":
                if (!OpenBlas.IsAvailable)
                    Throw.InvalidOperation($"PICTOR_GEMM=openblas but OpenBLAS did not load ({OpenBlas.LoadError}); "
                        + $"install libopenblas0-pthread or unset PICTOR_GEMM");
                return GemmBackend.OpenBlas;
            default:
                return Throw.Argument<GemmBackend>($"PICTOR_GEMM='{env}' is not a GEMM backend; use reference, "
                    + $"simd or openblas");
        }
    }

    /// <summary>C = alpha op(A) op(B) + beta C. lda/ldb/ldc are the row strides of A, B, C as stored.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
                             ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                             float beta, Span<float> c, int ldc)
    {
        var which = Backend;
        if (hybrid && which == GemmBackend.OpenBlas && (long)m * n * k >= HybridMinVolume) which = GemmBackend.Simd;
        Sgemm(which, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>Flops (2 M N K per call) issued through this entry point, for benchmarks' achieved-GFLOP/s
    /// figures.</summary>
    public static long FlopCounter;

    public static void Sgemm(GemmBackend which, bool transA, bool transB, int m, int n, int k, float alpha,
                             ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                             float beta, Span<float> c, int ldc)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        Interlocked.Add(ref FlopCounter, 2L * m * n * k);
        if (m == 0 || n == 0) return;
        switch (which)
        {
            case GemmBackend.Reference: ReferenceGemm.Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                break;
            case GemmBackend.Simd: SimdGemm.Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            default:
                // OpenBLAS's threads need the cores our workers watch on
                if (2L * m * n * k > 2_000_000) Parallelism.Hush();
                OpenBlas.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
        }
    }

    /// <summary>C = alpha op(A) op(B) + beta C with op(B) packed beforehand (<see cref="PackB"/>): always the managed
    /// kernel, which then skips packing B. Bit-identical to <see cref="Sgemm(GemmBackend, bool, bool, int, int, int,
    /// float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>
    /// with the SIMD backend.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
                             ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                             float beta, Span<float> c, int ldc, PackedB packedB)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (packedB.TransB != transB || packedB.N != n || packedB.K != k)
            Throw.Argument($"GEMM: packed B is {(packedB.TransB ? "transposed " : "")}{packedB.K}x{packedB.N}, this "
                + $"call needs {(transB ? "transposed " : "")}{k}x{n}; pack the B of this call");
        Interlocked.Add(ref FlopCounter, 2L * m * n * k);
        if (m == 0 || n == 0) return;
        SimdGemm.Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, packedB: packedB);
    }

    /// <summary>Packs op(B) [K x N] once for many <see cref="Sgemm(bool, bool, int, int, int, float,
    /// ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, PackedB)"/>
    /// calls with the same B; null with the reference backend or without SIMD (then call the unpacked
    /// overload).</summary>
    public static PackedB? PackB(bool transB, int n, int k, ReadOnlySpan<float> b, int ldb)
        => PackB(transB, n, k, b, ldb, null);

    /// <summary><see cref="PackB(bool, int, int, ReadOnlySpan{float}, int)"/> into an array from
    /// <paramref name="rent"/> (given the length it needs; it may return null for a new array).</summary>
    internal static PackedB? PackB(bool transB, int n, int k, ReadOnlySpan<float> b, int ldb, Func<int, float[]?>? rent)
        => Backend == GemmBackend.Reference ? null : SimdGemm.PackWhole(transB, n, k, b, ldb, rent);

    /// <summary>GEMM on the calling thread only (for kernels that parallelise over independent problems, such as
    /// attention heads). Uses the managed kernel unless the reference backend is selected.</summary>
    /// <param name="packedA">op(A) packed by <see cref="PackForSerial"/> (the same A for many calls); optional, and
    /// the product is bit-identical with or without it.</param>
    public static void SgemmSerial(bool transA, bool transB, int m, int n, int k, float alpha,
                                   ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                                   float beta, Span<float> c, int ldc, PackedA? packedA = null)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (packedA != null && (packedA.TransA != transA || packedA.M != m || packedA.K != k))
            Throw.Argument($"GEMM: packed A is {(packedA.TransA ? "transposed " : "")}{packedA.M}x{packedA.K}, this "
                + $"call needs {(transA ? "transposed " : "")}{m}x{k}; pack the A of this call");
        Interlocked.Add(ref FlopCounter, 2L * m * n * k);
        if (m == 0 || n == 0) return;
        if (Backend == GemmBackend.Reference)
            ReferenceGemm.Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else if (UseNarrow && NarrowGemm.Applies(transB, n, packedA))
            NarrowGemm.Run(transA, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else SimdGemm.Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, serial: true, packedA: packedA);
    }

    /// <summary>Serial products 16 to 64 columns wide take <see cref="NarrowGemm"/> (unpacked operands);
    /// PICTOR_GEMM_NARROW=0 keeps the packed kernel (for A/B benchmarks).</summary>
    internal static bool UseNarrow { get; set; } = Environment.GetEnvironmentVariable("PICTOR_GEMM_NARROW") != "0";

    /// <summary>Packs op(A) [M x K] once for many <see cref="SgemmSerial"/> calls with the same A (null when the
    /// reference backend or no SIMD is in use: pass it anyway, it is optional).</summary>
    public static PackedA? PackForSerial(bool transA, int m, int k, ReadOnlySpan<float> a, int lda)
        => Backend == GemmBackend.Reference || m == 0 || k == 0 ? null : SimdGemm.Pack(transA, m, k, a, lda);

    private static void Validate(bool transA, bool transB, int m, int n, int k, int aLen, int lda, int bLen,
        int ldb, int cLen, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) Throw.Argument($"GEMM sizes must be >= 0 (M={m}, N={n}, K={k})");
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        if (lda < Math.Max(1, aCols) || ldb < Math.Max(1, bCols) || ldc < Math.Max(1, n))
            Throw.Argument($"GEMM leading dimensions too small: lda={lda} (need >= {aCols}), ldb={ldb} (need >= "
                + $"{bCols}), ldc={ldc} (need >= {n})");
        if (aRows > 0 && aCols > 0 && (long)(aRows - 1) * lda + aCols > aLen)
            Throw.Argument($"GEMM: A has {aLen} elements, op needs {aRows}x{aCols} with lda {lda}");
        if (bRows > 0 && bCols > 0 && (long)(bRows - 1) * ldb + bCols > bLen)
            Throw.Argument($"GEMM: B has {bLen} elements, op needs {bRows}x{bCols} with ldb {ldb}");
        if (m > 0 && n > 0 && (long)(m - 1) * ldc + n > cLen)
            Throw.Argument($"GEMM: C has {cLen} elements, needs {m}x{n} with ldc {ldc}");
    }
}

