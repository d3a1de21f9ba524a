using System.Globalization;
using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Diffusion;
using static Pictor.Imaging.PlotDrawing;

namespace Pictor.Pipelines.Inside;

// Dimension legend: H heads, T = r*r pixels of one attention level, S text tokens (bos, caption, eos, padding),
// W caption words (the tokenizer's pre-tokenisation pieces), r the level's side.

/// <summary>One resolution's per-word maps: Maps[w] is [r*r] (row-major), at each pixel the share of the caption
/// words' attention that word w receives, so the maps sum to one over words at every pixel.</summary>
public sealed record WordMaps(int Resolution, float[][] Maps);

/// <summary>What <see cref="AttentionMaps.Explain"/> found: the image drawn, the caption's words, the maps at each
/// resolution (finest first) and the share of all cross-attention that went to the words at all (the rest went to
/// bos, eos and padding).</summary>
public sealed record AttentionExplanation(string Prompt, SamplingSettings Settings, Image Image,
    IReadOnlyList<string> Words, IReadOnlyList<WordMaps> Levels, double WordShare)
{
    /// <summary>The picture `pictor explain` writes: a header row of words, then one row per resolution (finest
    /// first): the image, then each word's map as a heat map over the greyed image (black: none of the words'
    /// attention, yellow: the most any word gets at that resolution, which the row label gives).</summary>
    public Image ToImage(int cell = 64)
    {
        const int pad = 2, header = 10, left = 44;
        int cols = Words.Count + 1, w = left + cols * (cell + pad) + pad,
            h = header + Levels.Count * (cell + pad) + pad;
        var img = Image.Solid(w, h, 255, 255, 255);
        var face = Image.Resize(cell, cell);
        for (int c = 0; c < Words.Count; c++)
            Label(img, left + (c + 1) * (cell + pad) + pad, 2, Fit(Words[c], cell / 4));
        for (int row = 0; row < Levels.Count; row++)
        {
            var level = Levels[row];
            int y0 = header + row * (cell + pad) + pad, r = level.Resolution;
            float max = Math.Max(1e-6f, level.Maps.Max(m => m.Max()));
            Label(img, 2, y0 + cell / 2 - 8, string.Create(CultureInfo.InvariantCulture, $"{r}x{r}"));
            Label(img, 2, y0 + cell / 2, string.Create(CultureInfo.InvariantCulture, $"max {max:F2}"));
            Blit(face, img, left + pad, y0);
            for (int c = 0; c < Words.Count; c++)
            {
                int x0 = left + (c + 1) * (cell + pad) + pad;
                for (int y = 0; y < cell; y++)
                    for (int x = 0; x < cell; x++)
                    {
                        float v = level.Maps[c][(y * r / cell) * r + x * r / cell] / max;
                        int o = 4 * (y * cell + x);
                        float grey = (face.Rgba[o] + face.Rgba[o + 1] + face.Rgba[o + 2]) / 3f;
                        var (hr, hg, hb) = Heat(v);
                        Set(img, x0 + x, y0 + y, (byte)(0.25f * grey + 0.75f * hr), (byte)(0.25f * grey + 0.75f * hg),
                            (byte)(0.25f * grey + 0.75f * hb));
                    }
            }
        }
        return img;
    }

    private static string Fit(string word, int chars) => word.Length <= chars ? word : word[..chars];

    /// <summary>Black -> purple -> orange -> yellow for v in [0, 1].</summary>
    private static (float R, float G, float B) Heat(float v)
    {
        v = Math.Clamp(v, 0f, 1f);
        return (255f * Math.Min(1f, 1.6f * v), 255f * Math.Max(0f, 1.6f * v - 0.6f),
            v < 0.4f ? 300f * v : Math.Max(0f, 120f - 200f * (v - 0.4f)));
    }

    private static void Blit(Image src, Image dst, int x0, int y0)
    {
        for (int y = 0; y < src.Height; y++)
            Buffer.BlockCopy(src.Rgba, y * src.Width * 4, dst.Rgba, ((y0 + y) * dst.Width + x0) * 4, src.Width * 4);
    }
}

/// <summary>
/// `pictor explain PROMPT`: which caption word each pixel of a diffusion model's image read. The sampling loop of a
/// generation runs with the UNet's cross-attention probabilities kept (<see cref="DiffusionPipeline.Guided"/>'s
/// onMaps); for the conditional row, P [H, T, S] of every AttnBlock is summed over heads, over the blocks of one
/// resolution and over the sampling steps; then, at each pixel u, word w's map is sum_{s in w} P[u, s] / sum_{s in
/// any word} P[u, s] (prompt-to-prompt's per-word maps, Hertz et al. 2022, section 3.2, over words rather than
/// tokens). The attention is computed from recorded ops rather than the fused kernel, so the image can differ from
/// `generate`'s by rounding.
/// </summary>
public static class AttentionMaps
{
    /// <summary>Why <paramref name="model"/> cannot be explained (one line naming the fix), or null.</summary>
    public static string? Refuse(TextToImage model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Pipeline is DiffusionPipeline or Dalle.DallePipeline ? null
            : $"explain reads a diffusion UNet's cross-attention or a DALL-E transformer's attention, but "
                + $"'{model.Name}' is a {model.Family} model; use a diffusion or DALL-E model (models/emoji, "
                + "models/emoji-dalle)";
    }

    /// <summary>Draws request.Prompt once (seed request.Seed; Count and Candidates are ignored) and returns its
    /// per-word attention maps at each resolution, averaged over the sampling steps.</summary>
    public static AttentionExplanation Explain(TextToImage model, GenerationRequest request,
        CancellationToken cancel = default)
    {
        if (Refuse(model) is { } why) throw new ArgumentException(why);
        ArgumentNullException.ThrowIfNull(request);
        if (model.Pipeline is Dalle.DallePipeline dalle) return ExplainDalle(model, dalle, request);
        var p = (DiffusionPipeline)model.Pipeline;
        var (prompt, s) = model.Resolve(request with { Count = 1, Candidates = 0 });
        int context = p.TextContext, size = p.Config.ImageSize;
        var spans = p.Tokenizer.WordSpans(prompt);
        var sums = new Dictionary<int, double[]>();   // r -> (T, S), summed over heads, blocks and steps
        void OnMaps(IReadOnlyList<Tensor> maps)
        {
            cancel.ThrowIfCancellationRequested();
            foreach (var m in maps)   // (rows, H, T, S)
            {
                int heads = m.Shape[1], t = m.Shape[2], sl = m.Shape[3], r = (int)Math.Round(Math.Sqrt(t));
                var a = (m.IsContiguous ? m : Ops.Contiguous(m)).Span[..(heads * t * sl)];   // row 0: the prompt
                if (!sums.TryGetValue(r, out var acc)) sums[r] = acc = new double[t * sl];
                for (int hd = 0; hd < heads; hd++)
                    for (int i = 0; i < t * sl; i++) acc[i] += a[hd * t * sl + i];
            }
        }
        var guided = p.Guided([prompt], s, OnMaps);
        var x = Sampler.ByName(s.Sampler, s.Eta).Sample(p.Schedule, p.Config.Prediction, guided,
            p.StartNoise(1, s.Seed), s.Steps, DiffusionPipeline.SamplerRng(s.Seed), clip: true);   // (3 H W)
        var image = Image.FromTensor(Tensor.FromArray(x, 3, size, size));

        // the positions of each word's tokens in the model's input: bos at 0, the caption from 1, eos after it
        var positions = spans.Select(w => Enumerable.Range(1 + w.Start, w.Count).Where(i => i < context - 1).ToArray())
            .ToList();
        var keep = positions.Select((ps, i) => (ps, i)).Where(z => z.ps.Length > 0).Select(z => z.i).ToList();
        double words = 0, all = 0;
        var levels = sums.OrderByDescending(kv => kv.Key)
            .Select(kv => PerWord(kv.Key, kv.Value, context, positions, keep, ref words, ref all)).ToList();
        return new AttentionExplanation(prompt, s, image, keep.Select(k => spans[k].Word).ToList(), levels,
            all > 0 ? words / all : 0);
    }

    /// <summary>One resolution's per-word maps from attention sums acc [r*r, S] (row u: what pixel u gave each text
    /// position): word w's share of the words' attention at each pixel; adds to the words' and all positions'
    /// totals.</summary>
    private static WordMaps PerWord(int r, double[] acc, int context, List<int[]> positions, List<int> keep,
        ref double words, ref double all)
    {
        int t = r * r;
        var maps = keep.Select(_ => new float[t]).ToArray();
        for (int u = 0; u < t; u++)
        {
            double total = 0;
            var per = new double[keep.Count];
            for (int k = 0; k < keep.Count; k++)
            {
                foreach (int sIdx in positions[keep[k]]) per[k] += acc[u * context + sIdx];
                total += per[k];
            }
            for (int sIdx = 0; sIdx < context; sIdx++) all += acc[u * context + sIdx];
            words += total;
            for (int k = 0; k < keep.Count; k++) maps[k][u] = (float)(per[k] / Math.Max(total, 1e-30));
        }
        return new WordMaps(r, maps);
    }

    /// <summary>DALL-E: the image is drawn as 'generate' draws it (KV cache, guidance); then one full-sequence forward
    /// of [caption; its image codes] keeps every block's causal self-attention. Image token j is predicted at position
    /// L - 1 + j (L text positions), so that query's attention to the caption positions, summed over heads and
    /// blocks, is what token j read; per word and normalised over the words at each token as for the UNet, on the
    /// G x G token grid.</summary>
    private static AttentionExplanation ExplainDalle(TextToImage model, Dalle.DallePipeline p,
        GenerationRequest request)
    {
        var (prompt, s) = model.Resolve(request with { Count = 1, Candidates = 0 });
        var (img, codes) = p.SampleCodes([prompt], s);
        var image = Image.FromTensor(Ops.Reshape(img, 3, p.ImageSize, p.ImageSize));
        var cfg = p.Setup.Transformer;
        int context = cfg.TextLen, n = cfg.SeqLen, g = cfg.Grid;
        var attention = new List<Tensor>();
        using (Autograd.NoGrad())
            p.Transformer.Forward(p.Sequences(p.Tokenize([prompt]), codes), attention: attention);
        var acc = new double[g * g * context];   // (G*G image tokens, L text positions)
        foreach (var a in attention)             // (1, H, T, T)
        {
            var v = (a.IsContiguous ? a : Ops.Contiguous(a)).Span;
            int heads = a.Shape[1];
            for (int hd = 0; hd < heads; hd++)
                for (int j = 0; j < g * g; j++)
                {
                    int row = (hd * n + context - 1 + j) * n;
                    for (int sIdx = 0; sIdx < context; sIdx++) acc[j * context + sIdx] += v[row + sIdx];
                }
        }
        var spans = p.Tokenizer.WordSpans(prompt);
        var positions = spans.Select(w => Enumerable.Range(1 + w.Start, w.Count).Where(i => i < context - 1).ToArray())
            .ToList();
        var keep = positions.Select((ps, i) => (ps, i)).Where(z => z.ps.Length > 0).Select(z => z.i).ToList();
        double words = 0, all = 0;
        var level = PerWord(g, acc, context, positions, keep, ref words, ref all);
        return new AttentionExplanation(prompt, s, image, keep.Select(k => spans[k].Word).ToList(), [level],
            all > 0 ? words / all : 0);
    }
}
