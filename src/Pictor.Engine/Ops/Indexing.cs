namespace Pictor.Engine;

// Dimension legend: V vocabulary rows, D embedding width.
public static partial class Ops
{
    /// <summary>Rows of <paramref name="weight"/> [V, D] picked by ids [..] -> [.., D]. PyTorch: F.embedding.</summary>
    public static Tensor Embedding(IntTensor ids, Tensor weight)
    {
        if (weight.Rank != 2) Throw.Argument($"embedding weight must be [V, D], got {Shape.Format(weight.Shape)}");
        int v = weight.Shape[0], d = weight.Shape[1];
        ids.CheckRange(v, "embedding id");
        var W = Contiguous(weight);
        var y = Tensor.Empty([.. ids.Shape, d]);
        var ws = W.Span; var ys = y.Span;
        for (int i = 0; i < ids.Numel; i++) ws.Slice(ids.Data[i] * d, d).CopyTo(ys.Slice(i * d, d));
        if (!Autograd.Needs(weight)) return y;
        return Autograd.Record(y, "Embedding", [W], dY =>
        {
            var dW = Autograd.GradBuffer(W).Span; var D = dY.Span;   // dW[id] += dY row
            for (int i = 0; i < ids.Numel; i++)
                Kernels.Elementwise.AddInPlace(D.Slice(i * d, d), dW.Slice(ids.Data[i] * d, d));
        });
    }

    /// <summary>out[.., j, ..] = x[.., index[.., j, ..], ..] along <paramref name="axis"/>; index has x's rank and
    /// the output has index's shape. PyTorch: torch.gather.</summary>
    public static Tensor Gather(Tensor x, int axis, IntTensor index)
    {
        int ax = Shape.Axis(axis, x.Rank);
        if (index.Shape.Length != x.Rank)
            Throw.Argument($"gather: index rank {index.Shape.Length} differs from input rank {x.Rank}");
        for (int d = 0; d < x.Rank; d++)
            if (d != ax && index.Shape[d] > x.Shape[d])
                Throw.Argument($"gather: index {Shape.Format(index.Shape)} is larger than input "
                    + $"{Shape.Format(x.Shape)} in dimension {d}");
        index.CheckRange(x.Shape[ax], "gather index");
        var X = Contiguous(x);
        var y = Tensor.Empty(index.Shape);
        var src = new int[index.Numel];
        var xstr = X.Strides; int rank = x.Rank;
        Span<int> idx = stackalloc int[rank];
        for (int i = 0; i < index.Numel; i++)
        {
            int off = 0;
            for (int d = 0; d < rank; d++) off += (d == ax ? index.Data[i] : idx[d]) * xstr[d];
            src[i] = off;
            for (int d = rank - 1; d >= 0; d--) { if (++idx[d] < index.Shape[d]) break; idx[d] = 0; }
        }
        var xs = X.Span; var ys = y.Span;
        for (int i = 0; i < src.Length; i++) ys[i] = xs[src[i]];
        if (!Autograd.Needs(x)) return y;
        return Autograd.Record(y, "Gather", [X], dY =>
        {
            var dX = Autograd.GradBuffer(X).Span; var D = dY.Span;   // scatter-add: dX[src[i]] += dY[i]
            for (int i = 0; i < src.Length; i++) dX[src[i]] += D[i];
        });
    }

    /// <summary>Inverted dropout: zeroes each element with probability p and scales survivors by 1 / (1 - p).
    /// Identity when not training or p = 0. The mask comes from <paramref name="rng"/>, so runs are
    /// reproducible.</summary>
    public static Tensor Dropout(Tensor x, float p, Rng rng, bool training = true)
    {
        if (p < 0f || p >= 1f) Throw.Argument($"dropout probability must be in [0, 1), got {p}");
        if (!training || p == 0f) return x;
        var mask = Tensor.Empty(x.Shape);
        var m = mask.Span; float keep = 1f / (1f - p);
        for (int i = 0; i < m.Length; i++) m[i] = rng.NextFloat() < p ? 0f : keep;
        return Mul(x, mask);
    }
}
