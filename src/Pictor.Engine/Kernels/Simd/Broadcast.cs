using System.Numerics.Tensors;

namespace Pictor.Engine.Kernels;

public enum BinaryOp { Add, Sub, Mul, Div }

/// <summary>
/// Binary elementwise kernel over broadcast, possibly strided operands. Dimensions that are contiguous for every
/// operand are merged first, so the common cases (same shape; a [C,1,1] bias over [B,C,H,W]) reduce to long inner
/// runs handled by TensorPrimitives.
/// </summary>
internal static class Broadcast
{
    /// <summary>out = a (op) b, where out is contiguous with the broadcast shape.</summary>
    public static void Binary(BinaryOp op, Tensor a, Tensor b, Tensor output)
    {
        var shape = output.Shape;
        var sa = Shape.BroadcastStrides(a.Shape, a.Strides, shape);
        var sb = Shape.BroadcastStrides(b.Shape, b.Strides, shape);
        var so = output.Strides;
        Coalesce(ref shape, ref sa, ref sb, out var soc, so);
        var A = a.Storage; var B = b.Storage; var O = output.Storage;
        int rank = shape.Length;
        if (output.Numel == 0) return;
        if (rank == 0) { O[output.Offset] = Apply(op, A[a.Offset], B[b.Offset]); return; }
        int inner = shape[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1];
        int outer = output.Numel / inner;
        Span<int> idx = stackalloc int[rank];
        for (int r = 0; r < outer; r++)
        {
            int oa = a.Offset, ob = b.Offset, oo = output.Offset;
            for (int d = 0; d < rank - 1; d++) { oa += idx[d] * sa[d]; ob += idx[d] * sb[d]; oo += idx[d] * soc[d]; }
            var dst = O.AsSpan(oo, inner);
            if (ia == 1 && ib == 1) Run(op, A.AsSpan(oa, inner), B.AsSpan(ob, inner), dst);
            else if (ia == 1 && ib == 0) RunScalarRight(op, A.AsSpan(oa, inner), B[ob], dst);
            else if (ia == 0 && ib == 1) RunScalarLeft(op, A[oa], B.AsSpan(ob, inner), dst);
            else for (int j = 0; j < inner; j++) dst[j] = Apply(op, A[oa + j * ia], B[ob + j * ib]);
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
    }

    /// <summary>Merges dimension i into i+1 wherever every operand is contiguous across the pair.</summary>
    private static void Coalesce(ref int[] shape, ref int[] sa, ref int[] sb, out int[] so, int[] soIn)
    {
        var ls = new List<int>(); var la = new List<int>(); var lb = new List<int>(); var lo = new List<int>();
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == 1) continue;  // size-1 dimensions carry no offset
            if (ls.Count > 0)
            {
                int j = ls.Count - 1;
                if (la[j] == sa[i] * shape[i] && lb[j] == sb[i] * shape[i] && lo[j] == soIn[i] * shape[i])
                {
                    ls[j] *= shape[i]; la[j] = sa[i]; lb[j] = sb[i]; lo[j] = soIn[i];
                    continue;
                }
            }
            ls.Add(shape[i]); la.Add(sa[i]); lb.Add(sb[i]); lo.Add(soIn[i]);
        }
        if (ls.Count == 0) { ls.Add(1); la.Add(0); lb.Add(0); lo.Add(1); }
        shape = ls.ToArray(); sa = la.ToArray(); sb = lb.ToArray(); so = lo.ToArray();
    }

    public static float Apply(BinaryOp op, float x, float y) => op switch
    {
        BinaryOp.Add => x + y,
        BinaryOp.Sub => x - y,
        BinaryOp.Mul => x * y,
        _ => x / y,
    };

    private static void Run(BinaryOp op, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(x, y, d); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, d); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(x, y, d); break;
            default: TensorPrimitives.Divide(x, y, d); break;
        }
    }

    private static void RunScalarRight(BinaryOp op, ReadOnlySpan<float> x, float y, Span<float> d)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(x, y, d); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, d); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(x, y, d); break;
            default: TensorPrimitives.Divide(x, y, d); break;
        }
    }

    private static void RunScalarLeft(BinaryOp op, float x, ReadOnlySpan<float> y, Span<float> d)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(y, x, d); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, d); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(y, x, d); break;
            default: TensorPrimitives.Divide(x, y, d); break;
        }
    }
}
