using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Pictor.Pipelines.Editing;

namespace Pictor.Server;

/// <summary>
/// The OpenAI Images API routes: generations, edits and variations through the job queue, and the stored PNGs of
/// "url" responses. Validation here, work in <see cref="JobQueue"/>, maths in
/// the library.
/// </summary>
internal static partial class ImagesApi
{
    public const string JobHeader = "X-Pictor-Job-Id";

    internal static readonly JsonSerializerOptions Json = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    [GeneratedRegex("^[A-Za-z0-9_-]{16,64}$")]
    private static partial Regex JobIdPattern();

    public static async Task Generations(HttpContext ctx, ModelCatalog models, ServerOptions options, JobQueue queue,
        ImageStore store)
    {
        var body = await ReadBody(ctx.Request, options.MaxBodyBytes, "send a shorter prompt");
        var g = GenerationBody.Parse(body, models, options);
        var job = Job.Generation(JobId(ctx.Request), g.Model, g.Request, g.Steps, ctx.RequestAborted,
            options.Deadline);
        await Answer(ctx, job, g.Url, queue, store);
    }

    /// <summary>POST /v1/images/edits (multipart): inpainting, image-to-image or DALL-E completion, chosen as
    /// <see cref="EditBody"/> says; the PNGs carry the edit's metadata (source and mask hashes) for `pictor verify
    /// --source --mask`.</summary>
    public static async Task Edits(HttpContext ctx, ModelCatalog models, ServerOptions options, JobQueue queue,
        ImageStore store)
    {
        var e = await EditBody.ReadEdit(ctx.Request, models, options);
        await Answer(ctx, EditJob(ctx, e, options), e.Url, queue, store);
    }

    /// <summary>POST /v1/images/variations (multipart): an unCLIP model decodes the image's CLIP embedding from new
    /// noise (DALL-E 2's variations); a diffusion model makes image-to-image from the empty prompt (its unconditional
    /// model, trained by caption dropout) at strength 0.6 unless told; a DALL-E model is refused with a 400.</summary>
    public static async Task Variations(HttpContext ctx, ModelCatalog models, ServerOptions options,
        JobQueue queue, ImageStore store)
    {
        var e = await EditBody.ReadVariation(ctx.Request, models, options);
        await Answer(ctx, EditJob(ctx, e, options), e.Url, queue, store);
    }

    private static Job EditJob(HttpContext ctx, EditBody e, ServerOptions options) => new(JobId(ctx.Request),
        e.Model, e.Units, e.Run ?? ((progress, token) => e.Model.Edit(e.Edit, progress, token)), ctx.RequestAborted,
        options.Deadline);

    /// <summary>Admits the job (429 when full), waits for it and writes OpenAI's images response.</summary>
    private static async Task Answer(HttpContext ctx, Job job, bool asUrl, JobQueue queue, ImageStore store)
    {
        ctx.Response.Headers[JobHeader] = job.Id;
        if (!queue.TryAdmit(job, out int retry))
            throw new ApiError(429, $"the server is busy: {queue.Running} running and {queue.Waiting} waiting jobs "
                + $"fill its {queue.Workers} worker(s) and queue (--workers, --queue); retry after {retry} s",
                code: "rate_limit_exceeded", type: "requests") { RetryAfter = retry };
        Pipelines.GenerationResult result;
        try { result = await job.Completion; }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            return;   // the client went away; its job was cancelled within a step
        }
        catch (OperationCanceledException)
        {
            bool stopping = !queue.Accepting;
            throw new ApiError(503, job.CancelReason ?? "the job was cancelled",
                code: stopping ? "shutting_down" : "deadline_exceeded") { RetryAfter = stopping ? 5 : null };
        }
        ctx.Response.Headers["Server-Timing"] = FormattableString.Invariant(
            $"queue;dur={job.Waited.TotalMilliseconds:0.0}, generate;dur={job.Took.TotalMilliseconds:0.0}");
        var model = job.Model;
        var data = result.Images.Select(img =>
        {
            byte[] png = img.Image.ToPng(img.Parameters.ToPngText());
            string? url = asUrl ? $"{ctx.Request.Scheme}://{ctx.Request.Host}/images/{store.Add(png)}.png" : null;
            return new ImageData(asUrl ? null : Convert.ToBase64String(png), url, result.Prompt,
                img.Parameters.Seed, img.ClipScore);
        }).ToList();
        await ctx.Response.WriteAsJsonAsync(new ImagesResponse(DateTimeOffset.UtcNow.ToUnixTimeSeconds(), data,
            "png", $"{model.ImageSize}x{model.ImageSize}", model.Name), Json, ctx.RequestAborted);
    }

    /// <summary>GET /images/{id}.png: a "url" response's PNG while it lasts.</summary>
    public static async Task StoredImage(HttpContext ctx, string id, ImageStore store)
    {
        var png = store.Get(id) ?? throw new ApiError(404, $"image '{id}' does not exist or has expired (URLs last "
            + "a bounded time); generate it again, or ask for response_format b64_json", code: "image_not_found");
        ctx.Response.ContentType = "image/png";
        ctx.Response.Headers.CacheControl = "private, max-age=3600";
        await ctx.Response.Body.WriteAsync(png, ctx.RequestAborted);
    }

    /// <summary>The body, read up to the limit: 413 past it, whether or not Content-Length says so first.</summary>
    internal static async Task<ReadOnlyMemory<byte>> ReadBody(HttpRequest request, int limit, string fix)
    {
        ApiError TooLarge(string size) => new(413, $"the request body is {size}, over this server's limit of {limit} "
            + $"bytes; {fix}", code: "request_too_large");
        if (request.ContentLength is long n && n > limit) throw TooLarge($"{n} bytes");
        using var ms = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(buffer, request.HttpContext.RequestAborted)) > 0)
        {
            if (ms.Length + read > limit) throw TooLarge("larger");
            ms.Write(buffer, 0, read);
        }
        return ms.ToArray();
    }

    private static string JobId(HttpRequest request)
    {
        string? given = request.Headers[JobHeader];
        if (string.IsNullOrEmpty(given)) return Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        if (!JobIdPattern().IsMatch(given))
            throw ApiError.BadRequest($"{JobHeader} must be 16 to 64 letters, digits, '-' or '_' (a UUID will do), "
                + $"got '{given}'", JobHeader, "invalid_job_id");
        return given;
    }

    private sealed record ImageData(
        [property: JsonPropertyName("b64_json")] string? B64Json,
        [property: JsonPropertyName("url")] string? Url,
        [property: JsonPropertyName("revised_prompt")] string RevisedPrompt,
        [property: JsonPropertyName("seed")] ulong Seed,
        [property: JsonPropertyName("clip_score")] float? ClipScore);

    private sealed record ImagesResponse(
        [property: JsonPropertyName("created")] long Created,
        [property: JsonPropertyName("data")] IReadOnlyList<ImageData> Data,
        [property: JsonPropertyName("output_format")] string OutputFormat,
        [property: JsonPropertyName("size")] string Size,
        [property: JsonPropertyName("model")] string Model);
}
