using Pictor.Engine;
using Pictor.Models.Transformer;

namespace Pictor.Models.Dalle;

// Dimension legend: B batch, L text tokens, G image grid side, P kept image tokens (K rows of G).

/// <summary>
/// DALL-E image completion (Ramesh et al. 2021, section 1 and figure 2's "completions"): the image tokens of a source
/// are a prefix the transformer continues. The caption and the kept tokens fill the KV cache in one forward, then the
/// remaining G*G - P positions are drawn one at a time in raster order, guided and drawn as
/// <see cref="DalleSampler.Generate"/> draws them.
/// </summary>
public static class DalleCompletion
{
    /// <summary>text [B, L] captions (and uncond [B, L] when guided), prefix [B, P] kept image codes -> codes [B, G*G]
    /// whose first P are the prefix. P = G*G draws nothing and returns the prefix.</summary>
    /// <remarks>Copied from <see cref="DalleSampler.Generate"/> (the loop, with the start moved to P); keep in
    /// step.</remarks>
    public static int[] Complete(DalleTransformer model, IntTensor text, IntTensor? uncond, IntTensor prefix,
        DalleSamplingOptions o, IReadOnlyList<Rng> rngs, Action<int, int>? onToken = null)
    {
        o.Validate();
        var c = model.Config;
        int b = text.Shape[0], L = c.TextLen, total = c.SeqLen, v = c.Vocab, n = c.ImageLen;
        if (text.Shape.Length != 2 || text.Shape[1] != L)
            Throw.Argument($"captions must be [B, {L}] token ids, got {Shape.Format(text.Shape)}");
        int p = prefix.Shape.Length == 2 && prefix.Shape[0] == b ? prefix.Shape[1] : -1;
        if (p < 0 || p > n)
            Throw.Argument(
                $"the kept image codes must be [{b}, P] with P at most {n}, got {Shape.Format(prefix.Shape)}");
        bool cfg = o.CfgScale != 1f;
        if (cfg && (uncond == null || uncond.Shape[0] != b || uncond.Shape[1] != L))
            Throw.Argument($"guided sampling needs unconditional captions [{b}, {L}]");
        if (rngs.Count != b) Throw.Argument($"{rngs.Count} generators for {b} rows");
        int rows = cfg ? 2 * b : b;
        var seq = new int[rows * total];
        var codes = new int[b * n];
        for (int i = 0; i < b; i++)
        {
            Array.Copy(text.Data, i * L, seq, i * total, L);
            if (cfg) Array.Copy(uncond!.Data, i * L, seq, (b + i) * total, L);
            for (int j = 0; j < p; j++)
            {
                int code = prefix.Data[i * p + j];
                codes[i * n + j] = code;
                seq[i * total + L + j] = c.TextVocab + code;
                if (cfg) seq[(b + i) * total + L + j] = c.TextVocab + code;
            }
        }
        if (p == n) return codes;
        var draw = new ArSamplingOptions(o.Temperature, o.TopK, TopP: o.TopP);
        var guided = new float[c.ImageVocab];
        using var _ = Autograd.NoGrad();
        using var packs = PackedWeights.Begin(model.Parameters());
        var cache = model.NewCache(rows);
        for (int step = p; step < n; step++)
        {
            int len = L + step;
            using var scope = TensorScope.Begin();
            // The first forward fills the cache with the text and the prefix; each later one adds a position.
            int from = step == p ? 0 : len - 1, m = len - from;
            var ids = new int[rows * m];
            for (int r = 0; r < rows; r++) Array.Copy(seq, r * total + from, ids, r * m, m);
            var all = model.ForwardCached(new IntTensor(ids, rows, m), cache).Span;   // (rows, m, V)
            for (int i = 0; i < b; i++)
            {
                var lc = all.Slice(((i * m) + m - 1) * v + c.TextVocab, c.ImageVocab);
                ReadOnlySpan<float> l = lc;
                if (cfg)
                {
                    var lu = all.Slice((((b + i) * m) + m - 1) * v + c.TextVocab, c.ImageVocab);
                    for (int k = 0; k < guided.Length; k++) guided[k] = lu[k] + o.CfgScale * (lc[k] - lu[k]);
                    l = guided;
                }
                int code = ArSampler.Draw(l, draw, rngs[i]);
                codes[i * n + step] = code;
                seq[i * total + len] = c.TextVocab + code;
                if (cfg) seq[(b + i) * total + len] = c.TextVocab + code;
            }
            onToken?.Invoke(step + 1 - p, n - p);
        }
        return codes;
    }
}
