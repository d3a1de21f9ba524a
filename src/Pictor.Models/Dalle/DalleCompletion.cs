using Pictor.Engine;
using Pictor.Models.Transformer;

namespace Pictor.Models.Dalle;

// Dimension legend: B batch, L text tokens, G image grid side, P kept image tokens (K rows of G).

/// <summary>
/// DALL-E image completion (Ramesh et al. 2021, section 1 and figure 2's "completions"): the image tokens of a source
/// are a prefix the transformer continues. The caption and the kept tokens fill the KV cache in one forward, then the
/// remaining G*G - P positions are drawn one at a time in raster order, guided and drawn as
/// <see cref="DalleSampler.Generate"/> draws them (the same loop, <see cref="DalleSampler"/>.Continue).
/// </summary>
public static class DalleCompletion
{
    /// <summary>text [B, L] captions (and uncond [B, L] when guided), prefix [B, P] kept image codes -> codes [B, G*G]
    /// whose first P are the prefix. P = G*G draws nothing and returns the prefix. The draw is
    /// <see cref="DalleSampler.Generate"/>'s loop, started at P.</summary>
    public static int[] Complete(DalleTransformer model, IntTensor text, IntTensor? uncond, IntTensor prefix,
        DalleSamplingOptions o, IReadOnlyList<Rng> rngs, Action<int, int>? onToken = null)
    {
        int b = text.Shape[0], n = model.Config.ImageLen;
        int p = prefix.Shape.Length == 2 && prefix.Shape[0] == b ? prefix.Shape[1] : -1;
        if (p < 0 || p > n)
            Throw.Argument(
                $"the kept image codes must be [{b}, P] with P at most {n}, got {Shape.Format(prefix.Shape)}");
        return DalleSampler.Continue(model, text, uncond, prefix, o, rngs, useCache: true, onToken);
    }
}
