using Pictor.Engine;
using Pictor.Imaging.Png;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Editing;

// Dimension legend: B images, S text tokens, Dc context width, C = 3, H = W = image size, N = B * C * H * W.

/// <summary>
/// Image-to-image (<see cref="SdEdit"/>) and inpainting (<see cref="RePaint"/>) for a pixel-space diffusion model,
/// through every sampler and classifier-free guidance. Row i draws its noise from Rng(seed + i) and the sampler's
/// from Rng(seed ^ 0x9E3779B97F4A7C15), as <see cref="DiffusionPipeline.Sample"/> does, so strength 1, and a mask
/// that repaints everything with no resampling, are exactly the generation of the same seed.
/// </summary>
public sealed class DiffusionEditor : IImageEditor
{
    /// <inheritdoc/>
    public string? Refuse(EditOperation op, ITextToImage model) => op == EditOperation.Complete
        ? "completion keeps token rows, which only a DALL-E model has; for a diffusion model use inpaint with a mask "
          + "over the rows to redraw (pictor inpaint), or pass --model models/emoji-dalle"
        : null;

    public int TokenRows(ITextToImage model) => 0;

    /// <inheritdoc/>
    public Tensor Edit(ITextToImage model, IReadOnlyList<string> prompts, SamplingSettings o, EditInput e,
        SampleStep? onStep)
    {
        var p = (DiffusionPipeline)model;
        int b = prompts.Count, size = p.Config.ImageSize, per = 3 * size * size;
        var guided = Guided(p, prompts, o);
        var xT = new float[b * per];   // (B, 3, H, W): the noise a generation of these seeds starts from
        for (int i = 0; i < b; i++) new Rng(o.Seed + (ulong)i).FillNormal(xT.AsSpan(i * per, per));
        var x0 = new float[b * per];   // (B, 3, H, W): the source in every row
        for (int i = 0; i < b; i++) e.Source.CopyTo(x0, i * per);
        var sampler = Sampler.ByName(o.Sampler, o.Eta);
        var rng = new Rng(o.Seed ^ 0x9E3779B97F4A7C15UL);
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

    /// <summary>The UNet with classifier-free guidance as the samplers see it (Ho and Salimans 2022, eq. 6):
    /// out = out_uncond + s (out_cond - out_uncond), both halves as one batch of 2B.</summary>
    /// <remarks>Copied from <see cref="DiffusionPipeline.Sample"/> (its model delegate); keep the two in step, or
    /// strength 1 stops being exactly a generation (the tests say so).</remarks>
    private static Denoise Guided(DiffusionPipeline p, IReadOnlyList<string> prompts, SamplingSettings o)
    {
        int b = prompts.Count, size = p.Config.ImageSize, per = 3 * size * size;
        bool cfg = o.Guidance != 1f;
        p.Train(false);
        var captions = prompts.ToList();
        if (cfg) captions.AddRange(Enumerable.Repeat(o.NegativePrompt ?? "", b));
        (Tensor tokens, Tensor? pooled) = WithoutGrad(() => p.EncodeText(p.Tokenize(captions)));   // (rows, S, Dc)
        int rows = cfg ? 2 * b : b;
        return (x, t) =>
        {
            using var noGrad = Autograd.NoGrad();
            using var scope = TensorScope.Begin();
            var xin = Tensor.Empty(rows, 3, size, size);
            x.CopyTo(xin.Span); if (cfg) x.CopyTo(xin.Span[(b * per)..]);
            var ts = new float[rows]; Array.Fill(ts, t);
            var outp = p.Unet.Forward(xin, ts, tokens, pooled).Span;   // (rows, 3, H, W)
            var r = outp[..(b * per)].ToArray();
            if (cfg)
            {
                var u = outp[(b * per)..];
                for (int i = 0; i < r.Length; i++) r[i] = u[i] + o.Guidance * (r[i] - u[i]);
            }
            return r;
        };
    }

    private static T WithoutGrad<T>(Func<T> f)
    {
        using var noGrad = Autograd.NoGrad();
        return f();
    }
}
