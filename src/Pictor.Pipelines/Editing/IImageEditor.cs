using Pictor.Engine;
using Pictor.Imaging.Png;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Editing;

// Dimension legend: B images, C = 3, H = W = image size.

/// <summary>What a family gives the editing entry (<see cref="ImageEditing"/>): which operations it runs, and running
/// one from checked settings. Kept apart from <see cref="ITextToImage"/> so a family without edits needs
/// nothing.</summary>
public interface IImageEditor
{
    /// <summary>Why <paramref name="model"/> cannot run <paramref name="op"/>, as one line naming the fix; null when
    /// it can.</summary>
    string? Refuse(EditOperation op, ITextToImage model);

    /// <summary>Token rows of the model's image grid (completion's K runs 1 to this); 0 for pixel models.</summary>
    int TokenRows(ITextToImage model);

    /// <summary>Images [B, 3, H, W] in [-1, 1], row i for prompts[i] from seed s.Seed + i, the edit applied to
    /// e.Source. Settings and edit assumed checked; onStep hears of every model call.</summary>
    Tensor Edit(ITextToImage model, IReadOnlyList<string> prompts, SamplingSettings s, EditInput e, SampleStep? onStep);
}

/// <summary>The editor for each family.</summary>
public static class ImageEditors
{
    public static IImageEditor For(ITextToImage model) => model switch
    {
        DiffusionPipeline => new DiffusionEditor(),
        DallePipeline => new DalleEditor(),
        _ => throw new ArgumentException($"a {model.Family} model has no editing; use a diffusion or DALL-E model"),
    };
}
