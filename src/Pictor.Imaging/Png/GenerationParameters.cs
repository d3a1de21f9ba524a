using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Pictor.Imaging.Png;

/// <summary>
/// What produced an image, stored in its PNG so it can be read back and reproduced. Written twice: as the
/// AUTOMATIC1111 "parameters" text ("&lt;prompt&gt;\nNegative prompt: ...\nSteps: 20, Sampler: ..., CFG scale: ...,
/// Seed: ..., Size: 32x32, Model hash: ..."), which existing tools read, and as our own JSON under "pictor".
/// </summary>
public sealed record GenerationParameters(
    string Prompt,
    string? NegativePrompt,
    int Steps,
    string Sampler,
    float CfgScale,
    ulong Seed,
    int Width,
    int Height,
    string ModelHash,
    string? Model = null,
    float Eta = 0f,          // DDIM eta (0 = deterministic)
    int BatchSize = 1,       // the images made together; verify regenerates the same batch
    int BatchIndex = 0,      // this image's row in the batch; -1 for a grid of the whole batch
    ulong BaseSeed = 0,      // the batch's first seed (row i used BaseSeed + i)
    float Temperature = 1f,  // token sampling (DALL-E models); 1, 0, 1 for diffusion
    int TopK = 0,
    float TopP = 1f)
{
    public const string A1111Key = "parameters";
    public const string JsonKey = "pictor";
    public const int JsonVersion = 1;

    /// <summary>What an edit was made from (source and mask hashes, strength, ...); null for a plain generation, whose
    /// metadata then has no edit fields at all.</summary>
    public EditParameters? Edit { get; init; }

    public string ToA1111()
    {
        var sb = new StringBuilder(Prompt);
        if (!string.IsNullOrEmpty(NegativePrompt)) sb.Append("\nNegative prompt: ").Append(NegativePrompt);
        sb.Append(CultureInfo.InvariantCulture, $"\nSteps: {Steps}, Sampler: {Sampler}, CFG scale: {CfgScale:0.###}, "
            + $"Seed: {Seed}, Size: {Width}x{Height}, Model hash: {ModelHash}");
        if (Temperature != 1f || TopK != 0 || TopP != 1f) sb.Append(CultureInfo.InvariantCulture,
            $", Temperature: {Temperature:0.###}, Top-k: {TopK}, Top-p: {TopP:0.###}");
        if (Model != null) sb.Append(", Model: ").Append(Model);
        if (Edit != null) sb.Append(Edit.ToA1111());
        return sb.ToString();
    }

    public string ToJson() => JsonSerializer.Serialize(WithEdit(new Dictionary<string, object?>
    {
        ["format"] = "pictor-generation", ["version"] = JsonVersion, ["prompt"] = Prompt,
        ["negative_prompt"] = NegativePrompt,
        ["steps"] = Steps, ["sampler"] = Sampler, ["cfg_scale"] = CfgScale, ["seed"] = Seed, ["width"] = Width,
        ["height"] = Height,
        ["model_hash"] = ModelHash, ["model"] = Model, ["eta"] = Eta, ["batch_size"] = BatchSize,
        ["batch_index"] = BatchIndex, ["base_seed"] = BaseSeed,
        ["temperature"] = Temperature, ["top_k"] = TopK, ["top_p"] = TopP,
    }));

    private Dictionary<string, object?> WithEdit(Dictionary<string, object?> json)
    {
        Edit?.AddTo(json);
        return json;
    }

    public IEnumerable<KeyValuePair<string, string>> ToPngText() => [new(A1111Key, ToA1111()), new(JsonKey, ToJson())];

    /// <summary>Reads our JSON chunk back; null when the image has none. A wrong format or version is an
    /// error.</summary>
    public static GenerationParameters? FromPng(PngImage img)
    {
        var json = img.GetText(JsonKey);
        if (json == null) return null;
        try
        {
            using var doc = JsonDocument.Parse(json);
            var r = doc.RootElement;
            if (r.GetProperty("format").GetString() != "pictor-generation")
                throw new FormatException("the 'pictor' chunk is not pictor-generation JSON");
            int v = r.GetProperty("version").GetInt32();
            if (v != JsonVersion) throw new FormatException($"generation metadata version {v} is not supported "
                + $"(this Pictor reads version {JsonVersion}); update Pictor");
            string? S(string k) => r.TryGetProperty(k, out var e) && e.ValueKind == JsonValueKind.String
                ? e.GetString() : null;
            return new GenerationParameters(S("prompt") ?? "", S("negative_prompt"), r.GetProperty("steps").GetInt32(),
                S("sampler") ?? "", r.GetProperty("cfg_scale").GetSingle(), r.GetProperty("seed").GetUInt64(),
                r.GetProperty("width").GetInt32(), r.GetProperty("height").GetInt32(), S("model_hash") ?? "",
                S("model"), r.TryGetProperty("eta", out var eta) ? eta.GetSingle() : 0f,
                r.TryGetProperty("batch_size", out var bs) ? bs.GetInt32() : 1,
                r.TryGetProperty("batch_index", out var bi) ? bi.GetInt32() : 0,
                r.TryGetProperty("base_seed", out var b0) ? b0.GetUInt64() : r.GetProperty("seed").GetUInt64(),
                r.TryGetProperty("temperature", out var te) ? te.GetSingle() : 1f,
                r.TryGetProperty("top_k", out var tk) ? tk.GetInt32() : 0,
                r.TryGetProperty("top_p", out var tp) ? tp.GetSingle() : 1f)
            {
                Edit = EditParameters.FromJson(r),
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new FormatException($"the 'pictor' metadata chunk is malformed: {e.Message}");
        }
    }
}
