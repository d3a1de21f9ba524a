namespace Pictor.Engine;

public static partial class Ops
{
    /// <summary>Sum of all elements, a scalar tensor of shape [].</summary>
    public static Tensor Sum(Tensor a) => Sum(a, Enumerable.Range(0, a.Rank).ToArray(), keepDim: false);

    public static Tensor Mean(Tensor a) => MulScalar(Sum(a), a.Numel == 0 ? float.NaN : 1f / a.Numel);

    /// <summary>Sum over <paramref name="axes"/>. Accumulates in double, so the result does not depend on
    /// length.</summary>
    public static Tensor Sum(Tensor a, int[] axes, bool keepDim = false)
    {
        var reduce = new bool[a.Rank];
        foreach (int ax in axes) reduce[Shape.Axis(ax, a.Rank)] = true;
        var keepShape = new int[a.Rank];
        for (int d = 0; d < a.Rank; d++) keepShape[d] = reduce[d] ? 1 : a.Shape[d];
        var outShape = keepDim ? keepShape : keepShape.Where((_, d) => !reduce[d]).ToArray();

        var x = Contiguous(a);
        var acc = new double[Shape.Numel(keepShape)];
        var ostr = Shape.BroadcastStrides(keepShape, Shape.ContiguousStrides(keepShape), a.Shape);
        var X = x.Span;
        int rank = a.Rank;
        if (rank == 0) acc[0] = X[0];
        else if (x.Numel > 0)
        {
            Span<int> idx = stackalloc int[rank];
            int inner = a.Shape[rank - 1], istr = ostr[rank - 1];
            for (int r = 0, o = 0; r < x.Numel / inner; r++)
            {
                int off = 0;
                for (int d = 0; d < rank - 1; d++) off += idx[d] * ostr[d];
                if (istr == 0) { double s = 0; for (int j = 0; j < inner; j++) s += X[o + j]; acc[off] += s; }
                else for (int j = 0; j < inner; j++) acc[off + j] += X[o + j];
                o += inner;
                for (int d = rank - 2; d >= 0; d--) { if (++idx[d] < a.Shape[d]) break; idx[d] = 0; }
            }
        }
        var y = Tensor.Empty(outShape);
        var Y = y.Span;
        for (int i = 0; i < acc.Length; i++) Y[i] = (float)acc[i];
        if (!Autograd.Needs(a)) return y;
        return Autograd.Record(y, "Sum", [x], dY =>
        {
            // dX = dY broadcast back over the reduced axes.
            var dX = Autograd.GradBuffer(x);
            var g = Reshape(dY, keepShape);
            Kernels.Broadcast.Binary(Kernels.BinaryOp.Add, dX, g, dX);
        });
    }

    public static Tensor Mean(Tensor a, int[] axes, bool keepDim = false)
    {
        long n = 1;
        foreach (int ax in axes.Select(v => Shape.Axis(v, a.Rank)).Distinct()) n *= a.Shape[ax];
        return MulScalar(Sum(a, axes, keepDim), n == 0 ? float.NaN : 1f / n);
    }

    /// <summary>Maximum along one axis. The gradient goes to the first maximal element (as PyTorch's amax does not
    /// split ties, we follow torch.max(dim), which picks one index).</summary>
    public static Tensor Max(Tensor a, int axis, bool keepDim = false)
    {
        int ax = Shape.Axis(axis, a.Rank);
        var x = Contiguous(a);
        int outer = 1; for (int d = 0; d < ax; d++) outer *= a.Shape[d];
        int n = a.Shape[ax];
        if (n == 0) Throw.Argument($"max over an empty dimension {ax} of shape {Shape.Format(a.Shape)}");
        int inner = 1; for (int d = ax + 1; d < a.Rank; d++) inner *= a.Shape[d];
        var shape = (int[])a.Shape.Clone(); shape[ax] = 1;
        var y = Tensor.Empty(keepDim ? shape : shape.Where((_, d) => d != ax).ToArray());
        var arg = new int[outer * inner];
        var X = x.Span; var Y = y.Span;
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int best = 0; float bv = X[o * n * inner + i];
                for (int k = 1; k < n; k++)
                {
                    float v = X[(o * n + k) * inner + i];
                    if (v > bv || (float.IsNaN(v) && !float.IsNaN(bv))) { bv = v; best = k; }
                }
                Y[o * inner + i] = bv; arg[o * inner + i] = best;
            }
        if (!Autograd.Needs(a)) return y;
        return Autograd.Record(y, "Max", [x], dY =>
        {
            var dX = Autograd.GradBuffer(x).Span; var D = dY.Span;   // dX[argmax] += dY
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++) dX[(o * n + arg[o * inner + i]) * inner + i] += D[o * inner + i];
        });
    }
}
