using Pictor.Engine;

namespace Pictor.Pipelines.Clip;

/// <summary>
/// CLIP reranking (Ramesh et al. 2021, section 2.5): sample many candidates for a prompt and keep those whose image
/// embedding is most similar to the prompt's text embedding.
/// </summary>
public static class Rerank
{
    /// <summary>Cosine similarity of each image [N, 3, H, W] with the prompt.</summary>
    public static float[] Scores(ClipPipeline clip, Tensor images, string prompt)
    {
        var I = clip.ImageEmbeddings(images); var T = clip.TextEmbeddings([prompt]);
        int n = images.Shape[0], e = clip.Config.EmbedDim;
        return Enumerable.Range(0, n).Select(i => ClipPipeline.Cosine(I, i, T, 0, e)).ToArray();
    }

    /// <summary>The <paramref name="keep"/> best candidates, best first, as (candidate index, score). Ties keep the
    /// lower index first, so the choice is deterministic.</summary>
    public static List<(int Index, float Score)> Best(IReadOnlyList<float> scores, int keep)
    {
        if (keep < 1 || keep > scores.Count)
            throw new ArgumentException($"--keep must be between 1 and --candidates ({scores.Count}), got {keep}");
        return scores.Select((s, i) => (Index: i, Score: s)).OrderByDescending(p => p.Score).ThenBy(p => p.Index)
            .Take(keep).ToList();
    }
}
