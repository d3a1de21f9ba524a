using Pictor.Engine;
using Pictor.Imaging.Png;
using Pictor.Models.Dalle;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Dalle;

namespace Pictor.Pipelines.Editing;

// Dimension legend: B images, L text tokens, G token grid side, K kept rows, C = 3, H = W = image size.

/// <summary>DALL-E image completion: the source's VQ codes, its first K rows kept, the rest drawn by the transformer
/// (<see cref="DalleCompletion"/>), decoded by the VQ-VAE. Row i draws with Rng(seed + i), as a generation
/// does.</summary>
public sealed class DalleEditor : IImageEditor
{
    /// <inheritdoc/>
    public string? Refuse(EditOperation op, ITextToImage model) => op == EditOperation.Complete ? null
        : "a DALL-E model completes token rows (pictor complete --rows K); "
          + $"{EditParameters.Name(op)} needs a diffusion "
          + "model, e.g. --model models/emoji";

    public int TokenRows(ITextToImage model) => ((DallePipeline)model).Setup.Transformer.Grid;

    /// <summary>The source's code grid [G * G] from the VQ-VAE's encoder.</summary>
    public static int[] SourceCodes(DallePipeline p, float[] source)
    {
        int size = p.ImageSize;
        p.Vq.Net.Train(false);
        return p.Vq.Net.Encode(Tensor.FromArray(source, 1, 3, size, size)).Data;   // (1, G, G)
    }

    /// <summary>Codes [B, G * G]: the source's first K rows, then the drawn rest.</summary>
    public static int[] Codes(DallePipeline p, IReadOnlyList<string> prompts, SamplingSettings o, EditInput e,
        SampleStep? onStep)
    {
        var s = new DalleSamplingOptions(o.Temperature, o.TopK, o.TopP, o.Guidance);
        int b = prompts.Count, g = p.Setup.Transformer.Grid, kept = e.Rows * g;
        var src = SourceCodes(p, e.Source);
        var prefix = new int[b * kept];   // (B, K * G)
        for (int i = 0; i < b; i++) Array.Copy(src, 0, prefix, i * kept, kept);
        var text = p.Tokenize(prompts);
        var uncond = s.CfgScale != 1f ? p.Tokenize(Enumerable.Repeat(o.NegativePrompt ?? "", b).ToList()) : null;
        var rngs = Enumerable.Range(0, b).Select(i => new Rng(o.Seed + (ulong)i)).ToList();
        p.Transformer.Train(false);
        return DalleCompletion.Complete(p.Transformer, text, uncond, new IntTensor(prefix, b, kept), s, rngs,
            onToken: onStep == null ? null : (done, total) => onStep(done, total, null));
    }

    /// <inheritdoc/>
    public Tensor Edit(ITextToImage model, IReadOnlyList<string> prompts, SamplingSettings o, EditInput e,
        SampleStep? onStep)
    {
        var p = (DallePipeline)model;
        int b = prompts.Count, g = p.Setup.Transformer.Grid;
        var codes = Codes(p, prompts, o, e, onStep);
        using var _ = Autograd.NoGrad();
        var img = p.Vq.Net.Decode(new IntTensor(codes, b, g, g));   // (B, 3, H, W)
        var y = img.Span;
        for (int i = 0; i < y.Length; i++) y[i] = Math.Clamp(y[i], -1f, 1f);
        return img;
    }
}
