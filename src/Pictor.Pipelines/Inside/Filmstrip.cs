using Pictor.Imaging;

namespace Pictor.Pipelines.Inside;

/// <summary>
/// A denoising filmstrip: the model's clean-image estimate x0 of the first image every k steps, left to right, the
/// last frame being the final step's estimate, which is the image a diffusion sampler returns. It listens to the
/// previews <see cref="TextToImage.Generate"/> reports (<see cref="GenerationRequest.PreviewEvery"/>) and passes every
/// report on to <paramref name="inner"/>.
/// <code>
/// var strip = new Filmstrip();
/// var result = model.Generate(request with { PreviewEvery = 4 }, strip);
/// strip.ToImage().Save("strip.png");
/// </code>
/// </summary>
public sealed class Filmstrip(IProgress<GenerationProgress>? inner = null) : IProgress<GenerationProgress>
{
    private readonly List<(int Step, Image Frame)> frames = [];

    /// <summary>The frames so far: the step each was taken after, and the clean-image estimate then.</summary>
    public IReadOnlyList<(int Step, Image Frame)> Frames => frames;

    /// <summary>Why <paramref name="model"/> cannot make a filmstrip (one line naming the fix), or null when it
    /// can.</summary>
    public static string? Refuse(TextToImage model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Family == "diffusion" ? null
            : $"a filmstrip shows a diffusion model's clean-image estimate per step, but '{model.Name}' is a "
                + $"{model.Family} model, which draws tokens in order; use a diffusion model (models/emoji)";
    }

    /// <summary>The preview interval that gives about <paramref name="frames"/> frames over
    /// <paramref name="steps"/> steps (at least 1).</summary>
    public static int Every(int steps, int frames) =>
        Math.Max(1, (int)Math.Ceiling(steps / (double)Math.Max(1, frames)));

    public void Report(GenerationProgress value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Preview != null) frames.Add((value.Step, value.Preview));
        inner?.Report(value);
    }

    /// <summary>The frames in one row, left to right (earliest first), 2 white pixels apart.</summary>
    public Image ToImage() => frames.Count == 0
        ? throw new InvalidOperationException("the filmstrip has no frames: generate with PreviewEvery > 0 and this "
            + "filmstrip as the progress, from a diffusion model")
        : Image.Grid(frames.Select(f => f.Frame).ToList(), frames.Count);
}
