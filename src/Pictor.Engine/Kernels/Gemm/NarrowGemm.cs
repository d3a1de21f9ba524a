using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Pictor.Engine.Kernels;

/// <summary>
/// Serial GEMM for narrow products: C [M x N] = alpha op(A) B + beta C with B not transposed and N = 16, 32, 48 or
/// 64. These are attention's P V, dQ += dS K, dK += dS^T Q and dV += P^T dO when heads are 16 to 64 wide (the xs
/// UNet's are 16). Nothing is packed: each B row is one or two Vector512 loads read in place, and op(A)'s values are
/// broadcast straight from A's rows (or, for A^T, its columns). The packed kernel (<see cref="SimdGemm"/>) spent
/// more time packing P than multiplying at N = 16 and computed a 32-wide tile for 16 columns.
/// Oracle: <see cref="ReferenceGemm"/> (NarrowGemmTests).
/// </summary>
internal static unsafe class NarrowGemm
{
    /// <summary>Whether a serial call takes this path (Vector512 machines, B not transposed, N a multiple of 16
    /// up to 64, no pre-packed A).</summary>
    public static bool Applies(bool transB, int n, PackedA? packedA) =>
        Vector512.IsHardwareAccelerated && !transB && packedA == null && n > 0 && n <= 64 && n % 16 == 0;

    public static void Run(bool transA, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
                           ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        if (!Vector512.IsHardwareAccelerated || n % 16 != 0 || n > 64)
            Throw.InvalidOperation($"narrow GEMM needs Vector512 and N in 16, 32, 48, 64 (got N={n}); check "
                + $"NarrowGemm.Applies first");
        if (k == 0 || alpha == 0f)
        {
            for (int i = 0; i < m; i++)
            {
                var row = c.Slice(i * ldc, n);
                if (beta == 0f) row.Clear(); else if (beta != 1f) TensorPrimitives.Multiply(row, beta, row);
            }
            return;
        }
        // op(A)[i, p] sits at a + i * si + p * sp.
        long si = transA ? 1 : lda, sp = transA ? lda : 1;
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            for (int j0 = 0; j0 < n; j0 += 32)
            {
                int i = 0;
                if (n - j0 >= 32)
                    for (; i + 6 <= m; i += 6) Tile6x32(k, pa + i * si, si, sp, pb + j0, ldb, alpha, beta, pc
                        + (long)i * ldc + j0, ldc);
                else
                    for (; i + 12 <= m; i += 12) Tile12x16(k, pa + i * si, si, sp, pb + j0, ldb, alpha, beta, pc
                        + (long)i * ldc + j0, ldc);
                for (; i < m; i++) Row(k, pa + i * si, sp, pb + j0, ldb, Math.Min(32, n - j0) / 16, alpha, beta, pc
                    + (long)i * ldc + j0);
            }
    }

    /// <summary>c = alpha acc + beta c (c not read when beta is 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> acc, float alpha, float beta)
    {
        var r = acc * alpha;
        if (beta != 0f) r += Vector512.Load(c) * beta;
        r.Store(c);
    }

    // Rows r of the tile are at a0 + r * si; four bases three rows apart keep every address one base + an index.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile12x16(int k, float* a, long si, long sp, float* b, int ldb, float alpha,
        float beta, float* c, int ldc)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        float* a0 = a, a3 = a + 3 * si, a6 = a + 6 * si, a9 = a + 9 * si;
        long s1 = si, s2 = 2 * si;
        for (int p = 0; p < k; p++, a0 += sp, a3 += sp, a6 += sp, a9 += sp, b += ldb)
        {
            var bv = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[0]), bv, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[s1]), bv, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[s2]), bv, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[0]), bv, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[s1]), bv, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[s2]), bv, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(a6[0]), bv, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(a6[s1]), bv, c7);
            c8 = Vector512.FusedMultiplyAdd(Vector512.Create(a6[s2]), bv, c8);
            c9 = Vector512.FusedMultiplyAdd(Vector512.Create(a9[0]), bv, c9);
            c10 = Vector512.FusedMultiplyAdd(Vector512.Create(a9[s1]), bv, c10);
            c11 = Vector512.FusedMultiplyAdd(Vector512.Create(a9[s2]), bv, c11);
        }
        Store(c, c0, alpha, beta); Store(c + ldc, c1, alpha, beta); Store(c + 2 * ldc, c2, alpha, beta);
        Store(c + 3 * ldc, c3, alpha, beta); Store(c + 4 * ldc, c4, alpha, beta); Store(c + 5 * ldc, c5, alpha, beta);
        Store(c + 6 * ldc, c6, alpha, beta); Store(c + 7 * ldc, c7, alpha, beta); Store(c + 8 * ldc, c8, alpha, beta);
        Store(c + 9 * ldc, c9, alpha, beta); Store(c + 10 * ldc, c10, alpha, beta);
        Store(c + 11 * ldc, c11, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile6x32(int k, float* a, long si, long sp, float* b, int ldb, float alpha,
        float beta, float* c, int ldc)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a0 = a, a3 = a + 3 * si;
        long s1 = si, s2 = 2 * si;
        for (int p = 0; p < k; p++, a0 += sp, a3 += sp, b += ldb)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16);
            var av = Vector512.Create(a0[0]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a0[s1]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a0[s2]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a3[0]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a3[s1]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a3[s2]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
        }
        Store(c, c00, alpha, beta); Store(c + 16, c01, alpha, beta);
        Store(c + ldc, c10, alpha, beta); Store(c + ldc + 16, c11, alpha, beta);
        Store(c + 2 * ldc, c20, alpha, beta); Store(c + 2 * ldc + 16, c21, alpha, beta);
        Store(c + 3 * ldc, c30, alpha, beta); Store(c + 3 * ldc + 16, c31, alpha, beta);
        Store(c + 4 * ldc, c40, alpha, beta); Store(c + 4 * ldc + 16, c41, alpha, beta);
        Store(c + 5 * ldc, c50, alpha, beta); Store(c + 5 * ldc + 16, c51, alpha, beta);
    }

    /// <summary>One row of C, 16 or 32 columns (<paramref name="vectors"/> 1 or 2): the rows left over by the
    /// tiles.</summary>
    private static void Row(int k, float* a, long sp, float* b, int ldb, int vectors, float alpha, float beta, float* c)
    {
        Vector512<float> acc0 = default, acc1 = default;
        for (int p = 0; p < k; p++, a += sp, b += ldb)
        {
            var av = Vector512.Create(a[0]);
            acc0 = Vector512.FusedMultiplyAdd(av, Vector512.Load(b), acc0);
            if (vectors == 2) acc1 = Vector512.FusedMultiplyAdd(av, Vector512.Load(b + 16), acc1);
        }
        Store(c, acc0, alpha, beta);
        if (vectors == 2) Store(c + 16, acc1, alpha, beta);
    }
}
