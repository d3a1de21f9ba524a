using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pictor.Engine.Kernels;

/// <summary>
/// A 3x3, stride-1, padding-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray
/// 2016, "Fast Algorithms for Convolutional Neural Networks", section 4.1): every 2x2 output tile is
/// Y = A^T [ (G g G^T) (.) (B^T d B) ] A, summed over input channels, for the 4x4 input tile d around it. The sum over
/// channels of the 16 element-wise products is 16 GEMMs, [O x C] . [C x tiles], which do 16 multiply-adds per 2x2
/// outputs where the direct convolution does 36: 2.25x fewer. The transforms are additions only, with the matrices
///   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
///   A^T = [1 1 1 0; 0 1 -1 -1].
/// The oracle is the implicit-GEMM / im2col convolution it replaces (ConvWinogradTests); the results agree to float
/// rounding, not bit for bit, since the sums run in another order.
///
/// Layout: tiles go in chunks of <see cref="Chunk"/> (whole tile rows; several small images may share one). Each
/// chunk's transformed input V is written straight in the micro-kernel's packed-B layout (per position, K blocks of
/// 32-tile panels, the tiles of a tile row in vector lanes), so the 16 products pack nothing; V and the products
/// M [16, O, Chunk] stay in L2 between the transforms and the GEMMs.
/// </summary>
internal static unsafe class Winograd
{
    /// <summary>Tiles per chunk (whole tile rows, whole 32-column panels): V is 16 x 64 x C floats, 512 KiB at 128
    /// channels.</summary>
    private const int Chunk = 64;

    /// <summary>Whether this machine runs the vector transforms (Vector512); otherwise callers keep the implicit
    /// GEMM.</summary>
    public static bool Available => Vector512.IsHardwareAccelerated && SimdGemm.NR == 32;

    /// <summary>Whether F(2x2, 3x3) computes this convolution: 3x3, stride 1, padding 1, an even height, a width of
    /// 8, 16, 32, 64 or 128 (a tile row is whole 4- or 8-tile vectors, and 64-tile chunks are whole tile rows), and an
    /// image's tiles either whole chunks or a divisor of one (then images share chunks: four 8x8 images make
    /// one).</summary>
    public static bool Applies(in ConvGeometry g) =>
        g.KH == 3 && g.KW == 3 && g.Stride == 1 && g.Pad == 1 && g.H % 2 == 0 && g.H > 0
            && g.W is 8 or 16 or 32 or 64 or 128
        && (g.H / 2 * (g.W / 2) % Chunk == 0 || Chunk % (g.H / 2 * (g.W / 2)) == 0);

    /// <summary>
    /// The transformed weights U = G g G^T of every (o, c): 16 matrices [O x C], U[xi][o, c] with xi = 4 r + s the
    /// position in the 4x4 tile, each packed once for the serial GEMMs of every image (<see cref="SimdGemm.Pack"/>).
    /// w is [O, C, 3, 3]. Dispose the result when the call is done.
    /// </summary>
    public static Weights TransformWeights(ReadOnlySpan<float> w, int o, int c)
    {
        if (w.Length < o * c * 9)
            Throw.Argument($"Winograd: weights have {w.Length} values, [{o}, {c}, 3, 3] needs {o * c * 9}");
        var u = ArrayPool<float>.Shared.Rent(16 * o * c);
        try
        {
            Span<float> t = stackalloc float[12];
            for (int oc = 0; oc < o; oc++)
                for (int ci = 0; ci < c; ci++)
                {
                    var g = w.Slice((oc * c + ci) * 9, 9);
                    // t = G g (4 x 3)
                    for (int j = 0; j < 3; j++)
                    {
                        float g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                        t[j] = g0; t[3 + j] = 0.5f * (g0 + g1 + g2); t[6 + j] = 0.5f * (g0 - g1 + g2); t[9 + j] = g2;
                    }
                    // U = t G^T (4 x 4)
                    for (int r = 0; r < 4; r++)
                    {
                        float a0 = t[3 * r], a1 = t[3 * r + 1], a2 = t[3 * r + 2];
                        long at = (long)oc * c + ci;
                        u[(4 * r + 0) * o * c + at] = a0;
                        u[(4 * r + 1) * o * c + at] = 0.5f * (a0 + a1 + a2);
                        u[(4 * r + 2) * o * c + at] = 0.5f * (a0 - a1 + a2);
                        u[(4 * r + 3) * o * c + at] = a2;
                    }
                }
            var packs = new PackedA[16];
            for (int xi = 0; xi < 16; xi++)
                packs[xi] = SimdGemm.Pack(false, o, c, u.AsSpan(xi * o * c, o * c), c)
                    ?? Throw.InvalidOperation<PackedA>("Winograd needs the SIMD GEMM");
            return new Weights(packs, o, c);
        }
        finally { ArrayPool<float>.Shared.Return(u); }
    }

    /// <summary>How many images one call should take: one when an image has a chunk of tiles or more, else as many as
    /// fill a chunk (four 8x8 images), but no more than leave every worker a call.</summary>
    public static int ImagesPerCall(in ConvGeometry g, int batch, int workers)
    {
        int per = g.H / 2 * (g.W / 2);
        return per >= Chunk ? 1 : Math.Max(1, Math.Min(Chunk / per, (batch + workers - 1) / workers));
    }

    /// <summary>y [n, O, H, W] = beta y + conv3x3(x [n, C, H, W]) for n images on one thread, with weights from
    /// <see cref="TransformWeights"/>. Small images share chunks (four 8x8 images make one).</summary>
    public static void Run(Weights u, ReadOnlySpan<float> x, in ConvGeometry g, float beta,
        Span<float> y, int images = 1)
    {
        int c = g.C, h = g.H, w = g.W, o = u.O;
        if (!Applies(g) || g.OH != h || g.OW != w)
            Throw.Argument($"Winograd F(2x2, 3x3) needs a 3x3 stride-1 padding-1 convolution of an image whose width "
                + $"is 8, 16, 32, 64 or 128 and whose tiles divide or fill 64-tile chunks, got {g}");
        if (u.C != c) Throw.Argument($"Winograd: weights were transformed for {u.C} input channels, the image has {c}");
        if (images < 1) Throw.Argument($"Winograd: images must be at least 1, got {images}");
        if (x.Length < (long)images * c * h * w)
            Throw.Argument($"Winograd: input has {x.Length} values, {images} x [{c}, {h}, {w}] needs "
                + $"{(long)images * c * h * w}");
        if (y.Length < (long)images * o * h * w)
            Throw.Argument($"Winograd: output has {y.Length} values, {images} x [{o}, {h}, {w}] needs "
                + $"{(long)images * o * h * w}");
        if (!Available) Throw.InvalidOperation("Winograd needs Vector512; check Winograd.Available first");
        // the direct convolution's count, so GFLOP/s compare
        Interlocked.Add(ref Gemm.FlopCounter, 2L * images * o * c * 9 * h * w);
        int tw = w / 2, total = images * (h / 2) * tw, kBlocks = (c + SimdGemm.KC - 1) / SimdGemm.KC;
        // one position's packed B: every K block of the chunk's panels
        long vPlane = (long)Chunk * kBlocks * SimdGemm.KC;
        var v = ArrayPool<float>.Shared.Rent((int)(16 * vPlane));
        var m = ArrayPool<float>.Shared.Rent(16 * o * Chunk);
        var rows = ArrayPool<float>.Shared.Rent(8 * (tw + 1));
        try
        {
            fixed (float* px = x)
            fixed (float* pv = v) fixed (float* pm = m) fixed (float* py = y) fixed (float* pr = rows)
            {
                float* tmp = stackalloc float[SimdGemm.MR * 32];
                for (int t0 = 0; t0 < total; t0 += Chunk)
                {
                    int nt = Math.Min(Chunk, total - t0), panels = (nt + 31) / 32;
                    // a part-filled last panel reads zeros
                    if (nt % 32 != 0) new Span<float>(pv, (int)(16 * vPlane)).Clear();
                    for (int ci = 0; ci < c; ci++) TransformInput(px, c, h, w, t0, nt, ci, pr, pv, vPlane);
                    new Span<float>(pm, 16 * o * Chunk).Clear();
                    for (int xi = 0; xi < 16; xi++)
                        Multiply(u.Packs[xi], pv + xi * vPlane, o, c, panels, pm + (long)xi * o * Chunk, tmp);
                    TransformOutput(pm, o, nt, t0, tw, h, w, beta, py);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(v); ArrayPool<float>.Shared.Return(m); ArrayPool<float>.Shared.Return(rows);
        }
    }

    /// <summary>M [O, Chunk] += U [O, C] . V [C, Chunk] for one position: U packed as SimdGemm packs A, V already in
    /// the micro-kernel's panel layout (K block kb at kb * Chunk * KC, panel q at q * kc * 32 inside it).</summary>
    private static void Multiply(PackedA a, float* vb, int o, int c, int panels, float* mc, float* tmp)
    {
        const int MR = SimdGemm.MR, KC = SimdGemm.KC, MC = SimdGemm.MC, NR = 32;
        int mBlocks = (o + MC - 1) / MC;
        fixed (float* pa = a.Data)
            for (int p0 = 0, kb = 0; p0 < c; p0 += KC, kb++)
            {
                int kc = Math.Min(KC, c - p0);
                float* bK = vb + (long)kb * Chunk * KC;
                for (int mb = 0; mb < mBlocks; mb++)
                {
                    int i0 = mb * MC, aPanels = (Math.Min(MC, o - i0) + MR - 1) / MR;
                    float* aBlock = pa + ((long)kb * mBlocks + mb) * MC * KC;
                    for (int q = 0; q < panels; q++)
                    {
                        float* bPanel = bK + (long)q * kc * NR;
                        for (int r = 0; r < aPanels; r++)
                        {
                            int ri = i0 + r * MR;
                            SimdGemm.Kernel6x32(kc, aBlock + r * kc * MR, bPanel, 1f, mc + (long)ri * Chunk + q * NR,
                                Chunk, Math.Min(MR, o - ri), NR, tmp);
                        }
                    }
                }
            }
    }

    /// <summary>
    /// V[xi] (packed) = (B^T d B)[xi] for channel ci of the chunk's tiles [t0, t0 + nt) (whole tile rows, of one image
    /// or of several), eight tiles of a tile row a vector (four at width 8). Each padded image row the tile row reads
    /// is first split into its even and odd columns, E[k] = xpad[2k] and O[k] = xpad[2k+1] (xpad = the row with a zero
    /// on either side), so tile j's window columns 2j .. 2j+3 are E[j], O[j], E[j+1], O[j+1]: four contiguous loads.
    /// </summary>
    private static void TransformInput(float* x, int c, int h, int w, int t0, int nt, int ci, float* rows,
        float* v, long vPlane)
    {
        const int KC = SimdGemm.KC, NR = 32;
        int tw = w / 2, th = h / 2, stride = tw + 1;
        int kb = ci / KC, p = ci - kb * KC, kc = Math.Min(KC, c - kb * KC);
        float* vk = v + (long)kb * Chunk * KC + (long)p * NR;   // this channel's row in every panel of its K block
        for (int tr = t0 / tw; tr < (t0 + nt) / tw; tr++)
        {
            int img = tr / th, ti = tr - img * th;
            float* xc = x + ((long)img * c + ci) * h * w;
            // rows[2a] = E, rows[2a + 1] = O of window row a = padded row 2 ti + a (image row 2 ti + a - 1).
            for (int a = 0; a < 4; a++)
            {
                float* e = rows + (long)(2 * a) * stride;
                float* od = e + stride;
                int iy = 2 * ti + a - 1;
                if ((uint)iy >= (uint)h) { new Span<float>(e, 2 * stride).Clear(); continue; }
                float* src = xc + (long)iy * w;
                e[0] = 0f;
                SplitEvenOdd(src, w, od, e + 1);
                od[tw] = 0f;
            }
            for (int j = 0; j < tw; j += 8)
            {
                int t = tr * tw + j - t0;                            // tile index inside the chunk
                float* d = vk + (long)(t / NR) * kc * NR + t % NR;    // panel t / 32, column t % 32
                if (tw >= 8)
                {
                    Vector256<float> r00, r01, r02, r03, r10, r11, r12, r13, r20, r21, r22, r23, r30, r31, r32, r33;
                    Row(rows + j, stride, out r00, out r01, out r02, out r03);
                    Row(rows + 2 * stride + j, stride, out r10, out r11, out r12, out r13);
                    Row(rows + 4 * stride + j, stride, out r20, out r21, out r22, out r23);
                    Row(rows + 6 * stride + j, stride, out r30, out r31, out r32, out r33);
                    // Down the rows: V[4 a + s] = (B^T r_s)[a].
                    (r00 - r20).Store(d); (r01 - r21).Store(d + vPlane); (r02 - r22).Store(d + 2 * vPlane);
                    (r03 - r23).Store(d + 3 * vPlane);
                    (r10 + r20).Store(d + 4 * vPlane); (r11 + r21).Store(d + 5 * vPlane);
                    (r12 + r22).Store(d + 6 * vPlane); (r13 + r23).Store(d + 7 * vPlane);
                    (r20 - r10).Store(d + 8 * vPlane); (r21 - r11).Store(d + 9 * vPlane);
                    (r22 - r12).Store(d + 10 * vPlane); (r23 - r13).Store(d + 11 * vPlane);
                    (r10 - r30).Store(d + 12 * vPlane); (r11 - r31).Store(d + 13 * vPlane);
                    (r12 - r32).Store(d + 14 * vPlane); (r13 - r33).Store(d + 15 * vPlane);
                }
                else
                {
                    Vector128<float> r00, r01, r02, r03, r10, r11, r12, r13, r20, r21, r22, r23, r30, r31, r32, r33;
                    Row(rows, stride, out r00, out r01, out r02, out r03);
                    Row(rows + 2 * stride, stride, out r10, out r11, out r12, out r13);
                    Row(rows + 4 * stride, stride, out r20, out r21, out r22, out r23);
                    Row(rows + 6 * stride, stride, out r30, out r31, out r32, out r33);
                    (r00 - r20).Store(d); (r01 - r21).Store(d + vPlane); (r02 - r22).Store(d + 2 * vPlane);
                    (r03 - r23).Store(d + 3 * vPlane);
                    (r10 + r20).Store(d + 4 * vPlane); (r11 + r21).Store(d + 5 * vPlane);
                    (r12 + r22).Store(d + 6 * vPlane); (r13 + r23).Store(d + 7 * vPlane);
                    (r20 - r10).Store(d + 8 * vPlane); (r21 - r11).Store(d + 9 * vPlane);
                    (r22 - r12).Store(d + 10 * vPlane); (r23 - r13).Store(d + 11 * vPlane);
                    (r10 - r30).Store(d + 12 * vPlane); (r11 - r31).Store(d + 13 * vPlane);
                    (r12 - r32).Store(d + 14 * vPlane); (r13 - r33).Store(d + 15 * vPlane);
                }
            }
        }
    }

    /// <summary>even[k] = src[2k], odd[k] = src[2k + 1] for k &lt; w / 2: two-source permutes, 32 values at a
    /// time.</summary>
    private static void SplitEvenOdd(float* src, int w, float* even, float* odd)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            var evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var odds = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            for (; i <= w - 32; i += 32)
            {
                var lo = Vector512.Load(src + i); var hi = Vector512.Load(src + i + 16);
                Avx512F.PermuteVar16x32x2(lo, evens, hi).Store(even + i / 2);
                Avx512F.PermuteVar16x32x2(lo, odds, hi).Store(odd + i / 2);
            }
        }
        for (; i < w; i += 2) { even[i / 2] = src[i]; odd[i / 2] = src[i + 1]; }
    }

    /// <summary>B^T across one window row for eight tiles: d0..d3 = E[j], O[j], E[j+1], O[j+1] (E at e, O at e +
    /// stride).</summary>
    private static void Row(float* e, int stride, out Vector256<float> r0, out Vector256<float> r1,
        out Vector256<float> r2, out Vector256<float> r3)
    {
        var d0 = Vector256.Load(e); var d1 = Vector256.Load(e + stride); var d2 = Vector256.Load(e + 1);
        var d3 = Vector256.Load(e + stride + 1);
        r0 = d0 - d2; r1 = d1 + d2; r2 = d2 - d1; r3 = d1 - d3;
    }

    /// <summary>As above for the four tiles of a width-8 image's tile row.</summary>
    private static void Row(float* e, int stride, out Vector128<float> r0, out Vector128<float> r1,
        out Vector128<float> r2, out Vector128<float> r3)
    {
        var d0 = Vector128.Load(e); var d1 = Vector128.Load(e + stride); var d2 = Vector128.Load(e + 1);
        var d3 = Vector128.Load(e + stride + 1);
        r0 = d0 - d2; r1 = d1 + d2; r2 = d2 - d1; r3 = d1 - d3;
    }

    /// <summary>y[o, 2i + a, 2j + b] = beta y + (A^T M A)[a, b] for the chunk's nt tiles, M[xi][o][t] ([16, O, Chunk])
    /// from the GEMMs, 16 tiles a vector.</summary>
    private static void TransformOutput(float* m, int o, int nt, int t0, int tw, int h, int w, float beta, float* y)
    {
        long plane = (long)o * Chunk;   // M[xi] is [O, Chunk] whatever the chunk holds (the GEMMs' ldc)
        float* tmp = stackalloc float[64];
        float* s = stackalloc float[8];
        for (int oc = 0; oc < o; oc++)
        {
            float* mo = m + (long)oc * Chunk;
            int t = 0;
            for (; t <= nt - 16; t += 16)
            {
                float* p = mo + t;
                // Down the rows first: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3, per column s of the 4x4 product.
                var m00 = Vector512.Load(p); var m01 = Vector512.Load(p + plane);
                var m02 = Vector512.Load(p + 2 * plane); var m03 = Vector512.Load(p + 3 * plane);
                var m10 = Vector512.Load(p + 4 * plane); var m11 = Vector512.Load(p + 5 * plane);
                var m12 = Vector512.Load(p + 6 * plane); var m13 = Vector512.Load(p + 7 * plane);
                var m20 = Vector512.Load(p + 8 * plane); var m21 = Vector512.Load(p + 9 * plane);
                var m22 = Vector512.Load(p + 10 * plane); var m23 = Vector512.Load(p + 11 * plane);
                var m30 = Vector512.Load(p + 12 * plane); var m31 = Vector512.Load(p + 13 * plane);
                var m32 = Vector512.Load(p + 14 * plane); var m33 = Vector512.Load(p + 15 * plane);
                var a0 = m00 + m10 + m20; var a1 = m01 + m11 + m21; var a2 = m02 + m12 + m22; var a3 = m03 + m13 + m23;
                var b0 = m10 - m20 - m30; var b1 = m11 - m21 - m31; var b2 = m12 - m22 - m32; var b3 = m13 - m23 - m33;
                // Then across: y[a][0] = s0 + s1 + s2, y[a][1] = s1 - s2 - s3.
                (a0 + a1 + a2).Store(tmp); (a1 - a2 - a3).Store(tmp + 16); (b0 + b1 + b2).Store(tmp + 32);
                (b1 - b2 - b3).Store(tmp + 48);
                for (int k = 0; k < 16; k++)
                    Put(y, oc, o, t0 + t + k, tw, h, w, beta, tmp[k], tmp[16 + k], tmp[32 + k], tmp[48 + k]);
            }
            for (; t < nt; t++)
            {
                float* p = mo + t;
                for (int col = 0; col < 4; col++)
                {
                    float q0 = p[col * plane], q1 = p[(4 + col) * plane], q2 = p[(8 + col) * plane],
                        q3 = p[(12 + col) * plane];
                    s[col] = q0 + q1 + q2; s[4 + col] = q1 - q2 - q3;
                }
                Put(y, oc, o, t0 + t, tw, h, w, beta, s[0] + s[1] + s[2], s[1] - s[2] - s[3], s[4] + s[5] + s[6],
                    s[5] - s[6] - s[7]);
            }
        }
    }

    /// <summary>Writes one 2x2 output tile of channel oc: tile <paramref name="tile"/> of the call's images, each
    /// H/2 rows of <paramref name="tw"/> tiles.</summary>
    private static void Put(float* y, int oc, int o, int tile, int tw, int h, int w, float beta, float y00, float y01,
        float y10, float y11)
    {
        int per = h / 2 * tw, img = tile / per, local = tile - img * per, ti = local / tw, tj = local - ti * tw;
        float* q = y + ((long)img * o + oc) * h * w + (long)(2 * ti) * w + 2 * tj;
        if (beta == 0f) { q[0] = y00; q[1] = y01; q[w] = y10; q[w + 1] = y11; }
        else { q[0] = beta * q[0] + y00; q[1] = beta * q[1] + y01; q[w] = beta * q[w] + y10; q[w + 1] = beta * q[w + 1]
            + y11; }
    }

    /// <summary>The 16 transformed weight matrices, packed; one per convolution call, shared by every image.</summary>
    public sealed class Weights(PackedA[] packs, int o, int c) : IDisposable
    {
        public PackedA[] Packs { get; } = packs;
        public int O { get; } = o;
        public int C { get; } = c;
        public void Dispose() { foreach (var p in Packs) p.Dispose(); }
    }
}
