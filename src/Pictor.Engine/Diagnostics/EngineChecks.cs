using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Pictor.Engine.Kernels;
using Pictor.Engine.Reference;
using static System.FormattableString;

namespace Pictor.Engine.Diagnostics;

/// <summary>The groups of 'pictor doctor''s table, in the order it prints them.</summary>
public enum CheckSection { Environment, Gemm, Ops, Models, Timing }

/// <summary>One row of 'pictor doctor''s table.</summary>
/// <param name="Name">What was looked at ("threads", "gemm simd", "conv2d 3x3 s1, B=2 [winograd]", "emoji: load").
/// </param>
/// <param name="Ok">False for a failed check; environment facts are true unless reading them failed.</param>
/// <param name="Detail">What was found; for a failure also what was expected and how to fix it. May span lines.</param>
/// <param name="Duration">How long the check took, when that is worth showing.</param>
public sealed record CheckResult(CheckSection Section, string Name, bool Ok, string Detail, TimeSpan? Duration = null)
{
    /// <summary>Runs <paramref name="check"/>, timed; an exception becomes a failed row with its message.</summary>
    public static CheckResult Timed(CheckSection section, string name, Func<(bool Ok, string Detail)> check)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            var (ok, detail) = check();
            return new(section, name, ok, detail, sw.Elapsed);
        }
        catch (Exception e) { return new(section, name, false, OneLine(e), sw.Elapsed); }
    }

    /// <summary>An exception as one line: its message (and its inner one's), newlines folded.</summary>
    public static string OneLine(Exception e)
    {
        string m = e.InnerException is { } inner && !e.Message.Contains(inner.Message, StringComparison.Ordinal)
            ? $"{e.Message} ({inner.Message})" : e.Message;
        return $"{e.GetType().Name}: {string.Join(' ', m.Split('\n', StringSplitOptions.TrimEntries))}";
    }
}

/// <summary>
/// The engine's half of 'pictor doctor': what the engine runs on (runtime, SIMD width, GEMM backend, OpenBLAS's core,
/// threads, convolution kernels), every GEMM backend against a double-precision product, and every op of
/// <see cref="OpCases"/> against its reference kernel and finite differences. Returns rows; prints nothing.
/// </summary>
public static class EngineChecks
{
    /// <summary>Facts, then the GEMM backends, then the ops.</summary>
    public static IReadOnlyList<CheckResult> Run() => [.. Facts(), .. GemmChecks(), .. OpChecks()];

    /// <summary>What the engine runs on. Each row is Ok unless reading it threw (PICTOR_GEMM naming no backend).
    /// </summary>
    public static IReadOnlyList<CheckResult> Facts()
    {
        const CheckSection s = CheckSection.Environment;
        static string Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : "unset";
        static string YesNo(bool b) => b ? "yes" : "no";
        return
        [
            Fact(s, "runtime", () =>
                $"{RuntimeInformation.FrameworkDescription} ({RuntimeInformation.RuntimeIdentifier})"),
            Fact(s, "os", () => $"{RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}, "
                                + $"{Environment.ProcessorCount} cores"),
            Fact(s, "simd", () =>
            {
                bool v512 = Vector512.IsHardwareAccelerated, v256 = Vector256.IsHardwareAccelerated;
                bool v128 = Vector128.IsHardwareAccelerated;
                string widest = v512 ? "Vector512" : v256 ? "Vector256" : v128 ? "Vector128" : "scalar";
                string kernel = SimdGemm.NR > 0 ? $"{SimdGemm.MR}x{SimdGemm.NR}" : "none (scalar fallback)";
                return $"{widest} widest (Vector512 {YesNo(v512)}, Vector256 {YesNo(v256)}, Vector128 {YesNo(v128)}; "
                       + $"Vector<float> {Vector<float>.Count * 32} bits); GEMM micro-kernel {kernel}";
            }),
            Fact(s, "gemm backend", () =>
                $"{Gemm.Backend}"
                + (Gemm.Hybrid ? " + managed Vector512 for large products (PICTOR_GEMM_HYBRID=1)" : "")
                + " "
                + $"(PICTOR_GEMM {Env("PICTOR_GEMM")})"),
            Fact(s, "openblas", () => OpenBlasInfo.Available
                ? $"{OpenBlasInfo.Path}, core {(OpenBlasInfo.CoreName.Length > 0 ? OpenBlasInfo.CoreName : "unknown")} "
                  + $"(OPENBLAS_CORETYPE {Env("OPENBLAS_CORETYPE")})"
                  + (OpenBlas.BelowCpu ? "; this core lacks the AVX-512 the CPU has" : "")
                : $"not loaded ({OpenBlas.LoadError}): the managed kernel runs every product; for speed install it "
                  + "with 'apt-get install libopenblas0-pthread'"),
            Fact(s, "threads", () => $"{Parallelism.Threads} (PICTOR_THREADS {Env("PICTOR_THREADS")}, "
                                     + $"{Environment.ProcessorCount} cores)"),
            Fact(s, "conv kernels", () =>
                $"implicit GEMM {YesNo(Ops.UseImplicitGemm && Gemm.Backend != GemmBackend.Reference)}, "
                + $"Winograd F(2x2, 3x3) {YesNo(Ops.UseImplicitGemm && Ops.UseWinograd && Winograd.Available)}"
                + (Winograd.Available ? "" : " (needs Vector512)")
                + $" (PICTOR_CONV {Env("PICTOR_CONV")}, PICTOR_CONV_WINOGRAD {Env("PICTOR_CONV_WINOGRAD")})"),
        ];
    }

    private static CheckResult Fact(CheckSection s, string name, Func<string> read)
    {
        try { return new(s, name, true, read()); }
        catch (Exception e) { return new(s, name, false, CheckResult.OneLine(e)); }
    }

    /// <summary>Each GEMM backend this machine has (reference, simd, and openblas when it loads) on a square
    /// <paramref name="size"/>^3 product and a transposed one with odd sizes (every tail of the micro-kernel),
    /// against the product summed in double: max abs diff within 1e-5 sqrt(K) of max(1, max |C|), as GemmTests.
    /// </summary>
    public static IReadOnlyList<CheckResult> GemmChecks(int size = 128)
    {
        var backends = new List<GemmBackend> { GemmBackend.Reference, GemmBackend.Simd };
        if (OpenBlasInfo.Available) backends.Add(GemmBackend.OpenBlas);
        (int M, int N, int K, bool TA, bool TB)[] problems = [(size, size, size, false, false),
                                                             (size - 31, size + 3, size - 61, true, true)];
        return backends.Select(be => CheckResult.Timed(CheckSection.Gemm, $"gemm {Name(be)}", () =>
        {
            var parts = new List<string>();
            bool ok = true;
            foreach (var (m, n, k, ta, tb) in problems)
            {
                var c = GemmAgainstDouble(be, m, n, k, ta, tb);
                ok &= c.Ok;
                parts.Add(c.Ok ? Invariant($"{c.What} maxdiff {c.MaxDiff:G3} (tol {c.Tolerance:G3})") : c.Message);
            }
            return (ok, string.Join("; ", parts));
        })).ToList();
    }

    private static string Name(GemmBackend b) => b.ToString().ToLowerInvariant();

    /// <summary>C [M, N] = op(A) op(B) by <paramref name="backend"/> against the same product in double.</summary>
    private static Closeness GemmAgainstDouble(GemmBackend backend, int m, int n, int k, bool ta, bool tb)
    {
        var rng = new Rng((ulong)(m * 31 + n));
        var a = new float[m * k]; var b = new float[k * n];
        rng.FillNormal(a); rng.FillNormal(b);
        int lda = ta ? m : k, ldb = tb ? k : n;                   // A stored [K, M] when transposed, B [N, K]
        var c = new float[m * n];
        Gemm.Sgemm(backend, ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
        var want = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                want[i * n + j] = s;
            }
        string what = $"{m}x{n}x{k}{(ta ? " tA" : "")}{(tb ? " tB" : "")}";
        return OpOracle.Compare(what, c.Select(v => (double)v).ToArray(), want, 1e-5 * Math.Sqrt(k));
    }

    /// <summary>Every case of <paramref name="cases"/> (default <see cref="OpCases.All"/>): forward against the
    /// reference kernel, gradients against its central differences. An op that throws is a failed row.</summary>
    public static IReadOnlyList<CheckResult> OpChecks(IEnumerable<OpCase>? cases = null) =>
        (cases ?? OpCases.All).Select(RunCase).ToList();

    /// <summary>One op case as a row: named by the result (which adds the convolution's kernel path), detail the
    /// max diffs, or the first mismatches when it failed.</summary>
    public static CheckResult RunCase(OpCase c)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            var r = c.Run();
            return new(CheckSection.Ops, r.Name, r.Ok, r.Detail, sw.Elapsed);
        }
        catch (Exception e) { return new(CheckSection.Ops, c.Name, false, CheckResult.OneLine(e), sw.Elapsed); }
    }
}
