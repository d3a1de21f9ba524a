using System.Text.Json;
using Pictor.Pipelines;

namespace Pictor.Server;

/// <summary>
/// The body of POST /v1/images/generations as OpenAI defines it (prompt, model, n, size, response_format, and the
/// fields this server accepts and ignores), plus Pictor's extension fields (seed, steps, sampler, guidance,
/// negative_prompt, eta, temperature, top_k, top_p, candidates, truncate). Read once here; every value is checked
/// against the server's limits and the model (<see cref="TextToImage.Resolve"/>), each error naming its field.
/// </summary>
public sealed record GenerationBody(TextToImage Model, GenerationRequest Request, bool Url, int Steps)
{
    /// <summary>OpenAI fields that do not change a Pictor image; accepted so clients work unchanged.</summary>
    internal static readonly string[] Ignored = ["quality", "style", "user", "background", "moderation",
        "output_compression", "partial_images"];

    internal static readonly string[] Known = ["prompt", "model", "n", "size", "response_format", "output_format",
        "stream", "seed", "steps", "sampler", "guidance", "negative_prompt", "eta", "temperature", "top_k", "top_p",
        "candidates", "truncate", .. Ignored];

    public static GenerationBody Parse(ReadOnlyMemory<byte> json, ModelCatalog models, ServerOptions limits)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e)
        {
            throw ApiError.BadRequest($"the body is not valid JSON ({e.Message}); send an object such as "
                + "{\"prompt\": \"a red circle\", \"n\": 1}", code: "invalid_json");
        }
        using (doc)
        {
            var o = doc.RootElement;
            if (o.ValueKind != JsonValueKind.Object)
                throw ApiError.BadRequest($"the body is a JSON {o.ValueKind.ToString().ToLowerInvariant()}, not an "
                    + "object; send {\"prompt\": \"...\"}", code: "invalid_json");
            var fields = new JsonFields(o);
            BodyFields.CheckKnown(fields, Known);
            return Read(fields, models, limits);
        }
    }

    /// <summary>The generation part of any images request, checked; <paramref name="promptless"/> (variations)
    /// draws from the empty prompt instead of a "prompt" field.</summary>
    internal static GenerationBody Read(IBodyFields o, ModelCatalog models, ServerOptions limits,
        bool promptless = false)
    {
        string prompt = promptless ? "" : o.Str("prompt") ?? throw ApiError.BadRequest(
            "the prompt is missing; give the text to draw as \"prompt\"", "prompt", "missing_parameter");
        if (!promptless && prompt.Trim().Length == 0)
            throw ApiError.BadRequest("the prompt is empty; give the text to draw", "prompt", "empty_prompt");
        CheckLength(prompt, "prompt", limits);
        string? negative = o.Str("negative_prompt");
        if (negative != null) CheckLength(negative, "negative_prompt", limits);

        string? name = o.Str("model");
        var model = name == null ? models.Default : models.Find(name) ?? throw new ApiError(404,
            $"the model '{name}' does not exist; this server has {string.Join(", ", models.Models.Select(m => m.Name))}"
                + " (GET /v1/models)", "model", "model_not_found");

        int n = o.Int("n") ?? 1;
        if (n < 1 || n > limits.MaxImages)
            throw ApiError.BadRequest($"n must be between 1 and {limits.MaxImages} (this server's limit per request), "
                + $"got {n}; make several requests for more images", "n", "n_out_of_range");
        int? steps = o.Int("steps");
        if (steps is { } st && (st < 1 || st > limits.MaxSteps))
            throw ApiError.BadRequest($"steps must be between 1 and {limits.MaxSteps} (this server's limit), got {st}",
                "steps", "steps_out_of_range");
        int candidates = o.Int("candidates") ?? 0;
        if (candidates < 0 || candidates > limits.MaxImages * 4)
            throw ApiError.BadRequest($"candidates must be between 0 (no reranking) and {limits.MaxImages * 4} (this "
                + $"server's limit), got {candidates}", "candidates", "candidates_out_of_range");

        string size = o.Str("size") ?? "auto";
        string own = $"{model.ImageSize}x{model.ImageSize}";
        if (size != "auto" && size != own)
            throw ApiError.BadRequest($"size '{size}' is not one model '{model.Name}' makes; it draws {own} images "
                + $"only: send \"size\": \"{own}\" (or \"auto\")", "size", "invalid_size");
        string format = o.Str("response_format") ?? "b64_json";
        if (format is not ("b64_json" or "url"))
            throw ApiError.BadRequest($"response_format must be \"b64_json\" or \"url\", got \"{format}\"",
                "response_format", "invalid_response_format");
        if (o.Str("output_format") is { } of && of != "png")
            throw ApiError.BadRequest($"output_format must be \"png\" (the only format this server writes), got "
                + $"\"{of}\"", "output_format", "invalid_output_format");
        if (o.Bool("stream") == true)
            throw ApiError.BadRequest("stream is not supported; follow progress with GET /v1/jobs/{id}/events (the "
                + "id is in the X-Pictor-Job-Id response header, or send your own)", "stream", "unsupported");

        var request = new GenerationRequest(prompt)
        {
            NegativePrompt = negative, Count = n, Steps = steps, Sampler = o.Str("sampler"),
            Guidance = o.Float("guidance"), Seed = o.ULong("seed") ?? (ulong)Random.Shared.NextInt64(0, 1L << 31),
            Eta = o.Float("eta") ?? 0f, Temperature = o.Float("temperature") ?? 1f, TopK = o.Int("top_k") ?? 0,
            TopP = o.Float("top_p") ?? 1f, Candidates = candidates, Truncate = o.Bool("truncate") ?? false,
        };
        SamplingSettings settings;
        try { settings = model.Resolve(request).Settings; }
        catch (ArgumentException e) { throw FromLibrary(e); }
        // About 20 previews a job: enough for a live picture, few enough to cost nothing next to the steps.
        request = request with { PreviewEvery = Math.Max(1, settings.Steps / 20) };
        return new GenerationBody(model, request, format == "url", settings.Steps);
    }

    /// <summary>The library's one-line refusal as a 400. It names the CLI's and the API's spelling of a fix; this
    /// adds the HTTP field's.</summary>
    internal static ApiError FromLibrary(ArgumentException e) => ApiError.BadRequest(e.Message
        .ReplaceLineEndings(" ")
        .Replace("(Truncate = true)", "(Truncate = true; over HTTP \"truncate\": true)", StringComparison.Ordinal)
        .Replace("(EditRequest.Resize = true)", "(EditRequest.Resize = true; over HTTP the field resize=true)",
            StringComparison.Ordinal), code: "invalid_value");

    private static void CheckLength(string text, string field, ServerOptions limits)
    {
        if (text.Length > limits.MaxPromptChars)
            throw ApiError.BadRequest($"{field} has {text.Length} characters; this server's limit is "
                + $"{limits.MaxPromptChars}: shorten it", field, "prompt_too_long");
    }
}
