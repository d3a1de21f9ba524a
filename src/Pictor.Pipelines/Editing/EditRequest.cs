using Pictor.Imaging;
using Pictor.Imaging.Png;

namespace Pictor.Pipelines.Editing;

// Dimension legend: H = W = the model's image size.

/// <summary>
/// An edit of <paramref name="Source"/>: the prompt and sampling settings as for a generation
/// (<paramref name="Generation"/>: seed, count, sampler, steps, guidance, candidates), plus the operation's own
/// setting. <see cref="EditInput.Resolve"/> checks it once, against the model.
/// </summary>
/// <param name="Operation">ImageToImage (diffusion: SDEdit), Inpaint (diffusion: RePaint) or Complete (DALL-E).</param>
public sealed record EditRequest(EditOperation Operation, GenerationRequest Generation, Image Source)
{
    /// <summary>Inpainting, the model's size: opaque greyscale, white (&gt;= 128) repaints and black keeps; or, when
    /// any pixel is transparent, OpenAI's convention: fully transparent (alpha 0) repaints, the rest keeps.</summary>
    public Image? Mask { get; init; }
    /// <summary>Image-to-image: how far toward noise the source goes, in (0, 1]; 1 = a plain generation.</summary>
    public float Strength { get; init; } = 0.6f;
    /// <summary>Inpainting: RePaint's resampling jumps per step (0 = none; each costs one more model call a
    /// step).</summary>
    public int Resample { get; init; } = DefaultResample;
    /// <summary>Completion: the source's token rows kept, 1 to the grid side.</summary>
    public int Rows { get; init; }
    /// <summary>Resize a source (and mask) of another size to the model's instead of refusing it.</summary>
    public bool Resize { get; init; }

    public const int DefaultResample = 2, MaxResample = 50;
    /// <summary>Image-to-image's default strength where a caller names none (the server's edits without a mask and a
    /// diffusion model's variations): the source's layout survives, its details are redrawn.</summary>
    public const float DefaultStrength = 0.6f;

    public static EditRequest ImageToImage(GenerationRequest g, Image source, float strength) =>
        new(EditOperation.ImageToImage, g, source) { Strength = strength };
    public static EditRequest Inpaint(GenerationRequest g, Image source, Image mask, int resample = DefaultResample) =>
        new(EditOperation.Inpaint, g, source) { Mask = mask, Resample = resample };
    public static EditRequest Complete(GenerationRequest g, Image source, int rows) =>
        new(EditOperation.Complete, g, source) { Rows = rows };
}

/// <summary>An edit with every value checked: what a family's <see cref="IImageEditor"/> runs.</summary>
/// <param name="Source">The source as the model reads it: [3, H, W] in [-1, 1].</param>
/// <param name="Repaint">Inpainting: [H * W], true where the mask repaints.</param>
/// <param name="Image">The source image as used (after any resize), for compositing.</param>
public sealed record EditInput(EditOperation Operation, float[] Source, bool[]? Repaint, float Strength, int Resample,
    int Rows, Image Image, EditParameters Metadata)
{
    /// <summary>Grey values from 64 to 191 that a mask may hold before it is refused as soft (a feathered
    /// edge).</summary>
    public const double SoftLimit = 0.01;

    /// <summary>Checks the edit part of <paramref name="r"/> against <paramref name="model"/> (the generation part is
    /// <see cref="SamplingSettings.Resolve"/>'s): sizes, the mask, the operation's setting. Each error is one line
    /// naming what was found, what is allowed and how to fix it.</summary>
    public static EditInput Resolve(EditRequest r, ITextToImage model)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(r.Source, "source");
        var editor = ImageEditors.For(model);
        if (editor.Refuse(r.Operation, model) is { } why) throw new ArgumentException(why);
        int size = model.ImageSize;
        var src = Fit(r.Source, size, r.Resize, "source image", area: true);
        bool[]? repaint = null;
        string? maskHash = null;
        switch (r.Operation)
        {
            case EditOperation.ImageToImage:
                Check(r.Strength is > 0 and <= 1 && float.IsFinite(r.Strength),
                    "strength must be in (0, 1] (how far toward noise the source goes; 1 = plain generation), "
                    + $"got {r.Strength}");
                break;
            case EditOperation.Inpaint:
                Check(r.Mask != null, "inpainting needs a mask: white repaints, black keeps (--mask MASK.png)");
                Check(r.Resample is >= 0 and <= EditRequest.MaxResample,
                    $"resample must be between 0 (none) and {EditRequest.MaxResample}, got {r.Resample}");
                var mask = Fit(r.Mask!, size, r.Resize, "mask", area: false);
                repaint = Binary(mask);
                maskHash = EditParameters.PixelHash(mask);
                break;
            default:
                int rows = editor.TokenRows(model);
                Check(r.Rows >= 1 && r.Rows <= rows,
                    $"rows must be between 1 and {rows} (the model's token grid is {rows}x{rows}), got {r.Rows}");
                break;
        }
        var meta = new EditParameters(r.Operation, EditParameters.PixelHash(src), maskHash,
            r.Operation == EditOperation.ImageToImage ? r.Strength : 1f,
            r.Operation == EditOperation.Inpaint ? r.Resample : 0, r.Operation == EditOperation.Complete ? r.Rows : 0,
            r.Resize && (r.Source.Width != size || r.Source.Height != size
                || (r.Mask != null && (r.Mask.Width != size || r.Mask.Height != size))));
        var flat = src.ToTensor().ToArray();   // (3, H, W)
        return new EditInput(r.Operation, flat, repaint, meta.Strength, meta.Resample, meta.Rows, src, meta);
    }

    /// <summary>The image at the model's size: as it is, resized when asked (area or bilinear for a source, nearest for
    /// a mask so it stays 0/1), else the one-line error.</summary>
    private static Image Fit(Image img, int size, bool resize, string what, bool area)
    {
        if (img.Width == size && img.Height == size) return img;
        Check(resize, $"the {what} is {img.Width}x{img.Height} but the model makes {size}x{size}; resize it, or pass "
            + "--resize (EditRequest.Resize = true) to scale it to fit");
        return area ? img.Resize(size, size) : img.ResizeNearest(size, size);
    }

    /// <summary>A mask image to [H * W] repaint flags: opaque greyscale thresholded at 128, or, when any pixel is
    /// transparent, its alpha (OpenAI's images/edits: alpha 0 repaints, colours ignored); either way not
    /// soft.</summary>
    internal static bool[] Binary(Image mask)
    {
        int n = mask.Width * mask.Height, soft = 0;
        var m = new bool[n];
        bool byAlpha = false;
        for (int i = 0; i < n && !byAlpha; i++) byAlpha = mask.Rgba[4 * i + 3] != 255;
        for (int i = 0; i < n; i++)
        {
            byte r = mask.Rgba[4 * i], g = mask.Rgba[4 * i + 1], b = mask.Rgba[4 * i + 2], a = mask.Rgba[4 * i + 3];
            if (byAlpha)
            {
                if (a is >= 64 and < 192) soft++;
                m[i] = a == 0;
                continue;
            }
            if (r != g || g != b)
                Throw($"the mask is not one channel: pixel ({i % mask.Width}, {i / mask.Width}) is ({r}, {g}, {b}); "
                    + "a mask is greyscale, white (>= 128) repaints and black keeps; "
                    + "save it as grey or black and white");
            if (r is >= 64 and < 192) soft++;
            m[i] = r >= 128;
        }
        if (byAlpha)
        {
            Check(m.Contains(true), "the mask has transparency but no fully transparent pixel (alpha 0), which is "
                + "what repaints in a mask with an alpha channel; make the region to redraw fully transparent, or "
                + "send an opaque greyscale mask (white repaints)");
            Check(soft <= SoftLimit * n, $"the mask is not binary: {soft} of {n} pixels are half transparent (alpha "
                + "64 to 191); use a hard mask (alpha 0 repaints, 255 keeps)");
        }
        else Check(soft <= SoftLimit * n, $"the mask is not binary: {soft} of {n} pixels are mid-grey (64 to 191), "
            + "where thresholding at 128 would decide the edge; use a hard black-and-white mask (0 keeps, "
            + "255 repaints)");
        return m;
    }

    private static void Check(bool ok, string message)
    {
        if (!ok) Throw(message);
    }

    private static void Throw(string message) => throw new ArgumentException(message);
}
