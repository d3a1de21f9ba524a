using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Pictor.Server;

/// <summary>
/// A request's named fields, typed: a JSON object (generations) or a multipart form (edits, variations), so every
/// field is checked by the same code (<see cref="GenerationBody"/>) whichever way it came. A value of the wrong type is
/// a 400 naming the field and the type it takes.
/// </summary>
internal interface IBodyFields
{
    /// <summary>Every field the client sent (files included), for the unknown-field check.</summary>
    IEnumerable<string> Names { get; }
    string? Str(string name);
    int? Int(string name);
    ulong? ULong(string name);
    float? Float(string name);
    bool? Bool(string name);
}

internal static class BodyFields
{
    public static ApiError TypeError(string name, string expected, string got) =>
        ApiError.BadRequest($"{name} must be {expected}, got {got}", name, "invalid_type");

    /// <summary>Refuses a field outside <paramref name="known"/>, naming the ones there are.</summary>
    public static void CheckKnown(IBodyFields fields, IReadOnlyCollection<string> known)
    {
        foreach (var name in fields.Names)
            if (!known.Contains(name, StringComparer.Ordinal))
                throw ApiError.BadRequest($"unknown field '{name}'; the fields are {string.Join(", ", known)}", name,
                    "unknown_parameter");
    }
}

/// <summary>The fields of a JSON object; null values count as absent.</summary>
internal sealed class JsonFields(JsonElement o) : IBodyFields
{
    public IEnumerable<string> Names => o.EnumerateObject().Select(p => p.Name);

    private JsonElement? Field(string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static ApiError TypeError(string name, string expected, JsonElement v) =>
        BodyFields.TypeError(name, expected, v.GetRawText());

    public string? Str(string name) => Field(name) is not { } v ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString() : throw TypeError(name, "a string", v);

    public int? Int(string name) => Field(name) is not { } v ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int x) ? x
        : throw TypeError(name, "a whole number", v);

    public ulong? ULong(string name) => Field(name) is not { } v ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out ulong x) ? x
        : throw TypeError(name, "a whole number from 0 to 18446744073709551615", v);

    public float? Float(string name) => Field(name) is not { } v ? null
        : v.ValueKind == JsonValueKind.Number && float.TryParse(v.GetRawText(), NumberStyles.Float,
            CultureInfo.InvariantCulture, out float x) && float.IsFinite(x) ? x
        : throw TypeError(name, "a number", v);

    public bool? Bool(string name) => Field(name) is not { } v ? null
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
        : throw TypeError(name, "true or false", v);
}

/// <summary>The text fields of a multipart form (every value a string, parsed here); its files count among the names.
/// An empty value counts as absent, as a form's empty input does.</summary>
internal sealed class FormFields(IFormCollection form) : IBodyFields
{
    public IEnumerable<string> Names => form.Keys.Concat(form.Files.Select(f => f.Name)).Distinct();

    private string? Field(string name)
    {
        if (!form.TryGetValue(name, out var v) || v.Count == 0 || string.IsNullOrEmpty(v[0])) return null;
        if (v.Count > 1)
            throw ApiError.BadRequest($"{name} is sent {v.Count} times; send it once", name, "duplicate_parameter");
        return v[0];
    }

    private static string Quote(string v) => JsonSerializer.Serialize(v);

    public string? Str(string name) => Field(name);

    public int? Int(string name) => Field(name) is not { } v ? null
        : int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int x) ? x
        : throw BodyFields.TypeError(name, "a whole number", Quote(v));

    public ulong? ULong(string name) => Field(name) is not { } v ? null
        : ulong.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out ulong x) ? x
        : throw BodyFields.TypeError(name, "a whole number from 0 to 18446744073709551615", Quote(v));

    public float? Float(string name) => Field(name) is not { } v ? null
        : float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float x) && float.IsFinite(x) ? x
        : throw BodyFields.TypeError(name, "a number", Quote(v));

    public bool? Bool(string name) => Field(name) is not { } v ? null
        : v is "true" or "false" ? v == "true" : throw BodyFields.TypeError(name, "true or false", Quote(v));
}
