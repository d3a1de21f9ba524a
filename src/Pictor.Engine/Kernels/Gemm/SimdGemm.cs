using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Pictor.Engine.Kernels;

/// <summary>
/// Managed GEMM in the GotoBLAS/BLIS style: op(B) is packed into K-blocks of NR-wide column panels, op(A) into
/// MR-tall row panels, and an MR x NR register-blocked micro-kernel does rank-1 updates with FMA.
/// Vector512: MR = 6, NR = 32 (12 accumulators of 16 floats); Vector256: MR = 6, NR = 16; else the reference loop.
/// Work is split into fixed (row block, column group) tiles, each written by one task in fixed K order, so the result
/// does not depend on the number of threads.
/// </summary>
internal static unsafe class SimdGemm
{
    internal const int MR = 6;
    internal const int KC = 256;   // K block: an A panel (6 x 256) and a B panel (256 x 32) fit in L1+L2
    internal const int MC = 96;    // rows per task: 16 A panels (96 x 256 x 4 B = 96 KiB, fits in L2)

    /// <summary>Columns of the micro-kernel: 32 with Vector512, 16 with Vector256, 0 without SIMD (reference
    /// loop).</summary>
    internal static int NR => Vector512.IsHardwareAccelerated ? 32 : Vector256.IsHardwareAccelerated ? 16 : 0;

    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
                           ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                           float beta, Span<float> c, int ldc, bool serial = false, PackedA? packedA = null,
                               PackedB? packedB = null)
    {
        int nr = NR;
        if (nr == 0) { ReferenceGemm.Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); return; }

        // C = beta C first; every K block then adds alpha * A_blk B_blk.
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * ldc, n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) TensorPrimitives.Multiply(row, beta, row);
        }
        if (k == 0 || alpha == 0f) return;

        int nPanels = (n + nr - 1) / nr;
        int mBlocks = (m + MC - 1) / MC;
        // Enough tiles for the threads: split the columns into groups of panels when rows are few.
        // Every tile packs its own A block, so a serial call keeps one column group: splitting the columns there only
        // packed the same A block again per group (a third of the image-parallel convolution's GEMM time).
        int threads = Parallelism.Threads;
        bool parallel = !serial && threads > 1 && 2L * m * n * k > 2_000_000;
        int nGroups = parallel ? Math.Min(nPanels, Math.Max(1, (2 * threads + mBlocks - 1) / mBlocks)) : 1;
        int panelsPerGroup = (nPanels + nGroups - 1) / nGroups;
        nGroups = (nPanels + panelsPerGroup - 1) / panelsPerGroup;
        parallel &= mBlocks * nGroups > 1;

        // With B packed beforehand (PackWhole) every K block's panels are read where they lie: no per-call packing.
        var packBuffer = packedB == null ? ArrayPool<float>.Shared.Rent(nPanels * nr * KC) : null;
        try
        {
            fixed (float* pa0 = a)
            fixed (float* pb0 = b)
            fixed (float* pc0 = c) fixed (float* pbPack = packBuffer) fixed (float* pre0 = packedA?.Data)
            fixed (float* whole = packedB?.Data)
            {
                float* pa = pa0, pb = pb0, pc = pc0, pre = pre0;
                if (parallel && whole != null)
                {
                    // B packed beforehand: one fork for the whole product, each tile walking every K block itself, in
                    // the same K order, so each C element sees the same operations as below (bit-identical). Forking
                    // per K block cost a 16-row decoding product more than its arithmetic (bench/RESULTS.md, "AR-S
                    // sampling: one fork per packed product").
                    nint ia = (nint)pa, ib = (nint)whole, ic = (nint)pc;
                    long kBlockStride = (long)nPanels * nr * KC;
                    Parallelism.For(mBlocks * nGroups, t =>
                    {
                        for (int p0 = 0; p0 < k; p0 += KC)
                            Tile(t / nGroups, t % nGroups, panelsPerGroup, transA, (float*)ia, lda, p0,
                                Math.Min(KC, k - p0), m, n, nr,
                                 (float*)ib + (p0 / KC) * kBlockStride, alpha, (float*)ic, ldc, null);
                    });
                    return;
                }
                for (int p0 = 0; p0 < k; p0 += KC)
                {
                    int kc = Math.Min(KC, k - p0);
                    float* bp = pbPack;
                    if (whole != null) bp = whole + (long)(p0 / KC) * nPanels * nr * KC;
                    else PackB(transB, pb, ldb, p0, kc, n, nr, bp);
                    int kcLocal = kc, p0Local = p0;
                    if (parallel)
                    {
                        // Pointers cannot be captured by lambdas; pass them as nint.
                        nint ia = (nint)pa, ib = (nint)bp, ic = (nint)pc;
                        Parallelism.For(mBlocks * nGroups, t =>
                            Tile(t / nGroups, t % nGroups, panelsPerGroup, transA, (float*)ia, lda, p0Local, kcLocal, m,
                                n, nr, (float*)ib, alpha, (float*)ic, ldc, null));
                    }
                    else
                    {
                        for (int t = 0; t < mBlocks * nGroups; t++)
                        {
                            float* aBlock = pre == null ? null : pre + ((long)(p0 / KC) * mBlocks
                                + t / nGroups) * MC * KC;
                            Tile(t / nGroups, t % nGroups, panelsPerGroup, transA, pa, lda, p0Local, kcLocal, m, n, nr,
                                bp, alpha, pc, ldc, aBlock);
                        }
                    }
                }
            }
        }
        finally { if (packBuffer != null) ArrayPool<float>.Shared.Return(packBuffer); }
    }

    /// <summary>op(B) [K x N] packed once, every K block kb exactly as <see cref="Run"/> packs it (at offset
    /// kb * panels * NR * KC), for many products with the same B: a layer's weights while a sampler feeds them a few
    /// new rows per token. The product is bit-identical to packing on the fly. Null without SIMD.</summary>
    public static PackedB? PackWhole(bool transB, int n, int k, ReadOnlySpan<float> b, int ldb,
        Func<int, float[]?>? rent = null)
    {
        int nr = NR;
        if (nr == 0 || n == 0 || k == 0) return null;
        int nPanels = (n + nr - 1) / nr, kBlocks = (k + KC - 1) / KC;
        long block = (long)nPanels * nr * KC;
        // Not zeroed (PackB writes every element a product reads, padding included; the tail of a short last K block is
        // never read), and from the caller's spares when it has some (PackedWeights reuses a closed scope's arrays).
        int length = checked((int)(kBlocks * block));
        var data = rent?.Invoke(length) ?? GC.AllocateUninitializedArray<float>(length);
        fixed (float* pb = b) fixed (float* pd = data)
            for (int kb = 0; kb < kBlocks; kb++)
                PackB(transB, pb, ldb, kb * KC, Math.Min(KC, k - kb * KC), n, nr, pd + kb * block);
        return new PackedB(data, transB, n, k);
    }

    private static void Tile(int mb, int ng, int panelsPerGroup, bool transA, float* a, int lda, int p0, int kc,
                             int m, int n, int nr, float* packedB, float alpha, float* c, int ldc, float* prepacked)
    {
        int i0 = mb * MC, mc = Math.Min(MC, m - i0);
        int aPanels = (mc + MR - 1) / MR;
        float* packedA = prepacked;
        if (packedA == null)
        {
            float* own = stackalloc float[MC * KC];
            PackA(transA, a, lda, i0, mc, p0, kc, own);
            packedA = own;
        }
        int q0 = ng * panelsPerGroup;
        int q1 = Math.Min((n + nr - 1) / nr, q0 + panelsPerGroup);
        float* tmp = stackalloc float[MR * 32];
        for (int q = q0; q < q1; q++)
        {
            int j0 = q * nr, nc = Math.Min(nr, n - j0);
            float* bPanel = packedB + (long)q * kc * nr;
            for (int r = 0; r < aPanels; r++)
            {
                int ri = i0 + r * MR, mr = Math.Min(MR, m - ri);
                float* aPanel = packedA + r * kc * MR;
                float* cTile = c + (long)ri * ldc + j0;
                if (nr == 32) Kernel6x32(kc, aPanel, bPanel, alpha, cTile, ldc, mr, nc, tmp);
                else Kernel6x16(kc, aPanel, bPanel, alpha, cTile, ldc, mr, nc, tmp);
            }
        }
    }

    /// <summary>
    /// op(A) [M x K] packed once, block by block exactly as <see cref="Tile"/> packs it (K block kb, row block mb at
    /// offset (kb * mBlocks + mb) * MC * KC), for a serial <see cref="Run"/> that multiplies the same A by many B (a
    /// convolution's weights by each image's columns): the product is bit-identical to packing on the fly.
    /// </summary>
    public static PackedA? Pack(bool transA, int m, int k, ReadOnlySpan<float> a, int lda)
    {
        if (!Vector512.IsHardwareAccelerated && !Vector256.IsHardwareAccelerated) return null;
        int mBlocks = (m + MC - 1) / MC, kBlocks = (k + KC - 1) / KC;
        var data = ArrayPool<float>.Shared.Rent(checked(mBlocks * kBlocks * MC * KC));
        fixed (float* pa = a) fixed (float* pd = data)
            for (int kb = 0; kb < kBlocks; kb++)
                for (int mb = 0; mb < mBlocks; mb++)
                {
                    int p0 = kb * KC, i0 = mb * MC;
                    PackA(transA, pa, lda, i0, Math.Min(MC, m - i0), p0, Math.Min(KC, k - p0), pd
                        + ((long)kb * mBlocks + mb) * MC * KC);
                }
        return new PackedA(data, transA, m, k);
    }

    /// <summary>packed[q][p][j] = op(B)[p0 + p, q*nr + j], zero beyond N.</summary>
    private static void PackB(bool transB, float* b, int ldb, int p0, int kc, int n, int nr, float* packed)
    {
        int nPanels = (n + nr - 1) / nr;
        for (int q = 0; q < nPanels; q++)
        {
            int j0 = q * nr, nc = Math.Min(nr, n - j0);
            float* dst = packed + (long)q * kc * nr;
            if (!transB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* d = dst + p * nr;
                    float* s = b + (long)(p0 + p) * ldb + j0;
                    for (int j = 0; j < nc; j++) d[j] = s[j];
                    for (int j = nc; j < nr; j++) d[j] = 0f;
                }
            }
            else
            {
                // op(B) = B^T: read each row of B contiguously, write a column of the (cache-resident) panel.
                for (int j = 0; j < nc; j++)
                {
                    float* s = b + (long)(j0 + j) * ldb + p0;
                    for (int p = 0; p < kc; p++) dst[p * nr + j] = s[p];
                }
                if (nc < nr)
                    for (int p = 0; p < kc; p++) new Span<float>(dst + p * nr + nc, nr - nc).Clear();
            }
        }
    }

    /// <summary>packed[r][p][i] = op(A)[i0 + r*MR + i, p0 + p], zero beyond the block.</summary>
    internal static void PackA(bool transA, float* a, int lda, int i0, int mc, int p0, int kc, float* packed)
    {
        int panels = (mc + MR - 1) / MR;
        for (int r = 0; r < panels; r++)
        {
            float* dst = packed + r * kc * MR;
            int rows = Math.Min(MR, mc - r * MR);
            if (!transA)
            {
                for (int i = 0; i < MR; i++)
                {
                    if (i >= rows) { for (int p = 0; p < kc; p++) dst[p * MR + i] = 0f; continue; }
                    float* s = a + (long)(i0 + r * MR + i) * lda + p0;
                    for (int p = 0; p < kc; p++) dst[p * MR + i] = s[p];
                }
            }
            else
            {
                // op(A) = A^T: the MR values of one k are contiguous in A; read them together instead of striding by
                // lda.
                float* s = a + (long)p0 * lda + i0 + r * MR;
                for (int p = 0; p < kc; p++)
                {
                    float* d = dst + p * MR, sp = s + (long)p * lda;
                    int i = 0;
                    for (; i < rows; i++) d[i] = sp[i];
                    for (; i < MR; i++) d[i] = 0f;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel6x32(int kc, float* a, float* b, float alpha, float* c, int ldc,
        int mr, int nc, float* tmp)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16);
            var av = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            a += MR; b += 32;
        }
        var al = Vector512.Create(alpha);
        if (mr == MR && nc == 32)
        {
            Acc(c, c00, c01, al); Acc(c + ldc, c10, c11, al); Acc(c + 2 * ldc, c20, c21, al);
            Acc(c + 3 * ldc, c30, c31, al); Acc(c + 4 * ldc, c40, c41, al); Acc(c + 5 * ldc, c50, c51, al);
            return;
        }
        (c00 * al).Store(tmp); (c01 * al).Store(tmp + 16); (c10 * al).Store(tmp + 32); (c11 * al).Store(tmp + 48);
        (c20 * al).Store(tmp + 64); (c21 * al).Store(tmp + 80); (c30 * al).Store(tmp + 96); (c31 * al).Store(tmp + 112);
        (c40 * al).Store(tmp + 128); (c41 * al).Store(tmp + 144); (c50 * al).Store(tmp + 160);
        (c51 * al).Store(tmp + 176);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nc; j++) c[(long)i * ldc + j] += tmp[i * 32 + j];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Acc(float* c, Vector512<float> x0, Vector512<float> x1, Vector512<float> al)
    {
        Vector512.FusedMultiplyAdd(x0, al, Vector512.Load(c)).Store(c);
        Vector512.FusedMultiplyAdd(x1, al, Vector512.Load(c + 16)).Store(c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel6x16(int kc, float* a, float* b, float alpha, float* c, int ldc,
        int mr, int nc, float* tmp)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 8);
            var av = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(av, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(av, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(av, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(av, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(av, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(av, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(av, b1, c51);
            a += MR; b += 16;
        }
        var al = Vector256.Create(alpha);
        (c00 * al).Store(tmp); (c01 * al).Store(tmp + 8); (c10 * al).Store(tmp + 16); (c11 * al).Store(tmp + 24);
        (c20 * al).Store(tmp + 32); (c21 * al).Store(tmp + 40); (c30 * al).Store(tmp + 48); (c31 * al).Store(tmp + 56);
        (c40 * al).Store(tmp + 64); (c41 * al).Store(tmp + 72); (c50 * al).Store(tmp + 80); (c51 * al).Store(tmp + 88);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nc; j++) c[(long)i * ldc + j] += tmp[i * 16 + j];
    }
}

/// <summary>An A operand packed by <see cref="SimdGemm.Pack"/> for one (transA, M, K); its buffer is rented, and
/// Dispose gives it back.</summary>
public sealed class PackedA(float[] data, bool transA, int m, int k) : IDisposable
{
    internal float[] Data { get; private set; } = data;
    public void Dispose()
    {
        if (Data.Length > 0) ArrayPool<float>.Shared.Return(Data);
        Data = [];
    }
    public bool TransA { get; } = transA;
    public int M { get; } = m;
    public int K { get; } = k;
}

/// <summary>A B operand packed by <see cref="SimdGemm.PackWhole"/> for one (transB, N, K).</summary>
public sealed class PackedB(float[] data, bool transB, int n, int k)
{
    internal float[] Data { get; } = data;
    public bool TransB { get; } = transB;
    public int N { get; } = n;
    public int K { get; } = k;
    public long Bytes => 4L * Data.Length;
}
