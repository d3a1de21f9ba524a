using Pictor.Engine;
using Pictor.Imaging.Png;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Editing;

// Dimension legend: B images, S text tokens, Dc context width, C = 3, H = W = image size, N = B * C * H * W.

/// <summary>
/// Image-to-image (<see cref="SdEdit"/>) and inpainting (<see cref="RePaint"/>) for a pixel-space diffusion model,
/// through every sampler and classifier-free guidance. Row i draws its noise from Rng(seed + i) and the sampler's
/// from <see cref="DiffusionPipeline.SamplerRng"/>, and the model is <see cref="DiffusionPipeline.Guided"/>, as in
/// <see cref="DiffusionPipeline.Sample"/>, so strength 1, and a mask that repaints everything with no resampling, are
/// exactly the generation of the same seed.
/// </summary>
public sealed class DiffusionEditor : IImageEditor
{
    /// <inheritdoc/>
    public string? Refuse(EditOperation op, ITextToImage model) => op switch
    {
        EditOperation.Complete => "completion keeps token rows, which only a DALL-E model has; for a diffusion model "
            + "use inpaint with a mask over the rows to redraw (pictor inpaint), or pass --model models/emoji-dalle",
        EditOperation.Vary or EditOperation.Interpolate => $"{EditParameters.Name(op)} decodes CLIP image "
            + "embeddings, which only an unCLIP model does (pictor vary/interpolate --model models/emoji-unclip)",
        _ => null,
    };

    public int TokenRows(ITextToImage model) => 0;

    /// <inheritdoc/>
    public Tensor Edit(ITextToImage model, IReadOnlyList<string> prompts, SamplingSettings o, EditInput e,
        SampleStep? onStep)
    {
        var p = (DiffusionPipeline)model;
        int b = prompts.Count, size = p.Config.ImageSize, per = 3 * size * size;
        var guided = p.Guided(prompts, o);
        var xT = p.StartNoise(b, o.Seed);   // (B, 3, H, W): the noise a generation of these seeds starts from
        var x0 = new float[b * per];   // (B, 3, H, W): the source in every row
        for (int i = 0; i < b; i++) e.Source.CopyTo(x0, i * per);
        var sampler = Sampler.ByName(o.Sampler, o.Eta);
        var rng = DiffusionPipeline.SamplerRng(o.Seed);
        float[] x;
        if (e.Operation == EditOperation.ImageToImage)
        {
            var ts = SdEdit.Timesteps(p.Schedule, o.Steps, e.Strength);
            var start = SdEdit.Start(p.Schedule, x0, xT, ts[0], pure: e.Strength == 1f);
            x = sampler.Sample(p.Schedule, p.Config.Prediction, guided, start, ts, rng, clip: true, onStep);
        }
        else
        {
            var repaint = new bool[b * per];   // (B, 3, H, W): the [H * W] mask in every channel of every row
            for (int j = 0; j < repaint.Length; j++) repaint[j] = e.Repaint![j % (size * size)];
            var ts = Sampler.Timesteps(p.Schedule, o.Steps);
            x = RePaint.Sample(sampler, p.Schedule, p.Config.Prediction, guided, xT, ts, rng, x0, repaint, e.Resample,
                new Rng(o.Seed ^ 0xD1B54A32D192ED03UL), clip: true, onStep);
        }
        return Tensor.FromArray(x, b, 3, size, size);
    }
}
