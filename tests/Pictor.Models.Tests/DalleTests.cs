using Pictor.Engine;
using Pictor.Models.Dalle;
using Pictor.Models.Transformer;

namespace Pictor.Models.Tests;

/// <summary>The DALL-E transformer: its positions, its weighted loss, nucleus sampling, and that the KV cache and
/// classifier-free guidance give the same tokens as the uncached reference.</summary>
[Collection("BufferPool")]
public class DalleTests
{
    private static readonly DalleConfig Tiny = new(Layers: 2, Dim: 32, Heads: 4, TextVocab: 30, TextLen: 6, ImageVocab: 20, Grid: 3);
    private const int Pad = 0;

    private static IntTensor Sequences(Rng rng, int b)
    {
        var s = new int[b * Tiny.SeqLen];
        for (int i = 0; i < b; i++)
        {
            int words = 1 + i % 3;                                              // bos, words, eos, then padding
            s[i * Tiny.SeqLen] = 1;
            for (int j = 1; j <= words; j++) s[i * Tiny.SeqLen + j] = 4 + rng.NextInt(Tiny.TextVocab - 4);
            s[i * Tiny.SeqLen + words + 1] = 2;
            for (int j = 0; j < Tiny.ImageLen; j++) s[i * Tiny.SeqLen + Tiny.TextLen + j] = Tiny.TextVocab + rng.NextInt(Tiny.ImageVocab);
        }
        return new IntTensor(s, b, Tiny.SeqLen);
    }

    [Fact]
    public void Image_positions_are_row_plus_column_and_text_positions_are_their_own()
    {
        var m = new DalleTransformer(Tiny, new Rng(1));
        var p = m.StateDict();
        var pos = m.Positions(0, Tiny.SeqLen).ToArray();
        float[] text = p["text_pos"].ToArray(), row = p["row_pos"].ToArray(), col = p["col_pos"].ToArray();
        int d = Tiny.Dim;
        for (int t = 0; t < Tiny.TextLen; t++)
            for (int k = 0; k < d; k++) Assert.Equal(text[t * d + k], pos[t * d + k]);
        for (int j = 0; j < Tiny.ImageLen; j++)
            for (int k = 0; k < d; k++) Assert.Equal(row[j / 3 * d + k] + col[j % 3 * d + k], pos[(Tiny.TextLen + j) * d + k]);
        Assert.Equal(pos.AsSpan(7 * d, 4 * d).ToArray(), m.Positions(7, 4).ToArray());
    }

    [Fact]
    public void The_loss_weights_text_one_eighth_and_image_seven_eighths_over_their_own_vocabularies_and_skips_padding()
    {
        var m = new DalleTransformer(Tiny, new Rng(2));
        var seq = Sequences(new Rng(3), 3);
        int t = Tiny.SeqLen - 1, v = Tiny.Vocab;
        float[] logits;
        using (Autograd.NoGrad())
        {
            var inp = new int[3 * t];
            for (int i = 0; i < 3; i++) Array.Copy(seq.Data, i * Tiny.SeqLen, inp, i * t, t);
            logits = m.Forward(new IntTensor(inp, 3, t)).ToArray();
        }
        double textSum = 0, imageSum = 0; int textN = 0, imageN = 0;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < t; j++)
            {
                int target = seq.Data[i * Tiny.SeqLen + j + 1];
                bool image = j >= Tiny.TextLen - 1;                             // each slot's softmax runs over its own vocabulary
                var row = image ? logits.AsSpan((i * t + j) * v + Tiny.TextVocab, Tiny.ImageVocab) : logits.AsSpan((i * t + j) * v, Tiny.TextVocab);
                if (image) target -= Tiny.TextVocab;
                double max = double.NegativeInfinity; foreach (float x in row) max = Math.Max(max, x);
                double z = 0; foreach (float x in row) z += Math.Exp(x - max);
                double nll = -(row[target] - max - Math.Log(z));
                if (image) { imageSum += nll; imageN++; }
                else if (target != Pad) { textSum += nll; textN++; }
            }
        Assert.Equal(3 * Tiny.ImageLen, imageN);
        Assert.Equal(2 + 3 + 4, textN);                                         // words + eos per row (padding skipped)
        double expected = 0.125 * textSum / textN + 0.875 * imageSum / imageN;
        Assert.Equal(expected, m.Loss(seq, Pad).Item(), 1e-4);
        Assert.Equal(imageSum / imageN, m.Loss(seq, Pad, imageOnly: true).Item(), 1e-4);
    }

    [Fact]
    public void Dropout_acts_only_with_a_rng_and_p_above_zero_and_replays_from_the_rng_state()
    {
        var m = new DalleTransformer(Tiny, new Rng(2));
        var seq = Sequences(new Rng(3), 3);
        float plain = m.Loss(seq, Pad).Item();
        Assert.Equal(plain, m.Loss(seq, Pad, dropout: 0f, rng: new Rng(9)).Item());       // p = 0: the rng is not even read
        Assert.Equal(plain, m.Loss(seq, Pad, dropout: 0.3f).Item());                      // no rng (sampling, validation): off
        float a = m.Loss(seq, Pad, dropout: 0.3f, rng: new Rng(9)).Item(), b = m.Loss(seq, Pad, dropout: 0.3f, rng: new Rng(9)).Item();
        Assert.Equal(a, b);                                                              // same rng state, same masks
        Assert.NotEqual(plain, a);
        Assert.NotEqual(a, m.Loss(seq, Pad, dropout: 0.3f, rng: new Rng(10)).Item());
        Assert.Contains("dropout must be in [0, 1)", Assert.Throws<ArgumentException>(() => m.Loss(seq, Pad, dropout: 1f, rng: new Rng(9))).Message);
    }

    [Fact]
    public void Nucleus_sampling_keeps_the_smallest_set_reaching_p()
    {
        // probabilities 0.5, 0.3, 0.15, 0.05 (as logits): p = 0.7 keeps the first two, p = 0.4 only the first.
        float[] logits = [MathF.Log(0.3f), MathF.Log(0.05f), MathF.Log(0.5f), MathF.Log(0.15f)];
        var rng = new Rng(5);
        var seen = new HashSet<int>();
        for (int i = 0; i < 400; i++) seen.Add(ArSampler.Draw(logits, new ArSamplingOptions(TopP: 0.7f), rng));
        Assert.Equal([0, 2], seen.Order());
        for (int i = 0; i < 50; i++) Assert.Equal(2, ArSampler.Draw(logits, new ArSamplingOptions(TopP: 0.4f), rng));
        seen.Clear();
        for (int i = 0; i < 2000; i++) seen.Add(ArSampler.Draw(logits, new ArSamplingOptions(), rng));
        Assert.Equal(4, seen.Count);                                            // p = 1 is off
    }

    [Theory]
    [InlineData(1f, 0, 1f, 1f)]      // plain sampling
    [InlineData(0f, 0, 1f, 1f)]      // greedy
    [InlineData(0.9f, 5, 0.9f, 1f)]  // temperature + top-k + top-p
    [InlineData(1f, 8, 1f, 3f)]      // classifier-free guidance
    public void The_KV_cache_gives_the_same_tokens_as_without(float temperature, int topK, float topP, float cfg)
    {
        var m = new DalleTransformer(Tiny, new Rng(4));
        var seq = Sequences(new Rng(6), 2);
        var text = new IntTensor(seq.Data.Where((_, i) => i % Tiny.SeqLen < Tiny.TextLen).ToArray(), 2, Tiny.TextLen);
        var nul = new int[2 * Tiny.TextLen]; nul[0] = 1; nul[1] = 2; nul[Tiny.TextLen] = 1; nul[Tiny.TextLen + 1] = 2;
        var uncond = new IntTensor(nul, 2, Tiny.TextLen);
        var o = new DalleSamplingOptions(temperature, topK, topP, cfg);
        Rng[] Rngs() => [new Rng(10), new Rng(11)];
        var cached = DalleSampler.Generate(m, text, uncond, o, Rngs(), useCache: true);
        var full = DalleSampler.Generate(m, text, uncond, o, Rngs(), useCache: false);
        Assert.Equal(full, cached);
        Assert.Equal(2 * Tiny.ImageLen, cached.Length);
        Assert.All(cached, k => Assert.InRange(k, 0, Tiny.ImageVocab - 1));
        if (cfg != 1f)   // guidance changes the draw (same generators, other logits)
            Assert.NotEqual(DalleSampler.Generate(m, text, uncond, o with { CfgScale = 1f }, Rngs()), cached);
    }

    [Theory]
    [InlineData(1f)]   // unguided
    [InlineData(3f)]   // classifier-free guidance
    public void Completion_is_the_generation_loop_started_after_the_kept_codes(float cfg)
    {
        var m = new DalleTransformer(Tiny, new Rng(4));
        var seq = Sequences(new Rng(6), 2);
        var text = new IntTensor(seq.Data.Where((_, i) => i % Tiny.SeqLen < Tiny.TextLen).ToArray(), 2, Tiny.TextLen);
        var nul = new int[2 * Tiny.TextLen]; nul[0] = 1; nul[1] = 2; nul[Tiny.TextLen] = 1; nul[Tiny.TextLen + 1] = 2;
        var uncond = new IntTensor(nul, 2, Tiny.TextLen);
        var o = new DalleSamplingOptions(0.9f, 5, 1f, cfg);
        Rng[] Rngs() => [new Rng(10), new Rng(11)];
        var none = new IntTensor([], 2, 0);   // P = 0: nothing kept, so a generation of the same generators
        Assert.Equal(DalleSampler.Generate(m, text, uncond, o, Rngs()),
            DalleCompletion.Complete(m, text, uncond, none, o, Rngs()));
        var greedy = o with { Temperature = 0f };   // greedy: the kept half of a generation continues to the same rest
        var g = DalleSampler.Generate(m, text, uncond, greedy, Rngs());
        int n = Tiny.ImageLen, p = n / 2;
        var half = new IntTensor(Enumerable.Range(0, 2).SelectMany(i => g.Skip(i * n).Take(p)).ToArray(), 2, p);
        var done = new List<(int, int)>();
        Assert.Equal(g, DalleCompletion.Complete(m, text, uncond, half, greedy, Rngs(), (d, t) => done.Add((d, t))));
        Assert.Equal(Enumerable.Range(1, n - p).Select(d => (d, n - p)), done);   // progress counts drawn positions
    }

    [Fact]
    public void Bad_input_is_a_clear_error()
    {
        var m = new DalleTransformer(Tiny, new Rng(7));
        Assert.Contains("must be [B, 15]", Assert.Throws<ArgumentException>(() => m.Loss(new IntTensor(new int[10], 1, 10), Pad)).Message);
        Assert.Contains("outside [0, 50)", Assert.Throws<ArgumentException>(() => m.Forward(new IntTensor([1, 99], 1, 2))).Message);
        var text = new IntTensor(new int[6], 1, 6);
        Assert.Contains("needs unconditional captions", Assert.Throws<ArgumentException>(() => DalleSampler.Generate(m, text, null, new DalleSamplingOptions(CfgScale: 2f), [new Rng(1)])).Message);
        Assert.Contains("--top-p must be in (0, 1]", Assert.Throws<ArgumentException>(() => DalleSampler.Generate(m, text, null, new DalleSamplingOptions(TopP: 0f), [new Rng(1)])).Message);
    }
}
