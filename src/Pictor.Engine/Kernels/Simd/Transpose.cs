namespace Pictor.Engine.Kernels;

// Dimension legend: R rows and C columns of the contiguous side; ld the strided side's row stride (>= R).

/// <summary>
/// Tiled 2-D transposes for <see cref="StridedCopy"/>'s commonest strided case: a view whose last logical dimension is
/// strided and whose second-to-last is contiguous, as Transpose(x, 1, 2) of a [B, C, H*W] feature map gives every
/// AttnBlock (and its backward). The odometer walks the source at a stride of ld floats per element there (4 KB at
/// 32x32), touching a new cache line each time; 16x16 tiles read and write whole lines, and batches of matrices split
/// over threads when the copy is large. The odometer stays as the reference (<see cref="StridedCopy"/>);
/// PICTOR_TRANSPOSE_TILED=0 uses it everywhere (for A/B benchmarks).
/// </summary>
internal static unsafe class TransposeTiled
{
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("PICTOR_TRANSPOSE_TILED") != "0";

    private const int Tile = 16;
    /// <summary>Copies smaller than this (elements) stay on one thread.</summary>
    private const int ParallelMin = 1 << 16;

    /// <summary>Matrices smaller than this (elements) stay on the odometer: below 64 KB they sit in L1/L2 and its long
    /// strided inner loop is as fast or faster (`Pictor.Bench transpose`: 0.5x at [32, 128, 64]).</summary>
    public const int MinMatrix = 16384;

    /// <summary>Whether a view of this layout takes the tiled path: rank >= 2, last dimension strided by at least the
    /// length of the one before it, which is contiguous, matrices of at least <see cref="MinMatrix"/> elements, and no
    /// broadcast (stride-0) dimension, so no two elements share storage and matrices can be written in
    /// parallel.</summary>
    public static bool Applies(int[] shape, int[] strides)
    {
        int r = shape.Length;
        if (!Enabled || r < 2 || strides[r - 2] != 1 || (long)shape[r - 1] * shape[r - 2] < MinMatrix
            || shape[r - 1] < 2 || shape[r - 2] < 2 || strides[r - 1] < shape[r - 2]) return false;
        for (int d = 0; d < r - 2; d++) if (shape[d] > 1 && strides[d] == 0) return false;
        return true;
    }

    /// <summary>Offsets of each [R, C] matrix of the view (its outer dimensions in row-major order).</summary>
    private static int[] MatrixOffsets(int offset, int[] shape, int[] strides)
    {
        int rank = shape.Length, count = 1;
        for (int d = 0; d < rank - 2; d++) count *= shape[d];
        var offs = new int[count];
        Span<int> idx = stackalloc int[Math.Max(1, rank - 2)];
        for (int m = 0; m < count; m++)
        {
            int off = offset;
            for (int d = 0; d < rank - 2; d++) off += idx[d] * strides[d];
            offs[m] = off;
            for (int d = rank - 3; d >= 0; d--) { if (++idx[d] < shape[d]) break; idx[d] = 0; }
        }
        return offs;
    }

    /// <summary>dst (contiguous, the view's logical order) = the view of <paramref name="src"/>.</summary>
    public static void Gather(float[] src, int offset, int[] shape, int[] strides, Span<float> dst)
    {
        int rank = shape.Length, rows = shape[rank - 2], cols = shape[rank - 1],
            ld = strides[rank - 1], per = rows * cols;
        var offs = MatrixOffsets(offset, shape, strides);
        fixed (float* s = src) fixed (float* d = dst)
        {
            float* sp = s, dp = d;
            EachMatrix(offs.Length, per, m => GatherMatrix(sp + offs[m], ld, dp + (long)m * per, rows, cols));
        }
    }

    /// <summary>The view of <paramref name="dst"/> = src (or += when <paramref name="accumulate"/>), src contiguous in
    /// the view's logical order.</summary>
    public static void Scatter(ReadOnlySpan<float> src, float[] dst, int offset, int[] shape,
        int[] strides, bool accumulate)
    {
        int rank = shape.Length, rows = shape[rank - 2], cols = shape[rank - 1],
            ld = strides[rank - 1], per = rows * cols;
        var offs = MatrixOffsets(offset, shape, strides);
        fixed (float* s = src) fixed (float* d = dst)
        {
            float* sp = s, dp = d;
            EachMatrix(offs.Length, per, m => ScatterMatrix(sp + (long)m * per, dp + offs[m], ld,
                rows, cols, accumulate));
        }
    }

    /// <summary>body(m) for each of <paramref name="count"/> matrices of <paramref name="per"/> elements: over threads
    /// when the copy is large, else in order on this one (matrices never share storage, see <see
    /// cref="Applies"/>).</summary>
    private static void EachMatrix(int count, int per, Action<int> body)
    {
        if (count > 1 && (long)count * per >= ParallelMin) Parallelism.For(count, body);
        else for (int m = 0; m < count; m++) body(m);
    }

    /// <summary>d[r * C + c] = s[c * ld + r], in 16x16 tiles (each tile: 16 contiguous reads from each of 16 source
    /// rows).</summary>
    private static void GatherMatrix(float* s, int ld, float* d, int rows, int cols)
    {
        for (int r0 = 0; r0 < rows; r0 += Tile)
        {
            int r1 = Math.Min(rows, r0 + Tile);
            for (int c0 = 0; c0 < cols; c0 += Tile)
            {
                int c1 = Math.Min(cols, c0 + Tile);
                for (int c = c0; c < c1; c++)
                {
                    float* sc = s + (long)c * ld;
                    float* dc = d + c;
                    for (int r = r0; r < r1; r++) dc[(long)r * cols] = sc[r];
                }
            }
        }
    }

    /// <summary>d[c * ld + r] (+)= s[r * C + c], in 16x16 tiles.</summary>
    private static void ScatterMatrix(float* s, float* d, int ld, int rows, int cols, bool accumulate)
    {
        for (int c0 = 0; c0 < cols; c0 += Tile)
        {
            int c1 = Math.Min(cols, c0 + Tile);
            for (int r0 = 0; r0 < rows; r0 += Tile)
            {
                int r1 = Math.Min(rows, r0 + Tile);
                for (int c = c0; c < c1; c++)
                {
                    float* dc = d + (long)c * ld;
                    if (accumulate) for (int r = r0; r < r1; r++) dc[r] += s[(long)r * cols + c];
                    else for (int r = r0; r < r1; r++) dc[r] = s[(long)r * cols + c];
                }
            }
        }
    }
}
