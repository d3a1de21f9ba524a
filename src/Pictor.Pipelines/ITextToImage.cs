using Pictor.Engine;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Text;

namespace Pictor.Pipelines;

// Dimension legend: B images, C = 3, H = W = image size.

/// <summary>What every text-to-image family (diffusion, DALL-E, and those to come) gives <see cref="TextToImage"/>,
/// the evaluations and training's sample grids: its defaults, what it refuses, and sampling from checked
/// settings.</summary>
public interface ITextToImage
{
    /// <summary>"diffusion", "dalle", "vae", "gan" or "unclip".</summary>
    string Family { get; }
    int ImageSize { get; }
    /// <summary>First 10 hex digits of the SHA-256 of the weights (A1111's "Model hash" style).</summary>
    string WeightsHash { get; }
    BpeTokenizer Tokenizer { get; }
    /// <summary>Text tokens per caption, bos and eos included.</summary>
    int TextContext { get; }
    /// <summary>The sampler and step count used when the caller names none.</summary>
    string DefaultSampler { get; }
    int DefaultSteps { get; }
    /// <summary>The classifier-free guidance scale used when the caller names none: 3 unless the model says
    /// otherwise.</summary>
    float DefaultGuidance => 3f;

    /// <summary>Why this model cannot sample with <paramref name="s"/> (an unknown sampler, a step count it cannot
    /// take), as one line naming the fix; null when it can. <see cref="SamplingSettings.Resolve"/> asks it
    /// once.</summary>
    string? Refuse(SamplingSettings s);

    /// <summary>Images [B, 3, H, W] in [-1, 1]; row i draws prompts[i] from seed s.Seed + i. The settings are assumed
    /// checked (<see cref="SamplingSettings.Resolve"/>). <paramref name="onStep"/> hears of every step (and may throw
    /// to stop); its x0 is null for families without a clean-image estimate.</summary>
    Tensor Sample(IReadOnlyList<string> prompts, SamplingSettings s, SampleStep? onStep = null);
}
