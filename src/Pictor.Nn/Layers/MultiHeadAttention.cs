using Pictor.Engine;

namespace Pictor.Nn;

// Dimension legend: B batch, T query tokens, S key/value tokens, D model width, H heads, Dh = D / H.
/// <summary>
/// Multi-head attention with separate q, k, v and output projections. Self-attention when the context is the input;
/// cross-attention when keys and values come from another sequence (e.g. text tokens of width
/// <paramref name="contextDim"/>). PyTorch equivalent: nn.MultiheadAttention(batch_first=True) with kdim/vdim.
/// </summary>
public sealed class MultiHeadAttention : Module
{
    public int Heads { get; }
    public int HeadDim { get; }
    public Linear Q { get; }
    public Linear K { get; }
    public Linear V { get; }
    public Linear Out { get; }

    public MultiHeadAttention(Rng rng, int dim, int heads, int? headDim = null, int? contextDim = null,
        bool qkvBias = true)
    {
        Heads = heads;
        HeadDim = headDim ?? (dim % heads == 0 ? dim / heads
            : Throw.Argument<int>($"attention width {dim} does not divide into {heads} heads"));
        int inner = Heads * HeadDim, ctx = contextDim ?? dim;
        Q = Child("q", new Linear(rng, dim, inner, qkvBias));
        K = Child("k", new Linear(rng, ctx, inner, qkvBias));
        V = Child("v", new Linear(rng, ctx, inner, qkvBias));
        Out = Child("out", new Linear(rng, inner, dim));
    }

    /// <summary>x [B, T, D], context [B, S, Dc] (null for self-attention) -> [B, T, D]. With <paramref
    /// name="probabilities"/>, the attention is computed from recorded ops (logits, softmax, product) instead of the
    /// fused kernel, and its probabilities [B, H, T, S] are added to the list as a tensor that gradients flow through
    /// (a loss on where each query looks: <c>GroundingLoss</c>; a DALL-E explanation, causal); the output is the fused
    /// kernel's up to
    /// rounding.</summary>
    public Tensor Forward(Tensor x, Tensor? context = null, bool causal = false, bool[]? keyPaddingMask = null,
        List<Tensor>? probabilities = null)
    {
        var ctx = context ?? x;
        var q = SplitHeads(Q.Forward(x));       // (B, H, T, Dh)
        var k = SplitHeads(K.Forward(ctx));     // (B, H, S, Dh)
        var v = SplitHeads(V.Forward(ctx));     // (B, H, S, Dh)
        Tensor o;
        // (B, H, T, Dh)
        if (probabilities == null) o = Ops.ScaledDotProductAttention(q, k, v, causal, keyPaddingMask);
        else
        {
            if (keyPaddingMask != null)
                Throw.Argument("attention probabilities are kept only without a key padding mask; leave it out");
            // (B, H, T, S)
            var logits = Ops.MulScalar(Ops.MatMul(q, Ops.Transpose(k, 2, 3)), 1f / MathF.Sqrt(HeadDim));
            if (causal) logits = Ops.Add(logits, CausalMask(q.Shape[2], k.Shape[2]));
            var p = Ops.Softmax(logits, -1);
            probabilities.Add(p);
            // (B, H, T, Dh)
            o = Ops.MatMul(p, v);
        }
        return Out.Forward(MergeHeads(o));     // (B, T, D)
    }

    /// <summary>[T, S]: 0 where query i may see key j (j &lt;= i + S - T, the mask aligned to the end, as the fused
    /// kernel's), else -1e30.</summary>
    private static Tensor CausalMask(int t, int s)
    {
        var m = new float[t * s];
        for (int i = 0; i < t; i++)
            for (int j = i + s - t + 1; j < s; j++) m[i * s + j] = -1e30f;
        return Tensor.FromArray(m, t, s);
    }

    /// <summary>Causal self-attention for new tokens x [B, T, D] that attend to everything in <paramref name="cache"/>
    /// plus themselves; their keys and values are appended to the cache. Equal to running the whole sequence with
    /// causal masking and keeping the last T outputs (the mask is aligned to the end).</summary>
    public Tensor ForwardCached(Tensor x, LayerKvCache cache)
    {
        var q = SplitHeads(Q.Forward(x));                                       // (B, H, T, Dh)
        var kNew = Ops.Contiguous(SplitHeads(K.Forward(x)));                    // (B, H, T, Dh)
        var (k, v) = cache.Append(kNew, Ops.Contiguous(SplitHeads(V.Forward(x))));   // (B, H, L+T, Dh)
        var o = Ops.ScaledDotProductAttention(q, k, v, causal: true);           // (B, H, T, Dh)
        return Out.Forward(MergeHeads(o));                                      // (B, T, D)
    }

    /// <summary>(B, T, H*Dh) -> (B, H, T, Dh).</summary>
    public Tensor SplitHeads(Tensor x) =>
        Ops.Permute(Ops.Reshape(x, x.Shape[0], x.Shape[1], Heads, HeadDim), 0, 2, 1, 3);

    /// <summary>(B, H, T, Dh) -> (B, T, H*Dh).</summary>
    public Tensor MergeHeads(Tensor x) =>
        Ops.Reshape(Ops.Permute(x, 0, 2, 1, 3), x.Shape[0], x.Shape[2], Heads * HeadDim);
}
