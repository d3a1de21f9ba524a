using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace Pictor.Imaging.Png;

/// <summary>The edit operations: SDEdit image-to-image, RePaint inpainting, DALL-E completion, and unCLIP's image
/// variations and embedding interpolation.</summary>
public enum EditOperation { ImageToImage, Inpaint, Complete, Vary, Interpolate }

/// <summary>
/// What an edited image was made from, beside its <see cref="GenerationParameters"/>: the operation, its one setting
/// (strength, resample count or kept token rows) and the SHA-256 of the source image and mask, so `pictor verify`
/// can check it was given the same inputs before it regenerates. Written as optional fields of the "pictor" JSON
/// ("edit", "strength", "resample", "rows", "frames", "source_sha256", "source2_sha256", "mask_sha256", "resized"); a
/// plain generation has none,
/// so its metadata is byte for byte what it was before editing existed.
/// </summary>
/// <param name="SourceSha256">Hex SHA-256 of <see cref="PixelHash"/> of the source as the model read it (after any
/// resize): the pixels, not the file, so a re-encoded PNG of the same image still matches.</param>
/// <param name="Resized">The source (and mask) were resized to the model's size before use (--resize).</param>
/// <param name="Source2Sha256">An interpolation's second image (<see cref="PixelHash"/>), the first being the
/// source.</param>
/// <param name="Frames">An interpolation's frame count (frame i at fraction i / (frames - 1)).</param>
public sealed record EditParameters(EditOperation Operation, string SourceSha256, string? MaskSha256 = null,
    float Strength = 1f, int Resample = 0, int Rows = 0, bool Resized = false, string? Source2Sha256 = null,
    int Frames = 0)
{
    public static string Name(EditOperation op) => op switch
    {
        EditOperation.ImageToImage => "img2img", EditOperation.Inpaint => "inpaint", EditOperation.Vary => "vary",
        EditOperation.Interpolate => "interpolate", _ => "complete",
    };

    public static EditOperation Parse(string name) => name switch
    {
        "img2img" => EditOperation.ImageToImage, "inpaint" => EditOperation.Inpaint,
        "complete" => EditOperation.Complete, "vary" => EditOperation.Vary, "interpolate" => EditOperation.Interpolate,
        _ => throw new FormatException($"metadata edit '{name}' is not img2img, inpaint, complete, vary or "
            + "interpolate; update Pictor"),
    };

    /// <summary>SHA-256 (hex) of "WxH\n" then the RGBA bytes of <paramref name="img"/>.</summary>
    public static string PixelHash(Image img)
    {
        ArgumentNullException.ThrowIfNull(img);
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(System.Text.Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"{img.Width}x{img.Height}\n")));
        h.AppendData(img.Rgba);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>The JSON fields this edit adds to the "pictor" chunk.</summary>
    public void AddTo(IDictionary<string, object?> json)
    {
        json["edit"] = Name(Operation);
        switch (Operation)
        {
            case EditOperation.ImageToImage: json["strength"] = Strength; break;
            case EditOperation.Inpaint: json["resample"] = Resample; break;
            case EditOperation.Complete: json["rows"] = Rows; break;
            case EditOperation.Interpolate: json["frames"] = Frames; break;
        }
        json["source_sha256"] = SourceSha256;
        if (Source2Sha256 != null) json["source2_sha256"] = Source2Sha256;
        if (MaskSha256 != null) json["mask_sha256"] = MaskSha256;
        if (Resized) json["resized"] = true;
    }

    /// <summary>The A1111 text's addition ("Edit: inpaint, Resample: 2").</summary>
    public string ToA1111() => Operation switch
    {
        EditOperation.ImageToImage => string.Create(CultureInfo.InvariantCulture,
            $", Edit: img2img, Denoising strength: {Strength:0.###}"),
        EditOperation.Inpaint => $", Edit: inpaint, Resample: {Resample}",
        EditOperation.Vary => ", Edit: vary",
        EditOperation.Interpolate => $", Edit: interpolate, Frames: {Frames}",
        _ => $", Edit: complete, Rows: {Rows}",
    };

    /// <summary>The edit fields of a "pictor" JSON object; null when it records a plain generation.</summary>
    public static EditParameters? FromJson(JsonElement r)
    {
        if (!r.TryGetProperty("edit", out var e) || e.ValueKind != JsonValueKind.String) return null;
        string? S(string k) =>
            r.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        return new EditParameters(Parse(e.GetString()!), S("source_sha256")
                ?? throw new FormatException("edit metadata has no source_sha256"), S("mask_sha256"),
            r.TryGetProperty("strength", out var st) ? st.GetSingle() : 1f,
            r.TryGetProperty("resample", out var rs) ? rs.GetInt32() : 0,
            r.TryGetProperty("rows", out var ro) ? ro.GetInt32() : 0,
            r.TryGetProperty("resized", out var rz) && rz.GetBoolean(), S("source2_sha256"),
            r.TryGetProperty("frames", out var fr) ? fr.GetInt32() : 0);
    }
}
