using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Text;

namespace Pictor.Engine;

/// <summary>
/// An n-dimensional float32 array: a storage array, an offset, a shape and strides (in elements). Views (reshape,
/// permute, slice, broadcast) share storage. A tensor that requires grad records the op that made it
/// (<see cref="GradFn"/>) so <see cref="Backward"/> can run reverse-mode autograd over the graph.
/// </summary>
public sealed class Tensor
{
    private float[] storage;
    private bool pooled;     // storage came from BufferPool and goes back to it
    private bool released;   // storage was returned; any access is a bug
    private bool spent;      // an in-place op wrote its result over this tensor's values (Ops.AddInPlace)

    public int Offset { get; }
    public int[] Shape { get; }
    public int[] Strides { get; }
    public int Numel { get; }
    public int Rank => Shape.Length;
    public bool IsContiguous { get; }
    /// <summary>True for a tensor that owns its storage (not a view).</summary>
    public bool OwnsStorage { get; }

    /// <summary>Whether gradients flow to this tensor. Set on leaves (parameters); ops set it on their
    /// outputs.</summary>
    public bool RequiresGrad { get; set; }
    /// <summary>Accumulated gradient, contiguous, same shape. Backward adds to it (+=); zero it between
    /// steps.</summary>
    public Tensor? Grad { get; set; }
    /// <summary>The recorded op that produced this tensor; null for leaves.</summary>
    public Node? GradFn { get; internal set; }
    /// <summary>Keep this intermediate tensor's gradient after backward (PyTorch's retain_grad()); by default only
    /// leaves keep theirs, so a step does not hold every intermediate gradient at once.</summary>
    public bool RetainGrad { get; set; }
    public bool IsLeaf => GradFn == null;
    /// <summary>Dotted parameter name (e.g. "blocks.0.attn.q.weight") when this is a parameter.</summary>
    public string? Name { get; set; }

    private Tensor(float[] storage, int offset, int[] shape, int[] strides, bool owns, bool pooled)
    {
        this.storage = storage;
        this.pooled = pooled;
        Offset = offset;
        Shape = shape;
        Strides = strides;
        Numel = Engine.Shape.Numel(shape);
        OwnsStorage = owns;
        IsContiguous = ComputeContiguous(shape, strides);
    }

    private static bool ComputeContiguous(int[] shape, int[] strides)
    {
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] != 1 && strides[i] != acc) return false;
            acc *= shape[i];
        }
        return true;
    }

    // ---------------------------------------------------------------- creation

    /// <summary>A new contiguous tensor. Inside a <see cref="TensorScope"/> its storage is pooled.</summary>
    public static Tensor Empty(params int[] shape) => Alloc(shape, clear: false);

    public static Tensor Zeros(params int[] shape) => Alloc(shape, clear: true);

    public static Tensor Ones(params int[] shape) => Full(1f, shape);

    public static Tensor Full(float value, params int[] shape)
    {
        var t = Alloc(shape, clear: false);
        t.Span.Fill(value);
        return t;
    }

    public static Tensor ZerosLike(Tensor t) => Zeros((int[])t.Shape.Clone());

    /// <summary>Wraps (does not copy) <paramref name="data"/>; its length must equal the shape's element
    /// count.</summary>
    public static Tensor FromArray(float[] data, params int[] shape)
    {
        int n = Engine.Shape.Numel(shape);
        if (data.Length != n)
            Throw.Argument($"data has {data.Length} values but shape {Engine.Shape.Format(shape)} needs {n}");
        return new Tensor(data, 0, (int[])shape.Clone(), Engine.Shape.ContiguousStrides(shape),
            owns: true, pooled: false);
    }

    public static Tensor Scalar(float value) => FromArray([value]);

    internal static Tensor Alloc(int[] shape, bool clear)
    {
        shape = (int[])shape.Clone();
        int n = Engine.Shape.Numel(shape);
        var scope = TensorScope.Current;
        Tensor t;
        if (scope != null)
        {
            t = new Tensor(BufferPool.Rent(n, clear), 0, shape, Engine.Shape.ContiguousStrides(shape),
                owns: true, pooled: true);
            scope.Track(t);
        }
        else
        {
            t = new Tensor(n == 0 ? [] : new float[n], 0, shape, Engine.Shape.ContiguousStrides(shape),
                owns: true, pooled: false);
        }
        return t;
    }

    /// <summary>A view sharing this tensor's storage (no autograd; the Ops view functions record it).</summary>
    internal Tensor ViewOf(int offset, int[] shape, int[] strides)
        => new(storage, offset, shape, strides, owns: false, pooled: false);

    internal void ReleaseStorage()
    {
        if (!pooled || released) return;
        released = true;
        BufferPool.Return(storage);
        storage = [];
    }

    internal void DetachFromPool() => pooled = false;

    /// <summary>Marks this tensor's values as overwritten by an in-place op: any later read throws.</summary>
    internal void MarkSpent() => spent = true;

    // ---------------------------------------------------------------- data access

    /// <summary>The underlying array (shared with views); index it with <see cref="Offset"/> and <see
    /// cref="Strides"/>.</summary>
    public float[] Storage
    {
        get
        {
            if (released)
                Throw.InvalidOperation("tensor used after its TensorScope ended; copy it out or call scope.Keep(t)");
            if (spent)
                Throw.InvalidOperation("tensor read after Ops.AddInPlace wrote its sum over it; use Ops.Add where the "
                    + "addend is still needed (for example by its producer's backward)");
            return storage;
        }
    }

    /// <summary>The elements of a contiguous tensor in row-major order.</summary>
    public Span<float> Span
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if (!IsContiguous)
                Throw.InvalidOperation($"tensor of shape {Engine.Shape.Format(Shape)} is a strided view; call "
                    + $"Contiguous() first");
            return Storage.AsSpan(Offset, Numel);
        }
    }

    /// <summary>Copies the elements out in row-major (logical) order, whatever the strides.</summary>
    public float[] ToArray()
    {
        if (IsContiguous) return Span.ToArray();
        var r = new float[Numel];
        StridedCopy.ToContiguous(this, r);
        return r;
    }

    /// <summary>Copies <paramref name="src"/> (same shape, any layout) into this tensor, which may be a strided view.
    /// Not recorded by autograd.</summary>
    public void CopyFrom(Tensor src)
    {
        Throw.IfShapeMismatch(src.Shape, Shape, "CopyFrom");
        var values = src.ToArray();
        if (IsContiguous) values.CopyTo(Span);
        else StridedCopy.WriteFromContiguous(values, this, accumulate: false);
    }

    public float Item()
    {
        if (Numel != 1)
            Throw.InvalidOperation($"Item() needs a tensor of one element, this one has shape "
                + $"{Engine.Shape.Format(Shape)}");
        return Storage[Offset];
    }

    [System.Runtime.CompilerServices.IndexerName("At")]
    public float this[params int[] index]
    {
        get => Storage[Index(index)];
        set => Storage[Index(index)] = value;
    }

    private int Index(int[] index)
    {
        if (index.Length != Rank) Throw.Argument($"index has {index.Length} coordinates, tensor has rank {Rank}");
        int o = Offset;
        for (int i = 0; i < Rank; i++)
        {
            if ((uint)index[i] >= (uint)Shape[i])
                Throw.Argument($"index {index[i]} out of range for dimension {i} of size {Shape[i]}");
            o += index[i] * Strides[i];
        }
        return o;
    }

    /// <summary>Dimension <paramref name="axis"/>, negative counts from the end.</summary>
    public int Dim(int axis) => Shape[Engine.Shape.Axis(axis, Rank)];

    // ---------------------------------------------------------------- autograd

    /// <summary>Reverse-mode autograd from this scalar (or with an explicit output gradient).</summary>
    public void Backward(Tensor? gradOutput = null) => Autograd.Backward(this, gradOutput);

    /// <summary>A tensor sharing storage that records no history.</summary>
    public Tensor Detach() => new(Storage, Offset, Shape, Strides, owns: false, pooled: false);

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("Tensor").Append(Engine.Shape.Format(Shape));
        if (Name != null) sb.Append(' ').Append(Name);
        if (released) return sb.Append(" (released)").ToString();
        var a = ToArray();
        sb.Append(" {");
        for (int i = 0; i < Math.Min(a.Length, 8); i++) sb.Append(i == 0 ? "" : ", ").Append(a[i].ToString("G6"));
        if (a.Length > 8) sb.Append(", ...");
        return sb.Append('}').ToString();
    }

    // Operators (recorded like any op).
    public static Tensor operator +(Tensor a, Tensor b) => Ops.Add(a, b);
    public static Tensor operator -(Tensor a, Tensor b) => Ops.Sub(a, b);
    public static Tensor operator *(Tensor a, Tensor b) => Ops.Mul(a, b);
    public static Tensor operator /(Tensor a, Tensor b) => Ops.Div(a, b);
    public static Tensor operator -(Tensor a) => Ops.Neg(a);
    public static Tensor operator +(Tensor a, float s) => Ops.AddScalar(a, s);
    public static Tensor operator *(Tensor a, float s) => Ops.MulScalar(a, s);
    public static Tensor operator *(float s, Tensor a) => Ops.MulScalar(a, s);
}

/// <summary>Copies between strided and contiguous layouts with an odometer over the logical index (the reference);
/// transposed matrices (last dimension strided, the one before it contiguous) go to <see
/// cref="Kernels.TransposeTiled"/>.</summary>
internal static class StridedCopy
{
    /// <summary>dst[i] = src at logical index i (row-major).</summary>
    public static void ToContiguous(Tensor src, Span<float> dst)
    {
        if (src.Numel > 0 && Kernels.TransposeTiled.Applies(src.Shape, src.Strides)) { Kernels.TransposeTiled.Gather(
            src.Storage, src.Offset, src.Shape, src.Strides, dst); return; }
        ToContiguousReference(src, dst);
    }

    /// <summary>The odometer walk of <see cref="ToContiguous"/>, for any layout.</summary>
    public static void ToContiguousReference(Tensor src, Span<float> dst)
    {
        var s = src.Storage;
        int rank = src.Rank;
        if (src.Numel == 0) return;
        if (rank == 0) { dst[0] = s[src.Offset]; return; }
        Span<int> idx = stackalloc int[rank];
        int inner = src.Shape[rank - 1], innerStride = src.Strides[rank - 1];
        int outer = src.Numel / inner;
        int o = 0;
        for (int r = 0; r < outer; r++)
        {
            int off = src.Offset;
            for (int d = 0; d < rank - 1; d++) off += idx[d] * src.Strides[d];
            if (innerStride == 1) s.AsSpan(off, inner).CopyTo(dst.Slice(o, inner));
            else for (int j = 0; j < inner; j++) dst[o + j] = s[off + j * innerStride];
            o += inner;
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++idx[d] < src.Shape[d]) break;
                idx[d] = 0;
            }
        }
    }

    /// <summary>dst at logical index i += src[i] (dst may be a strided view, src contiguous). Used by view
    /// backward.</summary>
    public static void AddFromContiguous(ReadOnlySpan<float> src, Tensor dst)
        => WriteFromContiguous(src, dst, accumulate: true);

    /// <summary>dst at logical index i = src[i] (or += when <paramref name="accumulate"/>); dst may be a strided
    /// view.</summary>
    public static void WriteFromContiguous(ReadOnlySpan<float> src, Tensor dst, bool accumulate)
    {
        if (dst.Numel > 0 && Kernels.TransposeTiled.Applies(dst.Shape, dst.Strides)) { Kernels.TransposeTiled.Scatter(
            src, dst.Storage, dst.Offset, dst.Shape, dst.Strides, accumulate); return; }
        WriteFromContiguousReference(src, dst, accumulate);
    }

    /// <summary>The odometer walk of <see cref="WriteFromContiguous"/>, for any layout.</summary>
    public static void WriteFromContiguousReference(ReadOnlySpan<float> src, Tensor dst, bool accumulate)
    {
        var s = dst.Storage;
        int rank = dst.Rank;
        if (dst.Numel == 0) return;
        if (rank == 0) { s[dst.Offset] = accumulate ? s[dst.Offset] + src[0] : src[0]; return; }
        Span<int> idx = stackalloc int[rank];
        int inner = dst.Shape[rank - 1], innerStride = dst.Strides[rank - 1];
        int outer = dst.Numel / inner;
        int o = 0;
        for (int r = 0; r < outer; r++)
        {
            int off = dst.Offset;
            for (int d = 0; d < rank - 1; d++) off += idx[d] * dst.Strides[d];
            if (innerStride == 1)
            {
                var d = s.AsSpan(off, inner);
                if (accumulate) TensorPrimitives.Add(d, src.Slice(o, inner), d);
                else src.Slice(o, inner).CopyTo(d);
            }
            else if (accumulate) for (int j = 0; j < inner; j++) s[off + j * innerStride] += src[o + j];
            else for (int j = 0; j < inner; j++) s[off + j * innerStride] = src[o + j];
            o += inner;
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++idx[d] < dst.Shape[d]) break;
                idx[d] = 0;
            }
        }
    }
}
