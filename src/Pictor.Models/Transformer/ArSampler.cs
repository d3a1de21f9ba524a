using Pictor.Engine;

namespace Pictor.Models.Transformer;

/// <summary>How to draw each token: temperature (0 = greedy), top-k (0 = off), the id range allowed (e.g. only
/// image tokens [TextVocab, Vocab) after the caption), and top-p (1 = off): nucleus sampling (Holtzman et al. 2020,
/// "The Curious Case of Neural Text Degeneration", eq. 3) keeps the smallest set of most likely tokens whose
/// probabilities sum to at least p.</summary>
public sealed record ArSamplingOptions(float Temperature = 1f, int TopK = 0, int AllowedFrom = 0,
    int? AllowedTo = null, float TopP = 1f);

/// <summary>
/// Autoregressive sampling for <see cref="ArTransformer"/>. With the KV cache, the prompt is run once and each new
/// token costs one position's forward; without it, the whole prefix is re-run every step (the reference the cache is
/// tested against). Both draw from the same seeded generator, so they give the same tokens.
/// </summary>
public static class ArSampler
{
    /// <summary>prompt [B, Tp] -> [B, Tp + count].</summary>
    public static IntTensor Generate(ArTransformer model, IntTensor prompt, int count, ArSamplingOptions opt, Rng rng,
        bool useCache = true)
    {
        int b = prompt.Shape[0], tp = prompt.Shape[1], total = tp + count, v = model.Config.Vocab;
        if (tp < 1) Throw.Argument("the prompt needs at least one token");
        if (total > model.Config.SeqLen)
            Throw.Argument($"prompt ({tp}) + {count} new tokens exceed the model's {model.Config.SeqLen} positions");
        int lo = opt.AllowedFrom, hi = opt.AllowedTo ?? v;
        if (lo < 0 || hi > v || lo >= hi) Throw.Argument($"allowed token range [{lo}, {hi}) is not inside [0, {v})");
        var seq = new int[b * total];
        for (int i = 0; i < b; i++) Array.Copy(prompt.Data, i * tp, seq, i * total, tp);
        using var _ = Autograd.NoGrad();
        // each weight packed for GEMM once, not once per token
        using var packs = PackedWeights.Begin(model.Parameters());
        var cache = useCache ? model.NewCache(b) : null;
        for (int step = 0; step < count; step++)
        {
            int len = tp + step;
            using var scope = TensorScope.Begin();
            Tensor logits;   // (B, T, V); the last position predicts the next token
            if (cache != null)
            {
                int from = step == 0 ? 0 : len - 1, n = len - from;
                var ids = new int[b * n];
                for (int i = 0; i < b; i++) Array.Copy(seq, i * total + from, ids, i * n, n);
                logits = model.ForwardCached(new IntTensor(ids, b, n), cache);
            }
            else
            {
                var ids = new int[b * len];
                for (int i = 0; i < b; i++) Array.Copy(seq, i * total, ids, i * len, len);
                logits = model.Forward(new IntTensor(ids, b, len));
            }
            int t = logits.Shape[1];
            var all = logits.Span;
            for (int i = 0; i < b; i++)
                seq[i * total + len] = lo + Draw(all.Slice(((i * t) + t - 1) * v + lo, hi - lo), opt, rng);
        }
        return new IntTensor(seq, b, total);
    }

    /// <summary>The k-th largest value counting repeats (what sorting ascending and taking [n - k] gives), through a
    /// min-heap of the k largest seen so far: O(n log k) instead of sorting the whole vocabulary for every token.
    /// NaN counts as the smallest value, as in Array.Sort.</summary>
    public static float KthLargest(ReadOnlySpan<float> values, int k)
    {
        if (k < 1 || k > values.Length) Throw.Argument($"k = {k} must be in 1..{values.Length}");
        var heap = new float[k];
        for (int i = 0; i < k; i++) heap[i] = float.IsNaN(values[i]) ? float.NegativeInfinity : values[i];
        for (int i = k / 2 - 1; i >= 0; i--) SiftDown(heap, i);
        for (int i = k; i < values.Length; i++)
            if (values[i] > heap[0]) { heap[0] = values[i]; SiftDown(heap, 0); }
        // With fewer than k numbers the answer is a NaN (sorted first); the heap holds -inf for it.
        if (float.IsNegativeInfinity(heap[0]))
        {
            int numbers = 0;
            foreach (float v in values) if (!float.IsNaN(v)) numbers++;
            if (numbers < k) return float.NaN;
        }
        return heap[0];
    }

    private static void SiftDown(float[] heap, int i)
    {
        int n = heap.Length;
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < n && heap[l] < heap[m]) m = l;
            if (r < n && heap[r] < heap[m]) m = r;
            if (m == i) return;
            (heap[i], heap[m]) = (heap[m], heap[i]);
            i = m;
        }
    }

    /// <summary>Index drawn from softmax(logits / temperature) restricted to the top k, then to the top-p nucleus;
    /// argmax when temperature is 0.</summary>
    public static int Draw(ReadOnlySpan<float> logits, ArSamplingOptions opt, Rng rng)
    {
        if (opt.Temperature <= 0f)
        {
            int best = 0;
            for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
            return best;
        }
        float cut = float.NegativeInfinity;
        if (opt.TopK > 0 && opt.TopK < logits.Length) cut = KthLargest(logits, opt.TopK);
        float max = float.NegativeInfinity;
        foreach (float l in logits) max = Math.Max(max, l);
        var w = new float[logits.Length];
        for (int i = 0; i < w.Length; i++)
            w[i] = logits[i] >= cut ? MathF.Exp((logits[i] - max) / opt.Temperature) : 0f;
        if (opt.TopP < 1f)
        {
            double total = 0;
            foreach (float x in w) total += x;
            var byWeight = Enumerable.Range(0, w.Length).OrderByDescending(i => w[i]).ThenBy(i => i).ToArray();
            double acc = 0; int keep = 0;
            while (keep < byWeight.Length && acc < opt.TopP * total) acc += w[byWeight[keep++]];
            for (int r = Math.Max(keep, 1); r < byWeight.Length; r++) w[byWeight[r]] = 0f;
        }
        return rng.Categorical(w);
    }
}
