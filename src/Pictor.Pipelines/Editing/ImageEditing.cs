using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Png;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Clip;

namespace Pictor.Pipelines.Editing;

// Dimension legend: N images drawn, C = 3, H = W = image size.

/// <summary>
/// The library's editing entry, beside <see cref="TextToImage.Generate"/>: image-to-image, inpainting and completion
/// for a loaded model, with results whose metadata (<see cref="EditParameters"/>) lets `pictor verify` regenerate them.
/// <code>
/// var model = TextToImage.Load("models/shapes");
/// var src = Image.Load("scene.png"); var mask = Image.Load("mask.png");
/// var r = model.Edit(EditRequest.Inpaint(new GenerationRequest("a blue circle") { Seed = 3 }, src, mask));
/// r.Images[0].Save("edited.png");
/// </code>
/// </summary>
public static class ImageEditing
{
    /// <summary>Checks an edit against the model without running it: the prompt, settings and the checked
    /// edit.</summary>
    public static (string Prompt, SamplingSettings Settings, EditInput Input) ResolveEdit(this TextToImage model,
        EditRequest request)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(request);
        var input = EditInput.Resolve(request, model.Pipeline);
        var (prompt, s) = model.Resolve(request.Generation);
        return (prompt, s, input);
    }

    /// <summary>
    /// Runs the edit for request.Generation.Count images (or Candidates, keeping the Count best by CLIP score), image i
    /// from seed Seed + i. Inpainting composites the result with the source outside the mask in 8-bit pixels, so the
    /// kept region is the source exactly. Progress and cancellation as in <see cref="TextToImage.Generate"/>.
    /// </summary>
    /// <remarks>The batch and reranking steps are copied from <see cref="TextToImage.Generate"/>.</remarks>
    public static GenerationResult Edit(this TextToImage model, EditRequest request,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancel = default)
    {
        var (prompt, s, e) = model.ResolveEdit(request);
        var g = request.Generation;
        int drawn = g.Candidates > 0 ? g.Candidates : g.Count, size = model.ImageSize;
        cancel.ThrowIfCancellationRequested();
        var onStep = TextToImage.StepReporter(g.PreviewEvery, size, progress, cancel);
        var editor = ImageEditors.For(model.Pipeline);
        var x = editor.Edit(model.Pipeline, Enumerable.Repeat(prompt, drawn).ToList(), s, e, onStep);   // (N, 3, H, W)
        GenerationParameters Meta(int i) => model.Parameters(prompt, s, drawn, i) with { Edit = e.Metadata };
        var all = Enumerable.Range(0, drawn).Select(i =>
        {
            var img = Image.FromTensor(Ops.Reshape(Ops.Narrow(x, 0, i, 1), 3, size, size));
            if (e.Repaint != null) img = Composite(img, e.Image, e.Repaint);
            return new GeneratedImage(img, Meta(i), i);
        }).ToList();
        var kept = all;
        if (g.Candidates > 0)
        {
            var pixels = all.SelectMany(i => i.Image.ToTensor().ToArray()).ToArray();
            var saved = Tensor.FromArray(pixels, drawn, 3, size, size);   // (N, 3, H, W) as saved
            var scores = Rerank.Scores(model.Clip!, saved, prompt);
            kept = Rerank.Best(scores, g.Count).Select(b => all[b.Index] with { ClipScore = b.Score }).ToList();
        }
        return new GenerationResult(prompt, s, kept, drawn, Meta(-1));
    }

    /// <summary>RePaint's last step in 8-bit pixels: <paramref name="drawn"/> where the mask repaints, the source
    /// elsewhere, so the largest change outside the mask is exactly 0.</summary>
    public static Image Composite(Image drawn, Image source, bool[] repaint)
    {
        var o = new Image(drawn.Width, drawn.Height, (byte[])source.Rgba.Clone());
        for (int i = 0; i < repaint.Length; i++)
            if (repaint[i])
                for (int c = 0; c < 4; c++) o.Rgba[4 * i + c] = drawn.Rgba[4 * i + c];
        return o;
    }

    /// <summary>Regenerates an edited image from its metadata and the inputs it names: checks the source's (and
    /// mask's) hash against the metadata first, so a wrong input is said as such, not as different pixels.</summary>
    public static Image RegenerateEdit(this TextToImage model, GenerationParameters g, Image source, Image? mask)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(source);
        var edit = g.Edit ?? throw new ArgumentException("the image's metadata records a plain generation, not an "
            + "edit; verify it without --source and --mask");
        if (g.ModelHash != model.WeightsHash)
            throw new ArgumentException($"the image was made by weights with hash {g.ModelHash}, but {model.Name} has "
                + $"{model.WeightsHash}; pass the model that made it");
        if (g.BatchIndex < -1 || g.BatchIndex >= g.BatchSize)
            throw new FormatException($"metadata batch_index {g.BatchIndex} is outside the batch of {g.BatchSize}");
        if (edit.MaskSha256 != null && mask == null)
            throw new ArgumentException("the image was inpainted: pass the mask it was made with (--mask MASK.png)");
        var request = new EditRequest(edit.Operation, new GenerationRequest(g.Prompt)
        {
            NegativePrompt = g.NegativePrompt, Sampler = g.Sampler, Steps = g.Steps, Guidance = g.CfgScale,
            Seed = g.BaseSeed, Count = g.BatchSize, Eta = g.Eta, Temperature = g.Temperature, TopK = g.TopK,
            TopP = g.TopP,
        }, source)
        {
            Mask = edit.MaskSha256 != null ? mask : null, Strength = edit.Strength, Resample = edit.Resample,
            Rows = edit.Rows, Resize = edit.Resized,
        };
        var (_, _, input) = model.ResolveEdit(request);
        if (input.Metadata.SourceSha256 != edit.SourceSha256)
            throw new ArgumentException($"the source's pixels hash to {input.Metadata.SourceSha256[..12]}... but the "
                + $"image was edited from {edit.SourceSha256[..12]}...; pass the source image it was made from");
        if (input.Metadata.MaskSha256 != edit.MaskSha256)
            throw new ArgumentException($"the mask's pixels hash to {input.Metadata.MaskSha256?[..12]}... but the "
                + "image "
                + $"was inpainted with {edit.MaskSha256?[..12]}...; pass the mask it was made with");
        var result = model.Edit(request);
        return g.BatchIndex == -1 ? result.Grid() : result.Images[g.BatchIndex].Image;
    }
}
