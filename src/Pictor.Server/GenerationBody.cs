using System.Globalization;
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
    private static readonly string[] Ignored = ["quality", "style", "user", "background", "moderation",
        "output_compression", "partial_images"];

    private static readonly string[] Known = ["prompt", "model", "n", "size", "response_format", "output_format",
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
            foreach (var p in o.EnumerateObject())
                if (!Known.Contains(p.Name, StringComparer.Ordinal))
                    throw ApiError.BadRequest($"unknown field '{p.Name}'; the fields are {string.Join(", ", Known)}",
                        p.Name, "unknown_parameter");
            return Read(o, models, limits);
        }
    }

    private static GenerationBody Read(JsonElement o, ModelCatalog models, ServerOptions limits)
    {
        string prompt = Str(o, "prompt") ?? throw ApiError.BadRequest(
            "the prompt is missing; give the text to draw as \"prompt\"", "prompt", "missing_parameter");
        if (prompt.Trim().Length == 0)
            throw ApiError.BadRequest("the prompt is empty; give the text to draw", "prompt", "empty_prompt");
        CheckLength(prompt, "prompt", limits);
        string? negative = Str(o, "negative_prompt");
        if (negative != null) CheckLength(negative, "negative_prompt", limits);

        string? name = Str(o, "model");
        var model = name == null ? models.Default : models.Find(name) ?? throw new ApiError(404,
            $"the model '{name}' does not exist; this server has {string.Join(", ", models.Models.Select(m => m.Name))}"
                + " (GET /v1/models)", "model", "model_not_found");

        int n = Int(o, "n") ?? 1;
        if (n < 1 || n > limits.MaxImages)
            throw ApiError.BadRequest($"n must be between 1 and {limits.MaxImages} (this server's limit per request), "
                + $"got {n}; make several requests for more images", "n", "n_out_of_range");
        int? steps = Int(o, "steps");
        if (steps is { } st && (st < 1 || st > limits.MaxSteps))
            throw ApiError.BadRequest($"steps must be between 1 and {limits.MaxSteps} (this server's limit), got {st}",
                "steps", "steps_out_of_range");
        int candidates = Int(o, "candidates") ?? 0;
        if (candidates < 0 || candidates > limits.MaxImages * 4)
            throw ApiError.BadRequest($"candidates must be between 0 (no reranking) and {limits.MaxImages * 4} (this "
                + $"server's limit), got {candidates}", "candidates", "candidates_out_of_range");

        string size = Str(o, "size") ?? "auto";
        string own = $"{model.ImageSize}x{model.ImageSize}";
        if (size != "auto" && size != own)
            throw ApiError.BadRequest($"size '{size}' is not one model '{model.Name}' makes; it draws {own} images "
                + $"only: send \"size\": \"{own}\" (or \"auto\")", "size", "invalid_size");
        string format = Str(o, "response_format") ?? "b64_json";
        if (format is not ("b64_json" or "url"))
            throw ApiError.BadRequest($"response_format must be \"b64_json\" or \"url\", got \"{format}\"",
                "response_format", "invalid_response_format");
        if (Str(o, "output_format") is { } of && of != "png")
            throw ApiError.BadRequest($"output_format must be \"png\" (the only format this server writes), got "
                + $"\"{of}\"", "output_format", "invalid_output_format");
        if (Bool(o, "stream") == true)
            throw ApiError.BadRequest("stream is not supported; follow progress with GET /v1/jobs/{id}/events (the "
                + "id is in the X-Pictor-Job-Id response header, or send your own)", "stream", "unsupported");

        var request = new GenerationRequest(prompt)
        {
            NegativePrompt = negative, Count = n, Steps = steps, Sampler = Str(o, "sampler"),
            Guidance = Float(o, "guidance"), Seed = ULong(o, "seed") ?? (ulong)Random.Shared.NextInt64(0, 1L << 31),
            Eta = Float(o, "eta") ?? 0f, Temperature = Float(o, "temperature") ?? 1f, TopK = Int(o, "top_k") ?? 0,
            TopP = Float(o, "top_p") ?? 1f, Candidates = candidates, Truncate = Bool(o, "truncate") ?? false,
        };
        SamplingSettings settings;
        try { settings = model.Resolve(request).Settings; }
        catch (ArgumentException e)
        {
            // The library names the CLI's and the API's spelling of a fix; add this API's.
            string message = e.Message.ReplaceLineEndings(" ").Replace("(Truncate = true)",
                "(Truncate = true; over HTTP \"truncate\": true)", StringComparison.Ordinal);
            throw ApiError.BadRequest(message, code: "invalid_value");
        }
        // About 20 previews a job: enough for a live picture, few enough to cost nothing next to the steps.
        request = request with { PreviewEvery = Math.Max(1, settings.Steps / 20) };
        return new GenerationBody(model, request, format == "url", settings.Steps);
    }

    private static void CheckLength(string text, string field, ServerOptions limits)
    {
        if (text.Length > limits.MaxPromptChars)
            throw ApiError.BadRequest($"{field} has {text.Length} characters; this server's limit is "
                + $"{limits.MaxPromptChars}: shorten it", field, "prompt_too_long");
    }

    private static JsonElement? Field(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static ApiError TypeError(string name, string expected, JsonElement v) =>
        ApiError.BadRequest($"{name} must be {expected}, got {v.GetRawText()}", name, "invalid_type");

    private static string? Str(JsonElement o, string name) => Field(o, name) is not { } v ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString() : throw TypeError(name, "a string", v);

    private static int? Int(JsonElement o, string name) => Field(o, name) is not { } v ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int x) ? x
        : throw TypeError(name, "a whole number", v);

    private static ulong? ULong(JsonElement o, string name) => Field(o, name) is not { } v ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out ulong x) ? x
        : throw TypeError(name, "a whole number from 0 to 18446744073709551615", v);

    private static float? Float(JsonElement o, string name) => Field(o, name) is not { } v ? null
        : v.ValueKind == JsonValueKind.Number && float.TryParse(v.GetRawText(), NumberStyles.Float,
            CultureInfo.InvariantCulture, out float x) && float.IsFinite(x) ? x
        : throw TypeError(name, "a number", v);

    private static bool? Bool(JsonElement o, string name) => Field(o, name) is not { } v ? null
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
        : throw TypeError(name, "true or false", v);
}
