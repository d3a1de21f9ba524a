using Pictor.Engine;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Diffusion;

// Dimension legend: B batch, H heads, T pixels of one attention level (r*r), S text tokens, N = size*size pixels.
/// <summary>
/// The token-level grounding loss of TokenCompose (Wang et al. 2024, "TokenCompose: Text-to-Image Diffusion with
/// Token-level Supervision", L_token): each grounded token's cross-attention should come from its object's pixels.
/// For one cross-attention layer l with probabilities P_l [B, H, T, S] (softmax over the S tokens), A = mean over
/// heads, and the token masks M pooled to the layer's r x r grid (each cell's covered fraction),
///
///     L_l = (1/|G|) sum_{(b, s) in G} (1 - sum_u M[b, s, u] A[b, u, s] / sum_u A[b, u, s])^2,
///
/// the share of the attention token s receives from outside its object, squared; L = the mean over layers. G is the
/// set of grounded (image, token) pairs (<see cref="Grounding.TokenMasks"/>). A pixel of the blue square that reads
/// "circle" costs "circle" its share, so the loss teaches the pixels of each object to read their own object's words:
/// which shape goes with which colour, at the pixels where that colour is (docs/derivations/binding.md, "Grounding").
/// Built from recorded ops, so its gradient reaches the queries, the keys and through them the text encoder.
/// </summary>
public static class GroundingLoss
{
    /// <summary>maps: P_l [B, H, T_l, S] (T_l = r_l^2, r_l dividing <paramref name="size"/>); masks [B, S, N];
    /// grounded [B * S] -> the scalar L (zero, with no graph, when nothing is grounded).</summary>
    public static Tensor Compute(IReadOnlyList<Tensor> maps, float[] masks, bool[] grounded, int batch,
        int context, int size)
    {
        if (masks.Length != batch * context * size * size || grounded.Length != batch * context)
            throw new ArgumentException($"grounding: {masks.Length} mask floats and {grounded.Length} flags for "
                + $"B={batch}, S={context}, {size}x{size}");
        int count = grounded.Count(g => g);
        if (count == 0 || maps.Count == 0) return Tensor.Scalar(0f);
        var g = Tensor.FromArray(grounded.Select(v => v ? 1f : 0f).ToArray(), batch, context);   // (B, S)
        var pooled = new Dictionary<int, Tensor>();
        Tensor? total = null;
        foreach (var p in maps)
        {
            if (p.Rank != 4 || p.Shape[0] != batch || p.Shape[3] != context)
                throw new ArgumentException($"grounding: attention map {Shape.Format(p.Shape)} is not [{batch}, H, "
                    + $"T, {context}]");
            int t = p.Shape[2], r = (int)Math.Round(Math.Sqrt(t));
            if (r * r != t || size % r != 0)
                throw new ArgumentException($"grounding: {t} attention pixels are not a square grid dividing "
                    + $"{size}x{size}");
            // (B, T, S)
            if (!pooled.TryGetValue(r, out var m)) pooled[r] = m = PoolMasks(masks, batch, context, size, r);
            // (B, T, S)
            var a = Ops.Mean(p, [1]);
            // (B, S)
            var inside = Ops.Sum(Ops.Mul(a, m), [1]);
            // (B, S)
            var all = Ops.AddScalar(Ops.Sum(a, [1]), 1e-8f);
            // (B, S)
            var err = Ops.Square(Ops.AddScalar(Ops.Neg(Ops.Div(inside, all)), 1f));
            var l = Ops.MulScalar(Ops.Sum(Ops.Mul(err, g)), 1f / count);
            total = total == null ? l : Ops.Add(total, l);
        }
        return Ops.MulScalar(total!, 1f / maps.Count);
    }

    /// <summary>masks [B, S, size*size] -> [B, r*r, S]: the mean over each (size/r)^2 block (the covered fraction of
    /// each attention cell), transposed so tokens are last, as in the attention maps. A constant (no
    /// gradient).</summary>
    public static Tensor PoolMasks(float[] masks, int batch, int context, int size, int r)
    {
        using var _ = Autograd.NoGrad();
        var m = Tensor.FromArray(masks, batch * context, 1, size, size);
        if (r != size) m = Ops.AvgPool2d(m, size / r);
        return Ops.Contiguous(Ops.Transpose(Ops.Reshape(m, batch, context, r * r), 1, 2));
    }
}
