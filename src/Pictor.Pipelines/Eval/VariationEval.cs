using System.Globalization;
using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Editing;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Unclip;

namespace Pictor.Pipelines.Eval;

// Dimension legend: N val images, K variations each, E the judge CLIP's embedding width.

/// <summary>How faithful a model's variations are (`pictor eval variations`): for each of the first N val images,
/// K variations (seeds 0..K-1), and the judge CLIP's image-to-image cosine between the input and each variation,
/// against the cosine between random pairs of val images (image i and image (i + N / 2) mod N) as the floor and a
/// variation that changes nothing (1) as the ceiling.</summary>
/// <param name="Faithfulness">Mean cosine of an input and its variations.</param>
/// <param name="RandomPairs">Mean cosine of two different val images.</param>
/// <param name="Diversity">Mean cosine between two variations of the same input (lower: more varied).</param>
public sealed record VariationEvalResult(int Images, int Variations, string How, double Faithfulness,
    double RandomPairs, double Diversity, double SecondsPerImage)
{
    public string Table() => string.Create(CultureInfo.InvariantCulture,
        $"| variations | input to variation | random val pairs | variation to variation | seconds per image |\n"
        + $"|---|---|---|---|---|\n| {How} | {Faithfulness:F3} | {RandomPairs:F3} | {Diversity:F3} | "
        + $"{SecondsPerImage:F3} |");
}

public static class VariationEval
{
    /// <summary>Runs the evaluation: an unCLIP model varies by its decoder (<see cref="Variations.Vary"/>), a diffusion
    /// model by image-to-image from the empty prompt at <paramref name="strength"/> without guidance (what the server's
    /// /v1/images/variations does for it).</summary>
    public static VariationEvalResult Run(TextToImage model, ClipPipeline judge, ImageCaptionSet val, int images,
        int variations, GenerationRequest settings, float strength = EditRequest.DefaultStrength,
        Action<int, int>? progress = null)
    {
        int n = Math.Min(images, val.Count), size = val.Size, per = 3 * size * size;
        if (n < 2) throw new ArgumentException($"the val set has {val.Count} images; variations need at least 2");
        if (judge.ImageSize != size)
            throw new ArgumentException($"the judge CLIP reads {judge.ImageSize}x{judge.ImageSize} images, the val set "
                + $"is read at {size}x{size}");
        bool unclip = model.Pipeline is UnclipPipeline;
        if (!unclip && model.Family != "diffusion")
            throw new ArgumentException($"a {model.Family} model makes no variations; evaluate an unCLIP or diffusion "
                + "model");
        var x = new float[n * per];
        for (int i = 0; i < n; i++) val.Read(i, x.AsSpan(i * per, per));
        var inputs = judge.ImageEmbeddings(Tensor.FromArray(x, n, 3, size, size));   // (N, E)
        int e = judge.Config.EmbedDim;
        double faithful = 0, diverse = 0, pairs = 0, seconds = 0;
        var request = settings with { Count = variations, Seed = 0 };
        for (int i = 0; i < n; i++)
        {
            var src = Image.FromTensor(Tensor.FromArray(x[(i * per)..((i + 1) * per)], 3, size, size));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var r = unclip ? model.Vary(src, request)
                : model.Edit(EditRequest.ImageToImage(request with { Guidance = settings.Guidance ?? 1f }, src,
                    strength));
            seconds += clock.Elapsed.TotalSeconds;
            var made = judge.ImageEmbeddings(Tensor.FromArray(r.Images.SelectMany(g => g.Image.ToTensor().ToArray())
                .ToArray(), variations, 3, size, size));                                  // (K, E)
            for (int k = 0; k < variations; k++) faithful += ClipPipeline.Cosine(inputs, i, made, k, e);
            for (int k = 0; k < variations; k++)
                for (int j = k + 1; j < variations; j++) diverse += ClipPipeline.Cosine(made, k, made, j, e);
            pairs += ClipPipeline.Cosine(inputs, i, inputs, (i + n / 2) % n, e);
            progress?.Invoke(i + 1, n);
        }
        int vpairs = variations * (variations - 1) / 2;
        return new(n, variations, unclip ? "unCLIP decoder" : $"image-to-image, strength {strength}",
            faithful / (n * variations), pairs / n, vpairs == 0 ? double.NaN : diverse / (n * vpairs),
            seconds / (n * variations));
    }
}
