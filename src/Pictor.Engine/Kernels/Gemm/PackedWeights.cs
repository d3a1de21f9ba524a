using Pictor.Engine.Kernels;

namespace Pictor.Engine;

/// <summary>
/// While a scope is open on this thread, products whose right-hand operand is one of the given weights (a 2-D
/// parameter, read directly or through Linear's transposed view) and that need no gradient pack that operand into the
/// GEMM micro-kernel's panels once and reuse the packing for every later product. Autoregressive sampling multiplies
/// the same weights by a few new rows per token: packing them again at every token was a quarter of AR-S sampling's
/// time on one thread (bench/RESULTS.md, "AR-S sampling: weights packed once"). Only the registered tensors' storage
/// is ever cached (never a pooled activation, whose array is reused with other values), and the weights must not
/// change while the scope is open. The products then run on the managed kernel, whatever the GEMM backend; with the
/// reference backend or without SIMD nothing is packed. Scopes nest; the innermost one answers.
/// </summary>
public sealed class PackedWeights : IDisposable
{
    [ThreadStatic] private static PackedWeights? current;
    private readonly PackedWeights? parent;
    private readonly HashSet<float[]> eligible = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<(float[] Storage, int Offset, bool Trans, int N, int K, int Ld), PackedB> packs =
        new(new KeyComparer());
    private bool disposed;

    private readonly IDisposable dense;

    private PackedWeights(IEnumerable<Tensor> weights)
    {
        // off: nothing registered, nothing packed
        if (Enabled) foreach (var w in weights) if (w.Rank == 2) eligible.Add(w.Storage);
        parent = current;
        current = this;
        dense = Parallelism.DenseForks();   // decoding forks a few rows' product per weight per token
    }

    /// <summary>On unless PICTOR_PACK_WEIGHTS=0 (scopes then pack nothing). It was opt-in while two threads lost with
    /// it (a fork per K block, 35 MB of fresh arrays per call, sleeping workers: bench/RESULTS.md, "AR-S sampling:
    /// weights packed once"); with one fork per product, reused arrays and watching workers it wins on two threads
    /// too ("AR-S sampling: a fork that does not wait for the kernel").</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("PICTOR_PACK_WEIGHTS") != "0";

    /// <summary>Opens a scope for <paramref name="weights"/> (a model's parameters; those that are not 2-D are
    /// ignored).</summary>
    public static PackedWeights Begin(IEnumerable<Tensor> weights) => new(weights);

    /// <summary>Bytes held by this scope's packings (about the size of the weights used so far).</summary>
    public long Bytes => packs.Values.Sum(p => p.Bytes);

    /// <summary>The packing of <paramref name="b"/> as op(B) [K x N] (leading dimension <paramref name="ld"/>), made on
    /// first use; null when no scope is open, b is not a registered weight, or packing is unavailable.</summary>
    internal static PackedB? For(Tensor b, bool trans, int n, int k, int ld)
    {
        var scope = current;
        if (scope == null || !Enabled || b.Rank != 2) return null;
        var storage = b.Storage;
        if (!scope.eligible.Contains(storage)) return null;
        var key = (storage, b.Offset, trans, n, k, ld);
        if (scope.packs.TryGetValue(key, out var packed)) return packed;
        packed = Gemm.PackB(trans, n, k, storage.AsSpan(b.Offset), ld, RentSpare);
        if (packed != null) scope.packs[key] = packed;
        return packed;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (current != this)
            Throw.InvalidOperation("PackedWeights scope disposed out of order; dispose inner scopes "
                + "first (use 'using')");
        current = parent;
        dense.Dispose();
        lock (spares)
            foreach (var p in packs.Values)
                if (spareBytes + p.Bytes <= MaxSpareBytes) { spares.Add(p.Data); spareBytes += p.Bytes; }
        packs.Clear();
    }

    // A closed scope's arrays, lent to the next scope that needs the same length: a sampler that opens a scope per call
    // then packs into memory it already has instead of 35 MB of fresh pages per AR-S call (bench/RESULTS.md, "AR-S
    // sampling: a fork that does not wait for the kernel"). Shared by all threads; at most MaxSpareBytes are kept.
    private const long MaxSpareBytes = 256L << 20;
    private static readonly List<float[]> spares = [];
    private static long spareBytes;

    private static float[]? RentSpare(int length)
    {
        lock (spares)
        {
            int i = spares.FindIndex(a => a.Length == length);
            if (i < 0) return null;   // PackWhole allocates
            var a = spares[i];
            spares.RemoveAt(i);
            spareBytes -= 4L * a.Length;
            return a;
        }
    }

    private sealed class KeyComparer : IEqualityComparer<(float[] Storage, int Offset, bool Trans,
        int N, int K, int Ld)>
    {
        public bool Equals((float[] Storage, int Offset, bool Trans, int N, int K, int Ld) x,
            (float[] Storage, int Offset, bool Trans, int N, int K, int Ld) y) =>
            ReferenceEquals(x.Storage, y.Storage) && x.Offset == y.Offset && x.Trans == y.Trans && x.N == y.N
                && x.K == y.K && x.Ld == y.Ld;
        public int GetHashCode((float[] Storage, int Offset, bool Trans, int N, int K, int Ld) v) =>
            HashCode.Combine(System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(v.Storage), v.Offset,
                v.Trans, v.N, v.K, v.Ld);
    }
}
