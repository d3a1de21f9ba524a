using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine.IO;

namespace Pictor.Pipelines.Training;

/// <summary>
/// How a model was trained, as training.json in its folder ("format": "pictor-training"): the wall minutes of its
/// training steps, validations and checkpoints (summed over resumed segments), a line saying what ran, and, when a
/// trainer wrote it, the command, the step, the data folder and its hash, and when. Every trainer writes it into each
/// model/ it exports; the shipped models' files were written by hand from the logs their pages in docs/models/ cite,
/// summing a model's parts (DALL-E's VQ-VAE and transformer, unCLIP's prior and decoder). 'pictor eval families'
/// and 'pictor inspect' read it.
/// </summary>
public sealed record TrainingRecord(double Minutes, string Detail)
{
    /// <summary>The command line that trained it (the CLI's; null from the library).</summary>
    public string? Command { get; init; }
    public long? Step { get; init; }
    public string? Data { get; init; }
    /// <summary><see cref="DataHash"/> of the data folder.</summary>
    public string? DataSha256 { get; init; }
    /// <summary>When the record was written, UTC, ISO 8601.</summary>
    public string? Written { get; init; }

    public const string FileName = "training.json", Format = "pictor-training";
    public const int Version = 1;

    /// <summary>The record in model folder <paramref name="dir"/> (or RUN/model), or null when it has none.</summary>
    public static TrainingRecord? Read(string dir)
    {
        string path = Path.Combine(ModelDirectory.Open(dir).Path, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            if ((string?)o["format"] != Format)
                throw new FormatException($"{path} is not a {Format} file (format '{(string?)o["format"]}')");
            return new TrainingRecord((double)o["minutes"]!, (string?)o["detail"] ?? "")
            {
                Command = (string?)o["command"], Step = (long?)o["step"], Data = (string?)o["data"],
                DataSha256 = (string?)o["data_sha256"], Written = (string?)o["written"],
            };
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException)
        {
            throw new FormatException($"{path} is not a valid training record ({e.Message}); delete it or restore it "
                + "from the model");
        }
    }

    /// <summary>Writes training.json into <paramref name="dir"/>, atomically.</summary>
    public void Write(string dir) => AtomicFile.WriteAllText(Path.Combine(dir, FileName), new JsonObject
    {
        ["format"] = Format, ["version"] = Version,
        ["minutes"] = Minutes, ["detail"] = Detail, ["command"] = Command, ["step"] = Step, ["data"] = Data,
        ["data_sha256"] = DataSha256, ["written"] = Written,
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>SHA-256 (hex) over a dataset folder's train/ and val/ files: each file's path relative to the folder
    /// ('/' separators), a zero byte, its length and its bytes, in ordinal order of the paths. Another image, caption
    /// or split gives another hash.</summary>
    public static string DataHash(string dataDir)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(
            System.Security.Cryptography.HashAlgorithmName.SHA256);
        var files = new[] { "train", "val" }.Select(s => Path.Combine(dataDir, s)).Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories))
            .Select(f => (Rel: Path.GetRelativePath(dataDir, f).Replace('\\', '/'), Full: f))
            .OrderBy(f => f.Rel, StringComparer.Ordinal);
        foreach (var (rel, full) in files)
        {
            var bytes = File.ReadAllBytes(full);
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(rel + "\0"));
            sha.AppendData(BitConverter.GetBytes((long)bytes.Length));
            sha.AppendData(bytes);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Minutes:F1} min: {Detail}");
}
