using System.Numerics.Tensors;
using Pictor.Engine.Kernels;

namespace Pictor.Engine;

// Dimension legend: R rows (all leading dims), C classes / the softmax dimension.
public static partial class Ops
{
    /// <summary>Softmax along <paramref name="axis"/> (default last). PyTorch: F.softmax.</summary>
    public static Tensor Softmax(Tensor x, int axis = -1) => SoftmaxImpl(x, axis, log: false);

    /// <summary>log(softmax(x)) computed stably (x - max - log sum exp). PyTorch: F.log_softmax.</summary>
    public static Tensor LogSoftmax(Tensor x, int axis = -1) => SoftmaxImpl(x, axis, log: true);

    private static Tensor SoftmaxImpl(Tensor x, int axis, bool log)
    {
        int ax = Shape.Axis(axis, x.Rank);
        if (ax != x.Rank - 1)
        {
            var moved = Transpose(x, ax, -1);
            return Transpose(SoftmaxImpl(moved, -1, log), ax, -1);
        }
        var X = Contiguous(x);
        int c = x.Shape[^1], rows = x.Numel / Math.Max(1, c);
        var y = Tensor.Empty(x.Shape);
        var xs = X.Span; var ys = y.Span;
        for (int r = 0; r < rows; r++) SoftmaxRow(xs.Slice(r * c, c), ys.Slice(r * c, c), log);
        if (!Autograd.Needs(x)) return y;
        return Autograd.Record(y, log ? "LogSoftmax" : "Softmax", [X], dY =>
        {
            var dX = Autograd.GradBuffer(X).Span; var D = dY.Span; var Y = y.Span;
            for (int r = 0; r < rows; r++)
            {
                var yr = Y.Slice(r * c, c); var dr = D.Slice(r * c, c); var xr = dX.Slice(r * c, c);
                if (log)
                {
                    // y = log p:  dX = dY - p * sum(dY)
                    float s = TensorPrimitives.Sum(dr);
                    for (int i = 0; i < c; i++) xr[i] += dr[i] - MathF.Exp(yr[i]) * s;
                }
                else
                {
                    // y = p:  dX = p * (dY - sum(dY * p))
                    float s = TensorPrimitives.Dot(dr, yr);
                    for (int i = 0; i < c; i++) xr[i] += yr[i] * (dr[i] - s);
                }
            }
        });
    }

    /// <summary>One row: y = softmax(x) or log softmax(x), max-subtracted. A row of all -inf gives 0s
    /// (softmax).</summary>
    internal static void SoftmaxRow(ReadOnlySpan<float> x, Span<float> y, bool log)
    {
        if (x.Length == 0) return;
        float max = TensorPrimitives.Max(x);
        if (float.IsNegativeInfinity(max))
        {
            y.Fill(log ? float.NegativeInfinity : 0f);
            return;
        }
        TensorPrimitives.Subtract(x, max, y);
        if (log)
        {
            // sum exp(x - max) through a scratch row (vector exp), added in 256-element chunks in double
            Span<float> e = stackalloc float[256];
            double s = 0;
            for (int i = 0; i < y.Length; i += e.Length)
            {
                var part = y.Slice(i, Math.Min(e.Length, y.Length - i));
                TensorPrimitives.Exp(part, e[..part.Length]);
                s += TensorPrimitives.Sum(e[..part.Length]);
            }
            TensorPrimitives.Subtract(y, (float)Math.Log(s), y);
        }
        else
        {
            TensorPrimitives.Exp(y, y);
            float s = TensorPrimitives.Sum(y);
            TensorPrimitives.Multiply(y, 1f / s, y);
        }
    }

    /// <summary>
    /// Mean cross-entropy of logits [.., C] against integer targets [..]: rows whose target equals
    /// <paramref name="ignoreIndex"/> are skipped (and not counted); with label smoothing eps the target distribution
    /// is (1 - eps) one-hot + eps / C, as in PyTorch's F.cross_entropy. All rows ignored gives NaN, like PyTorch.
    /// Optional per-row weights (e.g. DALL-E's text/image split) scale each row's loss; the mean divides by their sum.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, IntTensor targets, int ignoreIndex = -100, float labelSmoothing =
        0f, float[]? rowWeights = null)
    {
        int c = logits.Shape[^1], rows = logits.Numel / Math.Max(1, c);
        if (targets.Numel != rows)
            Throw.Argument($"cross entropy: {rows} rows of logits {Shape.Format(logits.Shape)} but "
                + $"{targets.Numel} targets");
        if (labelSmoothing < 0f || labelSmoothing > 1f)
            Throw.Argument($"label smoothing must be in [0, 1], got {labelSmoothing}");
        if (rowWeights != null && rowWeights.Length != rows)
            Throw.Argument($"cross entropy: {rowWeights.Length} row weights for {rows} rows");
        targets.CheckRange(c, "cross entropy target", ignoreIndex);
        var X = Contiguous(logits);
        var logpT = Tensor.Empty(X.Shape);   // log-probabilities, kept for backward (pooled inside a scope)
        var logp = logpT.Storage;
        // Rows are independent: blocks of them are shared among threads, each row's loss kept, and the losses added in
        // row order afterwards, so the result does not depend on the thread count.
        var rowLoss = new double[rows];
        int blocks = (rows + RowBlock - 1) / RowBlock;
        Parallelism.For(blocks, blk =>
        {
            var xs = X.Span;
            for (int r = blk * RowBlock, end = Math.Min(rows, r + RowBlock); r < end; r++)
            {
                var lp = logp.AsSpan(logpT.Offset + r * c, c);
                SoftmaxRow(xs.Slice(r * c, c), lp, log: true);
                int t = targets.Data[r];
                if (t == ignoreIndex) continue;
                double loss = -(1.0 - labelSmoothing) * lp[t];
                if (labelSmoothing > 0) loss -= labelSmoothing / c * TensorPrimitives.Sum(lp);
                rowLoss[r] = loss;
            }
        });
        double total = 0, count = 0;
        for (int r = 0; r < rows; r++)
        {
            if (targets.Data[r] == ignoreIndex) continue;
            float w = rowWeights?[r] ?? 1f;
            total += w * rowLoss[r]; count += w;
        }
        var y = Tensor.Full((float)(total / count));
        if (!Autograd.Needs(logits)) return y;
        return Autograd.Record(y, "CrossEntropy", [X], dY =>
        {
            // dX = dY * w_r * (softmax - q) / sum(w), q = (1 - eps) onehot(t) + eps / C
            float g = dY.Item() / (float)count;
            var dXt = Autograd.GradBuffer(X);
            Parallelism.For(blocks, blk =>
            {
                var dX = dXt.Span;
                Span<float> e = stackalloc float[256];
                for (int r = blk * RowBlock, end = Math.Min(rows, r + RowBlock); r < end; r++)
                {
                    int t = targets.Data[r];
                    if (t == ignoreIndex) continue;
                    float gw = g * (rowWeights?[r] ?? 1f), smooth = labelSmoothing / c;
                    var lp = logpT.Span.Slice(r * c, c); var d = dX.Slice(r * c, c);
                    for (int i = 0; i < c; i += e.Length)   // d += gw (exp(lp) - eps / C)
                    {
                        int len = Math.Min(e.Length, c - i);
                        var ei = e[..len];
                        TensorPrimitives.Exp(lp.Slice(i, len), ei);
                        if (smooth != 0f) TensorPrimitives.Subtract(ei, smooth, ei);
                        TensorPrimitives.MultiplyAdd(ei, gw, d.Slice(i, len), d.Slice(i, len));
                    }
                    d[t] -= gw * (1f - labelSmoothing);
                }
            });
        });
    }

    private const int RowBlock = 64;   // cross-entropy rows per parallel work item

    /// <summary>Mean squared error, mean((a - b)^2). PyTorch: F.mse_loss. With <paramref name="weight"/> (a constant
    /// that broadcasts against a, e.g. one weight per image [B, 1, 1, 1]): mean(weight * (a - b)^2), still divided by
    /// the element count.</summary>
    public static Tensor MseLoss(Tensor a, Tensor b, Tensor? weight = null)
    {
        Throw.IfShapeMismatch(b.Shape, a.Shape, "mse loss target");
        var sq = Square(Sub(a, b));
        return Mean(weight is null ? sq : Mul(sq, weight));
    }
}
