using Pictor.Engine.Kernels;

namespace Pictor.Engine;

// Dimension legend: B batch, H heads, Tq query tokens, Tk key tokens, D head width, Dv value width.
public static partial class Ops
{
    /// <summary>
    /// Multi-head scaled dot-product attention: q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv] -> [B, H, Tq, Dv].
    /// <paramref name="causal"/> hides later keys (aligned to the end, see Kernels.Attention); keyPaddingMask [B, Tk]
    /// (true = padding, as PyTorch's key_padding_mask) hides padded keys. A query that sees no key outputs zeros
    /// (PyTorch gives NaN). Scale defaults to 1/sqrt(D). The probabilities [B, H, Tq, Tk] are kept for backward and
    /// freed once it has run (a second backward through the same graph is not supported, as in PyTorch without
    /// retain_graph).
    /// PyTorch: F.scaled_dot_product_attention (2.x) / the math of nn.MultiheadAttention.
    /// </summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, bool causal = false,
        bool[]? keyPaddingMask = null, float? scale = null)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            Throw.Argument($"attention needs q, k, v of shape [B, H, T, D]; got {Shape.Format(q.Shape)}, "
                + $"{Shape.Format(k.Shape)}, {Shape.Format(v.Shape)}");
        int b = q.Shape[0], h = q.Shape[1], tq = q.Shape[2], d = q.Shape[3], tk = k.Shape[2], dv = v.Shape[3];
        if (k.Shape[0] != b || k.Shape[1] != h || k.Shape[3] != d)
            Throw.Argument($"attention: k {Shape.Format(k.Shape)} does not match q {Shape.Format(q.Shape)} (need [{b}, "
                + $"{h}, Tk, {d}])");
        if (v.Shape[0] != b || v.Shape[1] != h || v.Shape[2] != tk)
            Throw.Argument($"attention: v {Shape.Format(v.Shape)} does not match k {Shape.Format(k.Shape)} (need [{b}, "
                + $"{h}, {tk}, Dv])");
        if (keyPaddingMask != null && keyPaddingMask.Length != b * tk)
            Throw.Argument($"attention: key padding mask has {keyPaddingMask.Length} entries, expected "
                + $"B*Tk = {b * tk}");
        float sc = scale ?? 1f / MathF.Sqrt(d);
        bool needsGrad = Autograd.Needs([q, k, v]);
        var Q = Contiguous(q);
        // Without autograd, k and v whose (batch, head) blocks are each contiguous (a KV cache's views: [B, H, Tmax, D]
        // narrowed to the first Tk rows) are read in place. Copying them made a new array length at every decoding
        // step, and the exact-length buffer pool kept them all (AR-S sampling peaked at 945 MiB).
        var K = !needsGrad && HeadBlocksContiguous(k) ? k : Contiguous(k);
        var V = !needsGrad && HeadBlocksContiguous(v) ? v : Contiguous(v);
        var y = Tensor.Empty(b, h, tq, dv);
        var P = Tensor.Empty(b, h, tq, tk);
        Parallelism.For(b * h, bh =>
        {
            int bi = bh / h, hi = bh % h;
            ReadOnlySpan<bool> pad = keyPaddingMask == null ? default : keyPaddingMask.AsSpan(bi * tk, tk);
            Attention.Forward(Q.Span.Slice(bh * tq * d, tq * d), HeadBlock(K, bi, hi), HeadBlock(V, bi, hi),
                              tq, tk, d, dv, sc, causal, pad, P.Span.Slice(bh * tq * tk, tq * tk),
                                  y.Span.Slice(bh * tq * dv, tq * dv));
        });
        if (!needsGrad) return y;
        return Autograd.Record(y, "Attention", [Q, K, V], dY =>
        {
            var dQ = Q.RequiresGrad ? Autograd.GradBuffer(Q) : null;
            var dK = K.RequiresGrad ? Autograd.GradBuffer(K) : null;
            var dV = V.RequiresGrad ? Autograd.GradBuffer(V) : null;
            var scratch = Tensor.Empty(b * h, tq * tk);
            Parallelism.For(b * h, bh =>
            {
                Attention.Backward(Q.Span.Slice(bh * tq * d, tq * d), K.Span.Slice(bh * tk * d, tk * d),
                    V.Span.Slice(bh * tk * dv, tk * dv),
                    P.Span.Slice(bh * tq * tk, tq * tk), dY.Span.Slice(bh * tq * dv, tq * dv), tq, tk, d, dv, sc,
                    scratch.Span.Slice(bh * tq * tk, tq * tk),
                    dQ == null ? default : dQ.Span.Slice(bh * tq * d, tq * d),
                    dK == null ? default : dK.Span.Slice(bh * tk * d, tk * d),
                    dV == null ? default : dV.Span.Slice(bh * tk * dv, tk * dv));
            });
            // The probabilities were kept for this backward only (like PyTorch's saved tensors, freed once used).
            Free([scratch, P]);
        });
    }

    /// <summary>Whether each [T, D] block t[b, h] of a rank-4 tensor is one contiguous run (rows of D, row stride
    /// D).</summary>
    private static bool HeadBlocksContiguous(Tensor t) => t.Strides[3] == 1 && t.Strides[2] == t.Shape[3];

    /// <summary>The [T, D] block t[b, h] as a span (t must satisfy <see cref="HeadBlocksContiguous"/>).</summary>
    private static ReadOnlySpan<float> HeadBlock(Tensor t, int b, int h) =>
        t.Storage.AsSpan(t.Offset + b * t.Strides[0] + h * t.Strides[1], t.Shape[2] * t.Shape[3]);
}
