using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Png;

namespace Pictor.Pipelines.Diffusion;

/// <summary>From generation options to finished PNG images with their metadata, and back (for verify), for a model of
/// any family.</summary>
public static class Txt2Img
{
    /// <summary>Generates o.Count images; each comes with the parameters that reproduce it (its seed, batch and row).</summary>
    public static List<(Image Image, GenerationParameters Parameters)> Run(ITextToImage pipe, GenerateOptions o, string? modelName)
    {
        var x = pipe.Generate(o);   // (B, 3, H, W)
        int s = pipe.ImageSize;
        return Enumerable.Range(0, o.Count).Select(i =>
            (Image.FromTensor(Ops.Reshape(Ops.Narrow(x, 0, i, 1), 3, s, s)), Parameters(pipe, o, modelName, i))).ToList();
    }

    public static GenerationParameters Parameters(ITextToImage pipe, GenerateOptions o, string? modelName, int index) =>
        new(o.Prompt, o.NegativePrompt, o.Steps, o.Sampler, o.CfgScale, o.Seed + (ulong)Math.Max(0, index), pipe.ImageSize, pipe.ImageSize,
            pipe.WeightsHash, modelName, o.Eta, o.Count, index, o.Seed, o.Temperature, o.TopK, o.TopP);

    /// <summary>A near-square grid of the images (columns = ceil(sqrt(n))).</summary>
    public static Image Grid(IReadOnlyList<Image> images) => Image.Grid(images, (int)Math.Ceiling(Math.Sqrt(images.Count)));

    /// <summary>The options that made an image, from its metadata.</summary>
    public static GenerateOptions OptionsOf(GenerationParameters g) =>
        new(g.Prompt, g.NegativePrompt, g.Sampler, g.Steps, g.CfgScale, g.BaseSeed, g.BatchSize, g.Eta, g.Temperature, g.TopK, g.TopP);

    /// <summary>Regenerates an image from its parameters: the single image, or the grid when BatchIndex is -1.</summary>
    public static Image Regenerate(ITextToImage pipe, GenerationParameters g)
    {
        if (g.Width != pipe.ImageSize || g.Height != pipe.ImageSize)
            throw new ArgumentException($"the image is {g.Width}x{g.Height} but the model makes {pipe.ImageSize}x{pipe.ImageSize}; it came from another model");
        var all = Run(pipe, OptionsOf(g), g.Model);
        if (g.BatchIndex == -1) return Grid(all.Select(a => a.Image).ToList());
        if (g.BatchIndex < 0 || g.BatchIndex >= all.Count) throw new FormatException($"metadata batch_index {g.BatchIndex} is outside the batch of {all.Count}");
        return all[g.BatchIndex].Image;
    }
}
