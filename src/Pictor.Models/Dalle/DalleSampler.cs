using Pictor.Engine;
using Pictor.Models.Transformer;

namespace Pictor.Models.Dalle;

/// <summary>How DALL-E draws image tokens: temperature (0 = greedy), top-k (0 = off), top-p (1 = off) and the
/// classifier-free guidance scale (1 = off).</summary>
public sealed record DalleSamplingOptions(float Temperature = 1f, int TopK = 0, float TopP = 1f, float CfgScale = 1f)
{
    public void Validate()
    {
        if (!(Temperature >= 0f && Temperature <= 10f))
            throw new ArgumentException($"--temperature must be between 0 (greedy) and 10, got {Temperature}");
        if (TopK < 0) throw new ArgumentException($"--top-k must be 0 (off) or more, got {TopK}");
        if (!(TopP > 0f && TopP <= 1f)) throw new ArgumentException($"--top-p must be in (0, 1] (1 = off), got {TopP}");
        if (!(CfgScale >= 0f && CfgScale <= 50f))
            throw new ArgumentException($"--cfg must be between 0 and 50, got {CfgScale}");
    }
}

/// <summary>
/// Draws the G*G image tokens of a DALL-E transformer after a caption, one position at a time in raster order. With
/// classifier-free guidance (scale s != 1) every row also runs with the null caption (or the negative prompt) in the
/// same batch, and the token is drawn from l_u + s (l_c - l_u) over the image vocabulary (the logit form of Ho and
/// Salimans 2022, eq. 6, as used for autoregressive models by Gafni et al. 2022, "Make-A-Scene", section 3.3); both
/// rows then continue with the same token. With the KV cache the caption runs once and each token costs one position;
/// without it the prefix is re-run each step (the reference the cache is tested against). Row i draws from its own
/// generator, so with the same batch the tokens are the same with and without the cache.
/// </summary>
public static class DalleSampler
{
    /// <summary>text [B, L] captions (and uncond [B, L] when guided) -> image codes [B, G*G] in 0..ImageVocab-1.
    /// <paramref name="onToken"/>, when given, is called after each position with (positions done, G*G); throwing from
    /// it (OperationCanceledException) stops the draw.</summary>
    public static int[] Generate(DalleTransformer model, IntTensor text, IntTensor? uncond, DalleSamplingOptions o,
        IReadOnlyList<Rng> rngs, bool useCache = true, Action<int, int>? onToken = null) =>
        Continue(model, text, uncond, new IntTensor([], text.Shape[0], 0), o, rngs, useCache, onToken);

    /// <summary>The draw after a caption and P kept image codes, prefix [B, P] (P = 0 for a generation; <see
    /// cref="DalleCompletion"/> checks P for a completion) -> codes [B, G*G] whose first P are the prefix. The first
    /// forward fills the KV cache with the caption and the prefix; each later one adds a position. onToken gets
    /// (positions drawn, G*G - P).</summary>
    internal static int[] Continue(DalleTransformer model, IntTensor text, IntTensor? uncond, IntTensor prefix,
        DalleSamplingOptions o, IReadOnlyList<Rng> rngs, bool useCache, Action<int, int>? onToken)
    {
        o.Validate();
        var c = model.Config;
        int b = text.Shape[0], L = c.TextLen, total = c.SeqLen, v = c.Vocab, n = c.ImageLen, p = prefix.Shape[1];
        if (text.Shape.Length != 2 || text.Shape[1] != L)
            Throw.Argument($"captions must be [B, {L}] token ids, got {Shape.Format(text.Shape)}");
        bool cfg = o.CfgScale != 1f;
        if (cfg && (uncond == null || uncond.Shape[0] != b || uncond.Shape[1] != L))
            Throw.Argument($"guided sampling needs unconditional captions [{b}, {L}]");
        if (rngs.Count != b) Throw.Argument($"{rngs.Count} generators for {b} rows");
        int rows = cfg ? 2 * b : b;
        var seq = new int[rows * total];   // (rows, L + G*G): caption, then image codes offset by the text vocabulary
        var codes = new int[b * n];        // (B, G*G)
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
        // each weight packed for GEMM once, not once per token
        using var packs = PackedWeights.Begin(model.Parameters());
        var cache = useCache ? model.NewCache(rows) : null;
        for (int step = p; step < n; step++)
        {
            int len = L + step;
            using var scope = TensorScope.Begin();
            int from = cache == null ? 0 : step == p ? 0 : len - 1, m = len - from;
            var ids = new int[rows * m];
            for (int r = 0; r < rows; r++) Array.Copy(seq, r * total + from, ids, r * m, m);
            // (rows, m, V)
            var logits = cache != null ? model.ForwardCached(new IntTensor(ids, rows, m), cache)
                : model.Forward(new IntTensor(ids, rows, m));
            var all = logits.Span;
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
