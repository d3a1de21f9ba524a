using System.Buffers.Binary;
using Microsoft.AspNetCore.Http;
using Pictor.Imaging;
using Pictor.Imaging.Decoding;
using Pictor.Imaging.Png;
using Pictor.Pipelines;
using Pictor.Pipelines.Editing;
using Pictor.Pipelines.Unclip;

namespace Pictor.Server;

/// <summary>
/// The multipart bodies of POST /v1/images/edits and /v1/images/variations as OpenAI defines them (image, mask,
/// prompt, model, n, size, response_format), plus the generation's extension fields (seed, steps, sampler, guidance,
/// negative_prompt, ...) and the edit's own: strength, resample, rows, resize. Read once here into the library's
/// <see cref="EditRequest"/>, every value checked (<see cref="ImageEditing.ResolveEdit"/>), each error naming its
/// field.
/// </summary>
/// <remarks>
/// Which edit runs follows OpenAI's semantics. A diffusion model with a mask inpaints (RePaint) where the mask is fully
/// transparent (an opaque greyscale mask, white repaints, is read as `pictor inpaint` reads it); without a mask, the
/// image's own fully transparent pixels are the region to repaint, and an image with none is image-to-image (SDEdit)
/// at strength 0.6 unless told. A DALL-E model completes an image from its top token rows: rows=K, or a mask (or an
/// image) transparent over exactly the bottom rows. A variation is image-to-image from the empty prompt (the models
/// are trained with caption dropout, so it is their unconditional model) at strength 0.6 for a diffusion model; an
/// unCLIP model makes true variations instead (its decoder from the image's CLIP embedding, <see
/// cref="Variations.Vary"/>).
/// </remarks>
public sealed record EditBody(TextToImage Model, EditRequest Edit, bool Url, double Units)
{
    /// <summary>What the job runs when it is not <see cref="Edit"/> (an unCLIP variation); null: the edit.</summary>
    public JobWork? Run { get; init; }

    /// <summary>Image-to-image's default strength (edits without a mask, and variations): the source's layout
    /// survives, its details are redrawn.</summary>
    public const float DefaultStrength = EditRequest.DefaultStrength;

    private static readonly string[] EditFields = ["image", "image[]", "mask", "strength", "resample", "rows",
        "resize", "input_fidelity"];

    private static readonly string[] EditKnown = [.. GenerationBody.Known, .. EditFields];

    private static readonly string[] VariationKnown = [.. GenerationBody.Known.Where(f => f != "prompt"), "image",
        "strength", "resize"];

    /// <summary>POST /v1/images/edits.</summary>
    public static async Task<EditBody> ReadEdit(HttpRequest http, ModelCatalog models, ServerOptions limits)
    {
        var form = await ReadForm(http, limits);
        var f = new FormFields(form);
        BodyFields.CheckKnown(f, EditKnown);
        var g = GenerationBody.Read(f, models, limits);
        if (g.Model.Pipeline is UnclipPipeline)
            throw ApiError.BadRequest($"model '{g.Model.Name}' (unclip) does not edit: its decoder reads image "
                + "embeddings, not masks or prompts over an image; POST /v1/images/variations for its variations, or "
                + "edit with a diffusion model (" + Diffusion(models) + ")", "model", "unsupported_operation");
        var source = ReadPng(form.Files.GetFile("image") ?? form.Files.GetFile("image[]"), "image", limits)
            ?? throw ApiError.BadRequest("the image is missing; send the PNG to edit as the file field \"image\" "
                + "(curl -F image=@in.png)", "image", "missing_parameter");
        var mask = ReadPng(form.Files.GetFile("mask"), "mask", limits);
        if (mask != null && (mask.Width != source.Width || mask.Height != source.Height))
            throw ApiError.BadRequest($"the mask is {mask.Width}x{mask.Height} but the image is {source.Width}x"
                + $"{source.Height}; send a mask of the image's size", "mask", "invalid_mask");
        var edit = Choose(g.Model, g.Request, source, mask, f) with { Resize = f.Bool("resize") ?? false };
        return Checked(g, edit);
    }

    /// <summary>POST /v1/images/variations: image-to-image from the empty prompt.</summary>
    public static async Task<EditBody> ReadVariation(HttpRequest http, ModelCatalog models, ServerOptions limits)
    {
        var form = await ReadForm(http, limits);
        var f = new FormFields(form);
        BodyFields.CheckKnown(f, VariationKnown);
        var g = GenerationBody.Read(f, models, limits, promptless: true);
        if (g.Model.Pipeline is UnclipPipeline unclip) return UnclipVariation(g, unclip, form, f, limits);
        if (ImageEditors.For(g.Model.Pipeline).Refuse(EditOperation.ImageToImage, g.Model.Pipeline) != null)
            throw ApiError.BadRequest($"model '{g.Model.Name}' ({g.Model.Family}) cannot make variations: Pictor makes "
                + "a variation as image-to-image from the empty prompt, which needs a diffusion model ("
                + Diffusion(models) + "); or use POST /v1/images/edits with rows to complete the image", "model",
                "unsupported_operation");
        var source = ReadPng(form.Files.GetFile("image"), "image", limits)
            ?? throw ApiError.BadRequest("the image is missing; send the PNG to vary as the file field \"image\" "
                + "(curl -F image=@in.png)", "image", "missing_parameter");
        var request = g.Request;
        // Both sides of guidance would be the empty prompt: the same output at twice the cost, so none unless a
        // negative prompt gives guidance something to steer from.
        if (f.Float("guidance") == null && request.NegativePrompt == null) request = request with { Guidance = 1f };
        var edit = EditRequest.ImageToImage(request, source, f.Float("strength") ?? DefaultStrength)
            with { Resize = f.Bool("resize") ?? false };
        return Checked(g, edit);
    }

    /// <summary>OpenAI's edit semantics on this model (see the type's remarks).</summary>
    private static EditRequest Choose(TextToImage model, GenerationRequest g, Image source, Image? mask,
        IBodyFields f)
    {
        int? rows = f.Int("rows"), resample = f.Int("resample");
        float? strength = f.Float("strength");
        int grid = ImageEditors.For(model.Pipeline).TokenRows(model.Pipeline);
        var holes = mask ?? (Transparent(source) ? source : null);
        if (grid > 0)
        {
            if (strength != null || resample != null)
                throw ApiError.BadRequest($"model '{model.Name}' ({model.Family}) edits by completion only, which "
                    + $"takes rows, not {(strength != null ? "strength" : "resample")}; drop it, or use a diffusion "
                    + "model for image-to-image and inpainting", strength != null ? "strength" : "resample",
                    "unsupported_parameter");
            if (rows != null && mask != null)
                throw ApiError.BadRequest("send rows or a mask, not both: each says which token rows to keep", "rows",
                    "conflicting_parameters");
            if (rows is { } k) return EditRequest.Complete(g, source, k);
            if (holes == null)
                throw ApiError.BadRequest($"model '{model.Name}' ({model.Family}) edits by completing an image from "
                    + $"its top token rows: send rows=K (1 to {grid - 1}) or a mask transparent over the bottom rows; "
                    + "image-to-image and inpainting anywhere need a diffusion model", "rows", "missing_parameter");
            return EditRequest.Complete(g, source, RowsOf(holes, grid, mask != null ? "mask" : "image"));
        }
        if (rows != null)
            throw ApiError.BadRequest($"rows is for DALL-E completion; model '{model.Name}' ({model.Family}) "
                + "inpaints instead: send a mask transparent over the rows to redraw", "rows", "unsupported_parameter");
        if (holes != null)
        {
            if (strength != null)
                throw ApiError.BadRequest("strength is for image-to-image (an image with no transparent pixels and no "
                    + "mask); inpainting redraws the transparent region fully: drop strength", "strength",
                    "unsupported_parameter");
            return EditRequest.Inpaint(g, source, holes, resample ?? EditRequest.DefaultResample);
        }
        if (resample != null)
            throw ApiError.BadRequest("resample is for inpainting (a mask, or an image with transparent pixels); "
                + "image-to-image takes strength: drop resample", "resample", "unsupported_parameter");
        return EditRequest.ImageToImage(g, source, strength ?? DefaultStrength);
    }

    /// <summary>An unCLIP model's variations: the image's CLIP embedding decoded from new noise (any image size; no
    /// strength, since nothing of the source's pixels is kept).</summary>
    private static EditBody UnclipVariation(GenerationBody g, UnclipPipeline unclip, IFormCollection form,
        FormFields f, ServerOptions limits)
    {
        if (f.Float("strength") != null)
            throw ApiError.BadRequest($"model '{g.Model.Name}' (unclip) makes variations from the image's CLIP "
                + "embedding, not by image-to-image: drop strength", "strength", "unsupported_parameter");
        var source = ReadPng(form.Files.GetFile("image"), "image", limits)
            ?? throw ApiError.BadRequest("the image is missing; send the PNG to vary as the file field \"image\" "
                + "(curl -F image=@in.png)", "image", "missing_parameter");
        var request = g.Request;
        SamplingSettings s;
        try { (_, s) = SamplingSettings.Resolve(request with { Prompt = "" }, unclip); }
        catch (ArgumentException x) { throw GenerationBody.FromLibrary(x); }
        var placeholder = EditRequest.ImageToImage(request, source, 1f);   // recorded only; Run does the work
        return new EditBody(g.Model, placeholder, g.Url, request.Count * (double)s.Steps)
        {
            Run = (progress, token) => g.Model.Vary(source, request, progress, token),
        };
    }

    /// <summary>The edit checked against the model, and its size in work units (images x model calls).</summary>
    private static EditBody Checked(GenerationBody g, EditRequest edit)
    {
        SamplingSettings s;
        EditInput e;
        try { (_, s, e) = g.Model.ResolveEdit(edit); }
        catch (ArgumentException x) { throw GenerationBody.FromLibrary(x); }
        int drawn = Math.Max(edit.Generation.Count, edit.Generation.Candidates);
        int grid = ImageEditors.For(g.Model.Pipeline).TokenRows(g.Model.Pipeline);
        double calls = e.Operation switch
        {
            EditOperation.ImageToImage => Math.Ceiling(s.Steps * e.Strength),
            EditOperation.Inpaint => s.Steps * (1.0 + e.Resample),
            _ => (grid - e.Rows) * (double)grid,
        };
        return new EditBody(g.Model, edit, g.Url, drawn * Math.Max(1, calls));
    }

    /// <summary>The token rows kept from the top: the fully transparent (alpha 0) area of <paramref name="holes"/>
    /// must be exactly whole rows of the token grid at the bottom.</summary>
    private static int RowsOf(Image holes, int grid, string field)
    {
        int cell = holes.Height / grid, clear = holes.Height;   // clear: the first of the all-transparent rows
        bool Row(int y, Func<byte, bool> all)
        {
            for (int x = 0; x < holes.Width; x++)
                if (!all(holes.Rgba[4 * (y * holes.Width + x) + 3])) return false;
            return true;
        }
        while (clear > 0 && Row(clear - 1, a => a == 0)) clear--;
        bool above = Enumerable.Range(0, clear).All(y => Row(y, a => a != 0));
        if (holes.Height % grid != 0 || !above || clear % cell != 0 || clear == 0 || clear == holes.Height)
            throw ApiError.BadRequest($"the {field}'s transparent area must be whole token rows at the bottom for a "
                + $"DALL-E model, which completes an image from its top rows ({grid} rows of {Math.Max(1, cell)} "
                + "pixels, at least one kept and one redrawn); send rows=K instead", field, "invalid_mask");
        return clear / cell;
    }

    private static bool Transparent(Image img)
    {
        for (int i = 3; i < img.Rgba.Length; i += 4)
            if (img.Rgba[i] == 0) return true;
        return false;
    }

    private static string Diffusion(ModelCatalog models)
    {
        var names = models.Models.Where(m => m.Family == "diffusion")
            .Select(m => m.Name).ToList();
        return names.Count == 0 ? "none on this server" : "here: " + string.Join(", ", names);
    }

    /// <summary>The form, read within <see cref="ServerOptions.MaxUploadBytes"/> (413 past it).</summary>
    private static async Task<IFormCollection> ReadForm(HttpRequest http, ServerOptions limits)
    {
        if (http.ContentType?.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase) != true)
            throw ApiError.BadRequest($"the body is {http.ContentType ?? "untyped"}, not multipart/form-data; send "
                + "the image as a file field, e.g. curl -F image=@in.png -F prompt=...", code: "invalid_content_type");
        var bytes = await ImagesApi.ReadBody(http, limits.MaxUploadBytes, "send a smaller image (the models draw "
            + "small images: send one of the model's size)");
        http.Body = new MemoryStream(bytes.ToArray(), writable: false);
        try { return await http.ReadFormAsync(http.HttpContext.RequestAborted); }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw ApiError.BadRequest($"the body is not a readable multipart form ({e.Message}); send it as curl -F "
                + "does", code: "invalid_form");
        }
    }

    /// <summary>A PNG file field decoded, or null when absent: PNG only (as OpenAI takes), at most
    /// <see cref="ServerOptions.MaxImageSide"/> pixels a side, checked in its header before decoding.</summary>
    private static Image? ReadPng(IFormFile? file, string field, ServerOptions limits)
    {
        if (file == null) return null;
        using var ms = new MemoryStream();
        file.CopyTo(ms);
        byte[] data = ms.ToArray();
        var format = ImageDecoder.Sniff(data);
        if (format != ImageFormat.Png)
            throw ApiError.BadRequest($"the {field} is {(format == ImageFormat.Unknown ? "not an image"
                : "a " + ImageDecoder.NameOf(format))}; this API takes PNG (as OpenAI's does): convert it",
                field, "invalid_image_format");
        if (data.Length >= 24)
        {
            // IHDR is the first chunk (PNG spec 5.2, 11.2.2): width and height, big-endian, at bytes 16 and 20.
            uint w = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(16)), h =
                BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(20));
            if (w > limits.MaxImageSide || h > limits.MaxImageSide)
                throw new ApiError(413, $"the {field} is {w}x{h}, over this server's limit of {limits.MaxImageSide} "
                    + "pixels a side; send a smaller image (the model's own size needs no resize)", field,
                    "image_too_large");
        }
        try
        {
            return Image.Load(data, new PngDecodeOptions(MaxPixels: (long)limits.MaxImageSide * limits.MaxImageSide));
        }
        catch (ImageFormatException e)
        {
            throw ApiError.BadRequest($"the {field} does not decode: {e.Message}", field, "invalid_image");
        }
    }
}
