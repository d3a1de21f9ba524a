using System.Runtime.Intrinsics;
using Pictor.Engine.Kernels;
using Pictor.TestSupport;

namespace Pictor.Engine.Tests;

/// <summary>The unpacked narrow GEMM (N = 16..64, B not transposed) against the reference GEMM: both A layouts,
/// row counts around its 12- and 6-row tiles, padded leading dimensions, alpha/beta, and beta 0 with NaN in C
/// (C must not be read).</summary>
public class NarrowGemmTests
{
    private static float[] Rand(int n, ulong seed) { var a = new float[n]; new Rng(seed).FillNormal(a); return a; }

    public static IEnumerable<object[]> Cases()
    {
        foreach (int n in new[] { 16, 32, 48, 64 })
            foreach (int m in new[] { 1, 5, 6, 11, 12, 13, 25, 256 })
                foreach (bool ta in new[] { false, true })
                    yield return [m, n, ta];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_the_reference_gemm(int m, int n, bool ta)
    {
        if (!Vector512.IsHardwareAccelerated) return;   // the kernel needs AVX-512; SimdGemm covers other machines
        Assert.True(NarrowGemm.Applies(false, n, null));
        foreach (int k in new[] { 1, 16, 257 })
        {
            int lda = (ta ? m : k) + 3, ldb = n + 5, ldc = n + 7;
            var a = Rand((ta ? k : m) * lda, 1); var b = Rand(k * ldb, 2); var c0 = Rand(m * ldc, 3);
            foreach (var (alpha, beta) in new[] { (1f, 0f), (0.5f, 0.25f), (-2f, 1f) })
            {
                var want = (float[])c0.Clone(); var got = (float[])c0.Clone();
                ReferenceGemm.Run(ta, false, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc);
                NarrowGemm.Run(ta, m, n, k, alpha, a, lda, b, ldb, beta, got, ldc);
                OpCheck.AssertClose($"{m}x{n}x{k} ta={ta} alpha={alpha} beta={beta}", got, want, 1e-5 * Math.Sqrt(k));
                // Columns past N in each padded row of C are untouched.
                for (int i = 0; i < m; i++)
                    for (int j = n; j < ldc && i * ldc + j < got.Length; j++) Assert.Equal(c0[i * ldc + j], got[i * ldc + j]);
            }
            var nan = Enumerable.Repeat(float.NaN, m * ldc).ToArray();
            NarrowGemm.Run(ta, m, n, k, 1f, a, lda, b, ldb, 0f, nan, ldc);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) Assert.False(float.IsNaN(nan[i * ldc + j]), $"beta 0 read C at ({i}, {j})");
        }
    }

    [Fact]
    public void Applies_only_to_untransposed_b_and_widths_16_to_64_in_steps_of_16()
    {
        if (!Vector512.IsHardwareAccelerated) return;
        Assert.False(NarrowGemm.Applies(true, 16, null));
        Assert.False(NarrowGemm.Applies(false, 8, null));
        Assert.False(NarrowGemm.Applies(false, 80, null));
        Assert.False(NarrowGemm.Applies(false, 24, null));
        Assert.True(NarrowGemm.Applies(false, 64, null));
    }
}
