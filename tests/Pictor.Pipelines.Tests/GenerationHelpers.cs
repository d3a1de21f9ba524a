using Pictor.Engine;

namespace Pictor.Pipelines.Tests;

/// <summary>Tensors from a request, as <see cref="TextToImage.Generate"/> would sample them: resolved and checked
/// once, then request.Count rows of the prompt.</summary>
internal static class GenerationHelpers
{
    public static Tensor Generate(this ITextToImage model, GenerationRequest request)
    {
        var (prompt, s) = SamplingSettings.Resolve(request, model);
        return model.Sample(Enumerable.Repeat(prompt, request.Count).ToList(), s);
    }

    public static Tensor Generate(this TextToImage model, GenerationRequest request) => model.Pipeline.Generate(request);
}
