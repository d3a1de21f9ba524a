namespace Pictor.Engine;

public static partial class Ops
{
    /// <summary>A contiguous tensor with the same values: <paramref name="a"/> itself when already
    /// contiguous.</summary>
    public static Tensor Contiguous(Tensor a)
    {
        if (a.IsContiguous) return a;
        var y = Tensor.Empty(a.Shape);
        StridedCopy.ToContiguous(a, y.Span);
        if (!Autograd.Needs(a)) return y;
        // Gradients are stored in logical (row-major) order, so dX = dY element for element.
        return Autograd.Record(y, "Contiguous", [a], dY => AddInto(dY, Autograd.GradBuffer(a)));
    }

    /// <summary>Same elements, new shape (one dimension may be -1). A view when contiguous, else a copy.</summary>
    public static Tensor Reshape(Tensor a, params int[] shape)
    {
        shape = ResolveShape(shape, a.Numel, a.Shape);
        var x = Contiguous(a);
        var y = x.ViewOf(x.Offset, shape, Shape.ContiguousStrides(shape));
        if (!Autograd.Needs(x)) return y;
        return Autograd.Record(y, "Reshape", [x], dY =>
        {
            var dX = Autograd.GradBuffer(x);
            Kernels.Elementwise.AddInPlace(dY.Span, dX.Span);   // dX = reshape(dY)
        });
    }

    private static int[] ResolveShape(int[] shape, int numel, int[] from)
    {
        shape = (int[])shape.Clone();
        int infer = -1; long known = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == -1)
            {
                if (infer >= 0) Throw.Argument($"reshape to {Shape.Format(shape)}: only one dimension may be -1");
                infer = i;
            }
            else known *= shape[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || numel % known != 0)
                Throw.Argument($"cannot reshape {Shape.Format(from)} ({numel} elements) to {Shape.Format(shape)}");
            shape[infer] = (int)(numel / known);
        }
        if (Shape.Numel(shape) != numel)
            Throw.Argument($"cannot reshape {Shape.Format(from)} ({numel} elements) to {Shape.Format(shape)}");
        return shape;
    }

    /// <summary>Reorders dimensions (a strided view, no copy). PyTorch: Tensor.permute.</summary>
    public static Tensor Permute(Tensor a, params int[] dims)
    {
        if (dims.Length != a.Rank) Throw.Argument($"permute needs {a.Rank} dimensions, got {dims.Length}");
        var shape = new int[a.Rank]; var strides = new int[a.Rank]; var seen = new bool[a.Rank];
        for (int i = 0; i < dims.Length; i++)
        {
            int d = Shape.Axis(dims[i], a.Rank);
            if (seen[d]) Throw.Argument($"permute dims [{string.Join(", ", dims)}] repeat dimension {d}");
            seen[d] = true;
            shape[i] = a.Shape[d]; strides[i] = a.Strides[d];
        }
        var y = a.ViewOf(a.Offset, shape, strides);
        if (!Autograd.Needs(a)) return y;
        return Autograd.Record(y, "Permute", [a], dY =>
        {
            // dX = permute(dY, inverse(dims)): view dX with the permuted strides and add dY in logical order.
            var dX = Autograd.GradBuffer(a);
            var ds = new int[a.Rank];
            for (int i = 0; i < dims.Length; i++) ds[i] = dX.Strides[Shape.Axis(dims[i], a.Rank)];
            StridedCopy.AddFromContiguous(dY.Span, dX.ViewOf(dX.Offset, shape, ds));
        });
    }

    public static Tensor Transpose(Tensor a, int dim0, int dim1)
    {
        var dims = Enumerable.Range(0, a.Rank).ToArray();
        int d0 = Shape.Axis(dim0, a.Rank), d1 = Shape.Axis(dim1, a.Rank);
        (dims[d0], dims[d1]) = (dims[d1], dims[d0]);
        return Permute(a, dims);
    }

    /// <summary>Elements [start, start+length) along <paramref name="axis"/> (a view). PyTorch:
    /// Tensor.narrow.</summary>
    public static Tensor Narrow(Tensor a, int axis, int start, int length)
    {
        int ax = Shape.Axis(axis, a.Rank);
        if (start < 0 || length < 0 || start + length > a.Shape[ax])
            Throw.Argument($"narrow({axis}, {start}, {length}) is outside dimension {ax} of size {a.Shape[ax]}");
        var shape = (int[])a.Shape.Clone(); shape[ax] = length;
        var y = a.ViewOf(a.Offset + start * a.Strides[ax], shape, (int[])a.Strides.Clone());
        if (!Autograd.Needs(a)) return y;
        return Autograd.Record(y, "Narrow", [a], dY =>
        {
            var dX = Autograd.GradBuffer(a);   // dX[.., start:start+length, ..] += dY
            StridedCopy.AddFromContiguous(dY.Span, dX.ViewOf(dX.Offset + start * dX.Strides[ax], shape,
                (int[])dX.Strides.Clone()));
        });
    }

    /// <summary>Broadcasts to <paramref name="shape"/> (a stride-0 view). PyTorch: Tensor.expand.</summary>
    public static Tensor Expand(Tensor a, params int[] shape)
    {
        var target = Shape.Broadcast(a.Shape, shape);
        if (!Shape.SameShape(target, shape))
            Throw.Argument($"cannot expand {Shape.Format(a.Shape)} to {Shape.Format(shape)}");
        var y = a.ViewOf(a.Offset, (int[])shape.Clone(), Shape.BroadcastStrides(a.Shape, a.Strides, shape));
        if (!Autograd.Needs(a)) return y;
        return Autograd.Record(y, "Expand", [a], dY => AccumulateSumTo(dY, a));   // dX = sum of dY over broadcast dims
    }

    public static Tensor Unsqueeze(Tensor a, int axis)
    {
        int ax = axis < 0 ? axis + a.Rank + 1 : axis;
        var shape = a.Shape.ToList(); shape.Insert(ax, 1);
        return Reshape(a, shape.ToArray());
    }

    public static Tensor Squeeze(Tensor a, int axis)
    {
        int ax = Shape.Axis(axis, a.Rank);
        if (a.Shape[ax] != 1) Throw.Argument($"squeeze({axis}): dimension has size {a.Shape[ax]}, not 1");
        var shape = a.Shape.ToList(); shape.RemoveAt(ax);
        return Reshape(a, shape.ToArray());
    }

    /// <summary>Joins tensors along <paramref name="axis"/>; all other dimensions must match. PyTorch:
    /// torch.cat.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> ts, int axis)
    {
        if (ts.Count == 0) Throw.Argument("concat of no tensors");
        int rank = ts[0].Rank, ax = Shape.Axis(axis, rank);
        var shape = (int[])ts[0].Shape.Clone(); shape[ax] = 0;
        foreach (var t in ts)
        {
            if (t.Rank != rank)
                Throw.Argument($"concat: ranks differ ({Shape.Format(ts[0].Shape)} vs {Shape.Format(t.Shape)})");
            for (int d = 0; d < rank; d++)
                if (d != ax && t.Shape[d] != ts[0].Shape[d])
                    Throw.Argument($"concat along {ax}: shapes {Shape.Format(ts[0].Shape)} and {Shape.Format(t.Shape)} "
                        + $"differ in dimension {d}");
            shape[ax] += t.Shape[ax];
        }
        var y = Tensor.Empty(shape);
        int outer = 1; for (int d = 0; d < ax; d++) outer *= shape[d];
        int inner = 1; for (int d = ax + 1; d < rank; d++) inner *= shape[d];
        int rowOut = shape[ax] * inner, at = 0;
        var Y = y.Span;
        var parts = new Tensor[ts.Count];
        for (int k = 0; k < ts.Count; k++)
        {
            var x = parts[k] = Contiguous(ts[k]);
            int rowIn = x.Shape[ax] * inner;
            var X = x.Span;
            for (int o = 0; o < outer; o++) X.Slice(o * rowIn, rowIn).CopyTo(Y.Slice(o * rowOut + at, rowIn));
            at += rowIn;
        }
        if (!Autograd.Needs(parts)) return y;
        return Autograd.Record(y, "Concat", parts, dY =>
        {
            int at2 = 0;
            foreach (var x in parts)   // dX_k = dY[.., slice k, ..]
            {
                int rowIn = x.Shape[ax] * inner;
                if (x.RequiresGrad)
                {
                    var dX = Autograd.GradBuffer(x).Span; var D = dY.Span;
                    for (int o = 0; o < outer; o++)
                        Kernels.Elementwise.AddInPlace(D.Slice(o * rowOut + at2, rowIn), dX.Slice(o * rowIn, rowIn));
                }
                at2 += rowIn;
            }
        });
    }

    /// <summary>Splits along <paramref name="axis"/> into views of the given sizes. PyTorch: torch.split.</summary>
    public static Tensor[] Split(Tensor a, int[] sizes, int axis)
    {
        int ax = Shape.Axis(axis, a.Rank);
        if (sizes.Sum() != a.Shape[ax])
            Throw.Argument($"split sizes [{string.Join(", ", sizes)}] sum to {sizes.Sum()}, dimension {ax} has "
                + $"{a.Shape[ax]}");
        var r = new Tensor[sizes.Length];
        int at = 0;
        for (int i = 0; i < sizes.Length; i++) { r[i] = Narrow(a, ax, at, sizes[i]); at += sizes[i]; }
        return r;
    }
}
