using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Png;
using Pictor.Models.Diffusion.Samplers;

namespace Pictor.Pipelines.Unclip;

// Dimension legend: N images made, E CLIP embedding width, C = 3, H = W = image size.

/// <summary>
/// unCLIP's image operations for a loaded unCLIP model, beside <see cref="TextToImage.Generate"/> (Ramesh et al.
/// 2022, section 3): variations (CLIP-encode an image, decode new images from its embedding, image i from seed Seed +
/// i) and interpolation (decode the slerp between two images' embeddings, one frame per fraction, every frame from the
/// same seed). The results carry metadata (<see cref="EditParameters"/>, operation vary or interpolate, with the
/// sources' pixel hashes) that `pictor verify --source A.png [--source2 B.png]` regenerates. A source of another size
/// is resized to the CLIP's (recorded as resized).
/// <code>
/// var model = TextToImage.Load("models/emoji-unclip");
/// var r = model.Vary(Image.Load("a.png"), new GenerationRequest("") { Count = 4, Seed = 1 });
/// r.SaveGrid("v.png");
/// </code>
/// </summary>
public static class Variations
{
    /// <summary>The most frames an interpolation may have.</summary>
    public const int MaxFrames = 64;

    /// <summary>Variations of <paramref name="source"/>: request.Count images (its prompt is unused), image i from seed
    /// Seed + i, with the request's sampler, steps and guidance.</summary>
    public static GenerationResult Vary(this TextToImage model, Image source, GenerationRequest request,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancel = default)
    {
        var (pipe, s) = Check(model, request, "vary");
        var (src, resized) = Fit(source, pipe.ImageSize);
        var e = pipe.ImageEmbeddings(src.ToTensor().Reshape1());                  // (1, E)
        var rows = new float[request.Count * e.Length];
        for (int i = 0; i < request.Count; i++) e.CopyTo(rows, i * e.Length);
        var edit = new EditParameters(EditOperation.Vary, EditParameters.PixelHash(src), Resized: resized);
        return Result(model, pipe, rows, s, request, edit, sameSeed: false, progress, cancel);
    }

    /// <summary>An interpolation from <paramref name="a"/> to <paramref name="b"/>: frame i decodes
    /// slerp(e_a, e_b, i / (frames - 1)), every frame from seed Seed (request.Count must be 1).</summary>
    public static GenerationResult Interpolate(this TextToImage model, Image a, Image b, int frames,
        GenerationRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancel = default)
    {
        var (pipe, s) = Check(model, request, "interpolate");
        if (frames is < 2 or > MaxFrames)
            throw new ArgumentException($"frames must be between 2 and {MaxFrames}, got {frames}");
        if (request.Count != 1)
            throw new ArgumentException("an interpolation makes one image per frame from one seed; leave the count "
                + "(-n) at 1 and set --frames");
        var (fa, ra) = Fit(a, pipe.ImageSize); var (fb, rb) = Fit(b, pipe.ImageSize);
        var ea = pipe.ImageEmbeddings(fa.ToTensor().Reshape1());
        var eb = pipe.ImageEmbeddings(fb.ToTensor().Reshape1());
        int width = ea.Length;
        var rows = new float[frames * width];
        for (int i = 0; i < frames; i++)
            UnclipPipeline.Slerp(ea, eb, i / (double)(frames - 1)).CopyTo(rows, i * width);
        var edit = new EditParameters(EditOperation.Interpolate, EditParameters.PixelHash(fa), Resized: ra || rb,
            Source2Sha256: EditParameters.PixelHash(fb), Frames: frames);
        return Result(model, pipe, rows, s, request with { Count = frames }, edit, sameSeed: true, progress, cancel);
    }

    /// <summary>Regenerates a variation or interpolation from its metadata and its sources, after checking their
    /// pixel hashes against the metadata.</summary>
    public static Image RegenerateVariation(this TextToImage model, GenerationParameters g, Image source,
        Image? source2)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(source);
        var edit = g.Edit ?? throw new ArgumentException("the image's metadata records a plain generation");
        if (g.ModelHash != model.WeightsHash)
            throw new ArgumentException($"the image was made by weights with hash {g.ModelHash}, but {model.Name} has "
                + $"{model.WeightsHash}; pass the model that made it");
        if (g.BatchIndex < -1 || g.BatchIndex >= g.BatchSize)
            throw new FormatException($"metadata batch_index {g.BatchIndex} is outside the batch of {g.BatchSize}");
        int size = model.ImageSize;
        void Same(Image img, string? want, string what, string option)
        {
            var (fit, _) = Fit(img, size);
            if (EditParameters.PixelHash(fit) != want)
                throw new ArgumentException($"the {what}'s pixels do not hash to the {want?[..12]}... the image was "
                    + $"made from; pass the {what} it was made from ({option})");
        }
        Same(source, edit.SourceSha256, "source", "--source");
        var request = new GenerationRequest("")
        {
            Sampler = g.Sampler, Steps = g.Steps, Guidance = g.CfgScale, Seed = g.BaseSeed, Eta = g.Eta,
            Count = edit.Operation == EditOperation.Vary ? g.BatchSize : 1,
        };
        GenerationResult r;
        if (edit.Operation == EditOperation.Interpolate)
        {
            if (source2 == null)
                throw new ArgumentException("the image is an interpolation: pass its second image with --source2");
            Same(source2, edit.Source2Sha256, "second image", "--source2");
            r = model.Interpolate(source, source2, edit.Frames, request);
        }
        else if (edit.Operation == EditOperation.Vary) r = model.Vary(source, request);
        else throw new ArgumentException($"the image is an edit ({EditParameters.Name(edit.Operation)}), not a "
            + "variation or interpolation");
        return g.BatchIndex != -1 ? r.Images[g.BatchIndex].Image
            : edit.Operation == EditOperation.Interpolate ? Strip(r) : r.Grid();
    }

    /// <summary>An interpolation's frames in one row (what `pictor interpolate --out` writes, with the whole batch's
    /// metadata).</summary>
    public static Image Strip(GenerationResult r) => Image.Grid(r.Images.Select(i => i.Image).ToList(), r.Images.Count);

    private static (UnclipPipeline Pipe, SamplingSettings Settings) Check(TextToImage model, GenerationRequest request,
        string verb)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(request);
        if (model.Pipeline is not UnclipPipeline pipe)
            throw new ArgumentException($"'{verb}' needs an unCLIP model, which decodes CLIP image embeddings; "
                + $"{model.Name} is a {model.Family} model and has no image-embedding decoder (train one with "
                + "'pictor train decoder', or use models/emoji-unclip)"
                + (model.Family == "diffusion" ? "; 'pictor edit --strength' is its image-to-image" : ""));
        if (!pipe.HasDecoder)
            throw new ArgumentException($"{model.Name} has no decoder (decoder.safetensors); '{verb}' decodes image "
                + "embeddings: use a model from 'pictor train decoder' or one made with 'train prior --decoder'");
        if (request.Candidates > 0)
            throw new ArgumentException($"'{verb}' does not rerank (CLIP would score against a prompt there is none "
                + "of); leave candidates out");
        var (_, s) = SamplingSettings.Resolve(request with { Prompt = "" }, pipe);
        return (pipe, s);
    }

    private static (Image Image, bool Resized) Fit(Image img, int size)
    {
        ArgumentNullException.ThrowIfNull(img);
        return img.Width == size && img.Height == size ? (img, false) : (img.Resize(size, size), true);
    }

    private static Tensor Reshape1(this Tensor chw) => Ops.Reshape(chw, 1, chw.Shape[0], chw.Shape[1], chw.Shape[2]);

    private static GenerationResult Result(TextToImage model, UnclipPipeline pipe, float[] rows, SamplingSettings s,
        GenerationRequest request, EditParameters edit, bool sameSeed, IProgress<GenerationProgress>? progress,
        CancellationToken cancel)
    {
        int n = request.Count, size = pipe.ImageSize;
        cancel.ThrowIfCancellationRequested();
        var onStep = TextToImage.StepReporter(request.PreviewEvery, size, progress, cancel);
        var x = pipe.Decode(rows, s, onStep, sameSeed);                             // (N, 3, H, W)
        GenerationParameters Meta(int i) => model.Parameters("", s, n, i) with
        {
            Edit = edit, Seed = sameSeed ? s.Seed : s.Seed + (ulong)Math.Max(0, i),
        };
        var images = Enumerable.Range(0, n).Select(i => new GeneratedImage(
            Image.FromTensor(Ops.Reshape(Ops.Narrow(x, 0, i, 1), 3, size, size)), Meta(i), i)).ToList();
        return new GenerationResult("", s, images, n, Meta(-1));
    }
}
