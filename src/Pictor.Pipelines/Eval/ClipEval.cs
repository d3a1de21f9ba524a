using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Pictor.Engine;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Eval;

/// <summary>CLIP-based scores of a text-to-image model on val prompts (the same for every model family).</summary>
/// <param name="ClipScore">100 x mean cosine similarity of each generated image with its prompt.</param>
/// <param name="RealClipScore">The same for the real val images: the ceiling this CLIP gives the data.</param>
/// <param name="RPrecision">Fraction of generated images whose own prompt ranks first among it plus R - 1 other val
/// captions (R = <see cref="Candidates"/>).</param>
/// <param name="RealRPrecision">The same for the real val images.</param>
/// <param name="Fd">Fréchet distance between CLIP image features of the generated and the real val images.</param>
/// <param name="Rerank">Candidates drawn per prompt, the best by this CLIP kept (1 = no reranking). Reranking with the
/// CLIP that also scores favours the reranked model on CLIP score and R-precision: compare like with like.</param>
/// <param name="SecondsPerImage">Wall time per kept image: all candidates' sampling and decoding, plus their
/// scoring.</param>
public sealed record ClipEvalReport(int Images, int Candidates, double ClipScore, double RealClipScore,
    double RPrecision, double RealRPrecision,
    double Fd, double SecondsPerImage, int Rerank = 1)
{
    public string ToJson(string modelHash, SamplingSettings o)
        => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["model_hash"] = modelHash, ["sampler"] = o.Sampler, ["steps"] = o.Steps, ["cfg_scale"] = o.Guidance,
            ["temperature"] = o.Temperature,
        ["top_k"] = o.TopK, ["top_p"] = o.TopP, ["rerank"] = Rerank, ["images"] = Images,
            ["r_precision_candidates"] = Candidates,
        ["clip_score"] = ClipScore, ["real_clip_score"] = RealClipScore, ["r_precision"] = RPrecision,
            ["real_r_precision"] = RealRPrecision,
        ["fd_clip"] = Fd, ["seconds_per_image"] = SecondsPerImage,
    }, new JsonSerializerOptions { WriteIndented = true });
}

/// <summary>
/// 'pictor eval clip': one image per val image's first caption (seed = its index), scored with a CLIP model: CLIP
/// score, CLIP R-precision (Park et al. 2021, "Benchmark for Compositional Text-to-Image Synthesis": the true caption
/// ranked first among R), and the Fréchet distance to the real val images in CLIP image-feature space. With rerank N >
/// 1 each prompt i draws N candidates (seeds iN .. iN + N - 1) and keeps the one this CLIP scores highest, as DALL-E
/// does.
/// </summary>
public static class ClipEval
{
    public static ClipEvalReport Run(ITextToImage model, ClipPipeline clip, ImageCaptionSet val, SamplingSettings o,
        int images = 100, int candidates = 100,
        int batch = 32, Action<int, int>? progress = null, int rerank = 1, Action<float[]>? onImages = null)
    {
        if (rerank < 1)
            throw new ArgumentException($"--rerank must be at least 1 (candidates per prompt), got {rerank}");
        if (model.ImageSize != clip.ImageSize)
            throw new ArgumentException($"the model makes {model.ImageSize}x{model.ImageSize} images but the CLIP "
                + $"model scores {clip.ImageSize}x{clip.ImageSize}; use a CLIP trained at the model's size");
        if (val.Size != model.ImageSize)
            throw new ArgumentException($"val images are loaded at {val.Size}, the model makes {model.ImageSize}");
        int n = Math.Min(images, val.Count), size = model.ImageSize, per = 3 * size * size, e = clip.Config.EmbedDim;
        if (n < 2) throw new ArgumentException("eval clip needs at least 2 val images");
        var prompts = Enumerable.Range(0, n).Select(i => val.Captions[i][0]).ToList();
        var pool = Enumerable.Range(0, val.Count).Select(i => val.Captions[i][0]).Distinct().ToList();
        int r = Math.Min(candidates, pool.Count);
        if (r < 2)
            throw new ArgumentException($"R-precision needs at least 2 distinct val captions, found {pool.Count}");

        var gen = new float[n * per];
        var clock = Stopwatch.StartNew();
        if (rerank == 1)
            for (int s = 0; s < n; s += batch)
            {
                int m = Math.Min(batch, n - s);
                model.Sample(prompts.GetRange(s, m), o with { Seed = (ulong)s }).Span.CopyTo(gen.AsSpan(s * per,
                    m * per));
                progress?.Invoke(s + m, n);
            }
        else
            for (int i = 0; i < n; i++)
            {
                var cand = new float[rerank * per];
                for (int s = 0; s < rerank; s += batch)
                {
                    int m = Math.Min(batch, rerank - s);
                    model.Sample(Enumerable.Repeat(prompts[i], m).ToList(), o with { Seed = (ulong)i * (ulong)rerank
                        + (ulong)s }).Span.CopyTo(cand.AsSpan(s * per, m * per));
                }
                Quantize(cand);
                var scores = Clip.Rerank.Scores(clip, Tensor.FromArray(cand, rerank, 3, size, size), prompts[i]);
                cand.AsSpan(Clip.Rerank.Best(scores, 1)[0].Index * per, per).CopyTo(gen.AsSpan(i * per, per));
                progress?.Invoke(i + 1, n);
            }
        double secondsPerImage = clock.Elapsed.TotalSeconds / n;
        Quantize(gen);
        onImages?.Invoke(gen);   // [n, 3, H, W] in [-1, 1], as scored
        var real = new float[n * per];
        for (int i = 0; i < n; i++) val.Read(i, real.AsSpan(i * per, per));

        var G = clip.ImageEmbeddings(Tensor.FromArray(gen, n, 3, size, size));
        var Rl = clip.ImageEmbeddings(Tensor.FromArray(real, n, 3, size, size));
        var T = clip.TextEmbeddings(pool);
        var index = pool.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i);
        var pick = new Rng(12345);
        double scoreG = 0, scoreR = 0; int hitG = 0, hitR = 0;
        for (int i = 0; i < n; i++)
        {
            int truth = index[prompts[i]];
            float tg = ClipPipeline.Cosine(G, i, T, truth, e), tr = ClipPipeline.Cosine(Rl, i, T, truth, e);
            scoreG += tg; scoreR += tr;
            // R - 1 distinct other captions, the same for the generated and the real image.
            var others = new HashSet<int>();
            while (others.Count < r - 1) { int j = pick.NextInt(pool.Count); if (j != truth) others.Add(j); }
            if (others.All(j => ClipPipeline.Cosine(G, i, T, j, e) < tg)) hitG++;
            if (others.All(j => ClipPipeline.Cosine(Rl, i, T, j, e) < tr)) hitR++;
        }
        return new ClipEvalReport(n, r, 100 * scoreG / n, 100 * scoreR / n, (double)hitG / n, (double)hitR / n,
            FrechetDistance.Between(G, n, Rl, n, e), secondsPerImage, rerank);
    }

    /// <summary>Rounds images in [-1, 1] to the 8-bit values they would be saved as, so they are scored as the
    /// reranker in 'pictor generate' scores them.</summary>
    private static void Quantize(float[] images)
    {
        for (int i = 0; i < images.Length; i++)
            images[i] = MathF.Round((Math.Clamp(images[i], -1f, 1f) + 1f) * 127.5f) / 127.5f - 1f;
    }

    public static string Table(ClipEvalReport r) => string.Create(CultureInfo.InvariantCulture,
        $"| figure | generated | real val images |\n|---|---|---|\n| CLIP score | {r.ClipScore:F2} | "
            + $"{r.RealClipScore:F2} |\n| CLIP R-precision (R = {r.Candidates}) | {r.RPrecision:F3} | "
            + $"{r.RealRPrecision:F3} |\n| FD to real (CLIP features) | {r.Fd:F4} | 0 |\n| seconds per "
            + $"image{(r.Rerank > 1 ? $" (best of {r.Rerank})" : "")} | {r.SecondsPerImage:F3} | |");
}
