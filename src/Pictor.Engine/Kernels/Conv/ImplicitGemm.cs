using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pictor.Engine.Kernels;

/// <summary>One image's convolution: input [C, H, W], a KH x KW kernel, stride, zero padding -> output [OH, OW].
/// As a GEMM its B operand is im2col(x), [K = C*KH*KW, N = OH*OW].</summary>
internal readonly record struct ConvGeometry(int C, int H, int W, int KH, int KW, int Stride, int Pad, int OH, int OW)
{
    public int K => C * KH * KW;
    public int N => OH * OW;
}

/// <summary>
/// Convolution as an implicit GEMM on one thread: y [M, OH*OW] = beta y + A [M, K] . im2col(x), where the im2col
/// matrix is never written out. Each K block x NC column block of it is packed straight from the image into the
/// micro-kernel's panel layout (what <see cref="Im2Col.Forward"/> and then <c>SimdGemm.PackB</c> did in two passes,
/// through a C*KH*KW x OH*OW matrix that does not fit in L2: 2.4 MB for 64 channels at 32x32). A is packed once for
/// all images (<see cref="SimdGemm.Pack"/>). The oracle is the im2col + GEMM path it replaces (ConvImplicitGemmTests).
/// </summary>
internal static unsafe class ImplicitGemm
{
    private const int NC = 256;   // columns per packed B block: 256 x 256 x 4 B = 256 KiB, in L2 beside the A block

    /// <summary>Whether this machine has the micro-kernel (otherwise callers keep im2col + GEMM).</summary>
    public static bool Available => SimdGemm.NR > 0;

    public static void Run(PackedA a, ReadOnlySpan<float> x, in ConvGeometry g, float beta, Span<float> y, int ldy)
    {
        int m = a.M, n = g.N, k = g.K, nr = SimdGemm.NR;
        if (a.TransA || a.K != k)
            Throw.Argument($"implicit GEMM: packed A is {(a.TransA ? "transposed " : "")}{a.M}x{a.K}, the convolution "
                + $"needs {m}x{k}");
        if (x.Length < g.C * g.H * g.W)
            Throw.Argument($"implicit GEMM: input has {x.Length} values, [{g.C}, {g.H}, {g.W}] needs "
                + $"{g.C * g.H * g.W}");
        if (ldy < n || (m > 0 && (long)(m - 1) * ldy + n > y.Length))
            Throw.Argument($"implicit GEMM: output has {y.Length} values, needs {m}x{n} with stride {ldy}");
        if (nr == 0)
            Throw.InvalidOperation("implicit GEMM needs Vector512 or Vector256; check ImplicitGemm.Available first");
        Interlocked.Add(ref Gemm.FlopCounter, 2L * m * n * k);
        for (int i = 0; i < m; i++)
        {
            var row = y.Slice(i * ldy, n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) TensorPrimitives.Multiply(row, beta, row);
        }
        if (m == 0 || n == 0 || k == 0) return;

        const int MR = SimdGemm.MR, KC = SimdGemm.KC, MC = SimdGemm.MC;
        int mBlocks = (m + MC - 1) / MC;
        var packedB = ArrayPool<float>.Shared.Rent(KC * NC);
        float* tmp = stackalloc float[MR * 32];
        try
        {
            fixed (float* pa = a.Data) fixed (float* px = x) fixed (float* py = y) fixed (float* bp = packedB)
                for (int p0 = 0, kb = 0; p0 < k; p0 += KC, kb++)
                {
                    int kc = Math.Min(KC, k - p0);
                    for (int j0 = 0; j0 < n; j0 += NC)
                    {
                        int nb = Math.Min(NC, n - j0);
                        PackIm2Col(px, g, p0, kc, j0, nb, nr, bp);
                        MultiplyBlock(pa + (long)kb * mBlocks * MC * KC, m, kc, bp, j0, nb, nr, py, ldy, tmp);
                    }
                }
        }
        finally { ArrayPool<float>.Shared.Return(packedB); }
    }

    /// <summary>
    /// The weight gradient of one image: dw [M, K] += dy [M, N] . im2col(x)^T, with N = OH*OW the GEMM's inner
    /// dimension and the transposed im2col packed straight from the image (<see cref="PackIm2ColT"/>).
    /// </summary>
    public static void RunWeightGrad(ReadOnlySpan<float> dy, int m, ReadOnlySpan<float> x, in ConvGeometry g,
        Span<float> dw, int ldw)
    {
        int n = g.K, k = g.N, nr = SimdGemm.NR;   // GEMM sizes: C = dw [m x K], inner dimension = pixels
        if (dy.Length < m * k) Throw.Argument($"implicit GEMM: dY has {dy.Length} values, [{m}, {k}] needs {m * k}");
        if (x.Length < g.C * g.H * g.W)
            Throw.Argument($"implicit GEMM: input has {x.Length} values, [{g.C}, {g.H}, {g.W}] needs "
                + $"{g.C * g.H * g.W}");
        if (ldw < n || (m > 0 && (long)(m - 1) * ldw + n > dw.Length))
            Throw.Argument($"implicit GEMM: dW has {dw.Length} values, needs {m}x{n} with stride {ldw}");
        if (nr == 0)
            Throw.InvalidOperation("implicit GEMM needs Vector512 or Vector256; check ImplicitGemm.Available first");
        Interlocked.Add(ref Gemm.FlopCounter, 2L * m * n * k);
        if (m == 0 || n == 0 || k == 0) return;
        if (g.Pad > 0)
        {
            // Zero-padded copy of the image: every pixel's window is then inside it, so PackIm2ColT gathers every
            // pixel's taps in vector lanes instead of testing each tap of the border pixels (12% of the pixels at
            // 32x32, 44% at 8x8, where the tested loop was most of the packing time). Same values, same product.
            var gp = g with { H = g.H + 2 * g.Pad, W = g.W + 2 * g.Pad, Pad = 0 };
            var xp = ArrayPool<float>.Shared.Rent(g.C * gp.H * gp.W);
            try
            {
                PadImage(x, g, xp);
                WeightGradCore(dy, m, xp, gp, dw, ldw);
            }
            finally { ArrayPool<float>.Shared.Return(xp); }
        }
        else WeightGradCore(dy, m, x, g, dw, ldw);
    }

    /// <summary>dst [C, H + 2 pad, W + 2 pad] = x [C, H, W] surrounded by <c>pad</c> zeros.</summary>
    private static void PadImage(ReadOnlySpan<float> x, in ConvGeometry g, Span<float> dst)
    {
        int hp = g.H + 2 * g.Pad, wp = g.W + 2 * g.Pad;
        dst[..(g.C * hp * wp)].Clear();
        for (int c = 0; c < g.C; c++)
            for (int y = 0; y < g.H; y++)
                x.Slice((c * g.H + y) * g.W, g.W).CopyTo(dst.Slice((c * hp + y + g.Pad) * wp + g.Pad, g.W));
    }

    private static void WeightGradCore(ReadOnlySpan<float> dy, int m, ReadOnlySpan<float> x, in ConvGeometry g,
        Span<float> dw, int ldw)
    {
        int n = g.K, k = g.N, nr = SimdGemm.NR;
        const int MR = SimdGemm.MR, KC = SimdGemm.KC, MC = SimdGemm.MC;
        int mBlocks = (m + MC - 1) / MC;
        var packedA = ArrayPool<float>.Shared.Rent(mBlocks * MC * KC);
        var packedB = ArrayPool<float>.Shared.Rent(KC * NC);
        float* tmp = stackalloc float[MR * 32];
        try
        {
            fixed (float* pdy = dy)
            fixed (float* px = x) fixed (float* pw = dw) fixed (float* ap = packedA) fixed (float* bp = packedB)
                for (int p0 = 0; p0 < k; p0 += KC)
                {
                    int kc = Math.Min(KC, k - p0);
                    for (int mb = 0; mb < mBlocks; mb++)
                        SimdGemm.PackA(false, pdy, k, mb * MC, Math.Min(MC, m - mb * MC), p0, kc, ap
                            + (long)mb * MC * KC);
                    for (int j0 = 0; j0 < n; j0 += NC)
                    {
                        int nb = Math.Min(NC, n - j0);
                        PackIm2ColT(px, g, p0, kc, j0, nb, nr, bp);
                        MultiplyBlock(ap, m, kc, bp, j0, nb, nr, pw, ldw, tmp);
                    }
                }
        }
        finally { ArrayPool<float>.Shared.Return(packedA); ArrayPool<float>.Shared.Return(packedB); }
    }

    /// <summary>C[:, j0 .. j0+nb) += A . B for one K block: A's row blocks packed MC x KC apart (SimdGemm's layout),
    /// B's columns packed as nr-wide panels.</summary>
    private static void MultiplyBlock(float* aK, int m, int kc, float* bp, int j0, int nb, int nr, float* c,
        int ldc, float* tmp)
    {
        const int MR = SimdGemm.MR, KC = SimdGemm.KC, MC = SimdGemm.MC;
        int panels = (nb + nr - 1) / nr;
        for (int i0 = 0; i0 < m; i0 += MC)
        {
            int aPanels = (Math.Min(MC, m - i0) + MR - 1) / MR;
            float* aBlock = aK + (long)(i0 / MC) * MC * KC;
            for (int q = 0; q < panels; q++)
            {
                int jq = j0 + q * nr, nc = Math.Min(nr, nb - q * nr);
                float* bPanel = bp + (long)q * kc * nr;
                for (int r = 0; r < aPanels; r++)
                {
                    int ri = i0 + r * MR, mr = Math.Min(MR, m - ri);
                    float* cTile = c + (long)ri * ldc + jq;
                    if (nr == 32) SimdGemm.Kernel6x32(kc, aBlock + r * kc * MR, bPanel, 1f, cTile, ldc, mr, nc, tmp);
                    else SimdGemm.Kernel6x16(kc, aBlock + r * kc * MR, bPanel, 1f, cTile, ldc, mr, nc, tmp);
                }
            }
        }
    }

    /// <summary>dst[0..n) = src[0..n) for the short runs of a panel row (a Memmove call per run cost more than the
    /// copy).</summary>
    private static void Copy(float* src, float* dst, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated) for (; i <= n - 16; i += 16) Vector512.Load(src + i).Store(dst + i);
        if (Vector256.IsHardwareAccelerated) for (; i <= n - 8; i += 8) Vector256.Load(src + i).Store(dst + i);
        for (; i < n; i++) dst[i] = src[i];
    }

    /// <summary>packed[q][p][j] = im2col(x)[j0 + q*nr + j, p0 + p] (the transpose: rows are pixels, columns are the
    /// (c, u, v) taps [j0, j0 + nb)), zero beyond them. Interior pixels, whose whole window is inside the image, read
    /// every tap at a fixed offset from the window's corner; border pixels test each tap.</summary>
    internal static void PackIm2ColT(float* x, in ConvGeometry g, int p0, int kc, int j0, int nb, int nr, float* packed)
    {
        int panels = (nb + nr - 1) / nr, khw = g.KH * g.KW, s = g.Stride, pad = g.Pad, w = g.W, h = g.H, ow = g.OW;
        // Per tap: its channel plane, its kernel offsets, and its offset from the window's top-left corner.
        int* plane = stackalloc int[panels * nr]; int* du = stackalloc int[panels * nr];
        int* dv = stackalloc int[panels * nr];
        int* off = stackalloc int[panels * nr];
        for (int j = 0; j < nb; j++)
        {
            int row = j0 + j, ci = row / khw, rem = row - ci * khw, u = rem / g.KW;
            plane[j] = ci * h * w; du[j] = u; dv[j] = rem - u * g.KW; off[j] = plane[j] + u * w + dv[j];
        }
        // Panel by panel: contiguous writes (see PackIm2Col).
        for (int q = 0; q < panels; q++)
        {
            int jb = q * nr, nc = Math.Min(nr, nb - jb), oy = p0 / ow, ox = p0 - oy * ow;
            int* offq = off + jb; int* planeq = plane + jb; int* duq = du + jb; int* dvq = dv + jb;
            float* d = packed + (long)q * kc * nr;
            for (int p = 0; p < kc; p++, d += nr)
            {
                int y0 = oy * s - pad, x0 = ox * s - pad, j = 0;
                if (y0 >= 0 && y0 + g.KH <= h && x0 >= 0 && x0 + g.KW <= w)
                {
                    float* corner = x + (long)y0 * w + x0;   // the whole window is inside the image
                    if (Avx2.IsSupported)
                        for (; j <= nc - 8; j += 8)
                            Avx2.GatherVector256(corner, Avx.LoadVector256(offq + j), 4).Store(d + j);
                    for (; j < nc; j++) d[j] = corner[offq[j]];
                }
                else
                    for (; j < nc; j++)
                    {
                        int iy = y0 + duq[j], ix = x0 + dvq[j];
                        d[j] = (uint)iy < (uint)h && (uint)ix < (uint)w ? x[planeq[j] + iy * w + ix] : 0f;
                    }
                for (; j < nr; j++) d[j] = 0f;
                if (++ox == ow) { ox = 0; oy++; }
            }
        }
    }

    /// <summary>packed[q][p][j] = im2col(x)[p0 + p, j0 + q*nr + j] for the columns [j0, j0 + nb), zero beyond them.
    /// Row (c, u, v) of im2col at column (oy, ox) reads x[c, oy*stride - pad + u, ox*stride - pad + v] (0
    /// outside).</summary>
    internal static void PackIm2Col(float* x, in ConvGeometry g, int p0, int kc, int j0, int nb, int nr, float* packed)
    {
        int panels = (nb + nr - 1) / nr, khw = g.KH * g.KW, s = g.Stride, pad = g.Pad, w = g.W, h = g.H, ow = g.OW;
        // Per im2col row of the block: its channel plane and kernel tap.
        int* plane = stackalloc int[kc]; int* tapU = stackalloc int[kc]; int* tapV = stackalloc int[kc];
        for (int p = 0; p < kc; p++)
        {
            int row = p0 + p, ci = row / khw, rem = row - ci * khw;
            plane[p] = ci * h * w; tapU[p] = rem / g.KW; tapV[p] = rem - tapU[p] * g.KW;
        }
        // Panel by panel, so the writes run contiguously through each panel (row by row across all panels, the
        // panels' rows sit kc*nr floats apart and compete for the same L1 sets).
        for (int q = 0; q < panels; q++)
        {
            int col = j0 + q * nr, nc = Math.Min(nr, nb - q * nr), oy0 = col / ow, ox0 = col - oy0 * ow;
            float* dq = packed + (long)q * kc * nr;
            for (int p = 0; p < kc; p++)
            {
                float* d = dq + p * nr, xc = x + plane[p];
                int u = tapU[p], v = tapV[p], j = 0, oy = oy0, ox = ox0;
                while (j < nc)
                {
                    int run = Math.Min(nc - j, ow - ox), iy = oy * s - pad + u;
                    if ((uint)iy >= (uint)h) new Span<float>(d + j, run).Clear();
                    else if (s == 1)
                    {
                        // t in [lo, hi) reads x[iy, ix0 + t]; the rest of the run is padding.
                        int ix0 = ox - pad + v, lo = Math.Clamp(-ix0, 0, run), hi = Math.Clamp(w - ix0, lo, run);
                        float* src = xc + (long)iy * w + ix0;
                        for (int t = 0; t < lo; t++) d[j + t] = 0f;
                        Copy(src + lo, d + j + lo, hi - lo);
                        for (int t = hi; t < run; t++) d[j + t] = 0f;
                    }
                    else
                    {
                        float* src = xc + (long)iy * w;
                        for (int t = 0; t < run; t++)
                        {
                            int ix = (ox + t) * s - pad + v;
                            d[j + t] = (uint)ix < (uint)w ? src[ix] : 0f;
                        }
                    }
                    j += run; ox = 0; oy++;
                }
                for (; j < nr; j++) d[j] = 0f;
            }
        }
    }
}
