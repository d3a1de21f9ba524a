using Pictor.Engine;
using Pictor.Engine.Kernels;
using Pictor.TestSupport;

namespace Pictor.Engine.Tests;

public class GemmTests
{
    public static IEnumerable<object[]> Shapes()
    {
        int[][] sizes = [[1, 1, 1], [7, 5, 3], [6, 32, 256], [13, 33, 257], [97, 65, 300], [128, 128, 128], [5, 1, 9], [1, 70, 40], [200, 3, 17]];
        foreach (var s in sizes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    yield return [s[0], s[1], s[2], ta, tb];
    }

    private static float[] Rand(int n, ulong seed) { var a = new float[n]; new Rng(seed).FillNormal(a); return a; }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Simd_and_OpenBlas_agree_with_reference(int m, int n, int k, bool ta, bool tb)
    {
        var a = Rand(m * k, 1); var b = Rand(k * n, 2); var c0 = Rand(m * n, 3);
        int lda = ta ? m : k, ldb = tb ? k : n;
        var want = (float[])c0.Clone();
        Gemm.Sgemm(GemmBackend.Reference, ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, want, n);
        var backends = new List<GemmBackend> { GemmBackend.Simd };
        if (OpenBlasAvailable) backends.Add(GemmBackend.OpenBlas);
        foreach (var be in backends)
        {
            var got = (float[])c0.Clone();
            Gemm.Sgemm(be, ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, got, n);
            OpCheck.AssertClose($"{be} {m}x{n}x{k} ta={ta} tb={tb}", got, want, 1e-5 * Math.Sqrt(k));
        }
    }

    [Fact]
    public void Beta_zero_ignores_nan_in_c_and_k_zero_scales_c()
    {
        var a = Rand(6, 1); var b = Rand(6, 2);
        foreach (var be in AllBackends())
        {
            var c = new float[4]; Array.Fill(c, float.NaN);
            Gemm.Sgemm(be, false, false, 2, 2, 3, 1f, a, 3, b, 2, 0f, c, 2);
            Assert.All(c, v => Assert.False(float.IsNaN(v)));
            var c2 = new float[] { 1, 2, 3, 4 };
            Gemm.Sgemm(be, false, false, 2, 2, 0, 1f, a, 1, b, 2, 2f, c2, 2);
            Assert.Equal(new float[] { 2, 4, 6, 8 }, c2);
        }
    }

    [Fact]
    public void Managed_gemm_is_bit_identical_across_runs_and_thread_counts()
    {
        int m = 300, n = 200, k = 700;
        var a = Rand(m * k, 4); var b = Rand(k * n, 5);
        int saved = Parallelism.Threads;
        try
        {
            float[]? first = null;
            foreach (int threads in new[] { 1, 2, 2, 3 })
            {
                Parallelism.Threads = threads;
                var c = new float[m * n];
                Gemm.Sgemm(GemmBackend.Simd, false, true, m, n, k, 1f, a, k, b, k, 0f, c, n);
                if (first == null) first = c;
                else Assert.True(first.AsSpan().SequenceEqual(c), $"result changed with {threads} threads");
            }
        }
        finally { Parallelism.Threads = saved; }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Serial_managed_gemm_equals_the_threaded_one_bit_for_bit(bool ta, bool tb)
    {
        // Shapes of the image-parallel convolution (few rows, many columns, K past one K block) plus ragged edges.
        int m = 37, n = 1000, k = 300;
        var a = Rand(m * k, 8); var b = Rand(k * n, 9);
        int lda = ta ? m : k, ldb = tb ? k : n;
        int saved = Parallelism.Threads;
        try
        {
            Parallelism.Threads = 2;
            var threaded = new float[m * n]; var serial = new float[m * n]; var reference = new float[m * n];
            Gemm.Sgemm(GemmBackend.Simd, ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, threaded, n);
            Gemm.SgemmSerial(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, serial, n);
            Gemm.Sgemm(GemmBackend.Reference, ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, reference, n);
            Assert.True(threaded.AsSpan().SequenceEqual(serial), "serial and threaded managed GEMM differ");
            for (int i = 0; i < reference.Length; i++) Assert.True(Math.Abs(reference[i] - serial[i]) <= 1e-4f * (1 + Math.Abs(reference[i])), $"element {i}");
        }
        finally { Parallelism.Threads = saved; }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void Prepacked_A_gives_the_same_serial_product_bit_for_bit(bool ta, bool tb)
    {
        // Several row blocks (MC = 96) and K blocks (KC = 256) with ragged edges, as a convolution's weights.
        int m = 200, n = 77, k = 600;
        var a = Rand(m * k, 10); var b = Rand(k * n, 11);
        int lda = ta ? m : k, ldb = tb ? k : n;
        var plain = new float[m * n]; var packed = Rand(m * n, 12);   // beta = 0 must overwrite what is there
        Gemm.SgemmSerial(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, plain, n);
        using (var pa = Gemm.PackForSerial(ta, m, k, a, lda))
        {
            if (Gemm.Backend != GemmBackend.Reference) Assert.NotNull(pa);
            Gemm.SgemmSerial(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, packed, n, pa);
            Assert.True(plain.AsSpan().SequenceEqual(packed), "prepacked and on-the-fly packing differ");
            if (pa != null)
            {
                var e = Assert.Throws<ArgumentException>(() => Gemm.SgemmSerial(ta, tb, m - 1, n, k, 1f, a, lda, b, ldb, 0f, packed, n, pa));
                Assert.Contains("pack the A of this call", e.Message);
            }
        }
    }

    [Fact]
    public void OpenBlas_core_is_read_and_a_forced_avx2_core_on_avx512_hands_large_products_to_the_managed_kernel()
    {
        if (!OpenBlasAvailable) return;   // OpenBlas_is_bit_identical_run_to_run fails in CI when it is missing
        Assert.False(string.IsNullOrEmpty(OpenBlas.CoreName), "openblas_get_corename was not read");
        var forced = Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE");
        if (forced != null && forced.Equals("Haswell", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Contains("haswell", OpenBlas.CoreName, StringComparison.OrdinalIgnoreCase);
            Assert.Equal(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated, OpenBlas.BelowCpu);
        }
        if (OpenBlas.CoreName.Contains("skylakex", StringComparison.OrdinalIgnoreCase)) Assert.False(OpenBlas.BelowCpu);
    }

    [Fact]
    public void OpenBlas_is_bit_identical_run_to_run()
    {
        if (!OpenBlasAvailable)
        {
            // Without libopenblas there is nothing to check, except in CI, where scripts/setup.sh must have installed it.
            Assert.False(Environment.GetEnvironmentVariable("CI") == "true", "OpenBLAS is missing in CI: scripts/setup.sh should have installed libopenblas0-pthread");
            return;
        }
        int m = 257, n = 129, k = 513;
        var a = Rand(m * k, 6); var b = Rand(k * n, 7);
        var c1 = new float[m * n]; var c2 = new float[m * n];
        Gemm.Sgemm(GemmBackend.OpenBlas, false, false, m, n, k, 1f, a, k, b, n, 0f, c1, n);
        Gemm.Sgemm(GemmBackend.OpenBlas, false, false, m, n, k, 1f, a, k, b, n, 0f, c2, n);
        Assert.True(c1.AsSpan().SequenceEqual(c2));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr NativeGetEnv(string name);

    [Fact]
    public void OpenBlas_workers_are_told_to_sleep_instead_of_spinning()
    {
        if (OperatingSystem.IsWindows()) return;
        _ = OpenBlas.IsAvailable;   // runs the loader, which must set the variable before loading the library
        string? given = Environment.GetEnvironmentVariable("OPENBLAS_THREAD_TIMEOUT");
        var p = NativeGetEnv("OPENBLAS_THREAD_TIMEOUT");
        Assert.NotEqual(IntPtr.Zero, p);
        // A value the user exported wins; otherwise the loader's 4 (2^4 cycles of spinning) is in the C environment.
        Assert.Equal(given ?? "4", System.Runtime.InteropServices.Marshal.PtrToStringAnsi(p));
    }

    [Fact]
    public void Bad_arguments_get_clear_errors()
    {
        var a = new float[6]; var b = new float[6]; var c = new float[4];
        var e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 2, 2, 3, 1f, a, 3, b, 2, 0f, new float[3], 2));
        Assert.Contains("C has 3 elements", e.Message);
        e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 2, 2, 3, 1f, a, 2, b, 2, 0f, c, 2));
        Assert.Contains("lda=2", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.MatMul(Tensor.Zeros(2, 3), Tensor.Zeros(4, 5)));
        Assert.Contains("inner sizes 3 and 4 differ", e.Message);
    }

    internal static bool OpenBlasAvailable => OpenBlas.IsAvailable;
    private static IEnumerable<GemmBackend> AllBackends() =>
        OpenBlasAvailable ? [GemmBackend.Reference, GemmBackend.Simd, GemmBackend.OpenBlas] : [GemmBackend.Reference, GemmBackend.Simd];
}
