using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pictor.Engine.IO;

namespace Pictor.Pipelines.Training;

/// <summary>
/// How long a model trained, as training.json in its folder ("format": "pictor-training"): the wall minutes of its
/// training steps, validations and checkpoints (summed over resumed segments), and a line saying what ran. Every
/// trainer writes it into each model/ it exports; the shipped models' files were written from the logs their pages in
/// docs/models/ cite, summing a model's parts (DALL-E's VQ-VAE and transformer, unCLIP's prior and decoder).
/// 'pictor eval families' reads it.
/// </summary>
public sealed record TrainingRecord(double Minutes, string Detail)
{
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
            return new TrainingRecord((double)o["minutes"]!, (string?)o["detail"] ?? "");
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
        ["minutes"] = Minutes, ["detail"] = Detail,
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Minutes:F1} min: {Detail}");
}
