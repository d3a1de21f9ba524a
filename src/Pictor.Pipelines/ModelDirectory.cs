using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pictor.Pipelines;

/// <summary>
/// A model folder on disk, found and checked once for every family: DIR itself, or a training run's RUN/model; its
/// config.json parsed and its "format" read (which family it holds); each file it must have named with the fix when
/// it is missing; weights hashed the same way everywhere (A1111's "Model hash": the first 10 hex digits of SHA-256).
/// </summary>
public sealed class ModelDirectory
{
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors", TokenizerDir = "tokenizer";

    /// <summary>The folder that holds config.json (a run's model/ when a run was given).</summary>
    public string Path { get; }
    /// <summary>config.json's "format": pictor-diffusion, pictor-dalle, pictor-clip, pictor-vqvae.</summary>
    public string Format { get; }
    /// <summary>config.json's text, for the family's own parser.</summary>
    public string ConfigJson { get; }
    public string ConfigPath => System.IO.Path.Combine(Path, ConfigFile);

    private ModelDirectory(string path, string format, string json) { Path = path; Format = format; ConfigJson = json; }

    /// <summary>Opens <paramref name="dir"/> (a model folder, or a run folder whose model is in RUN/model).
    /// <paramref name="what"/> names the kind of model the caller wants, for the messages ("model", "CLIP
    /// model").</summary>
    public static ModelDirectory Open(string dir, string what = "model")
    {
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"{what} directory '{dir}' does not exist; pass a model folder "
                + "(models/emoji, models/shapes, ...) or a training run's folder");
        // A run folder holds its own config.json (the run's) beside model/, the exported model: weights decide.
        string model = File.Exists(System.IO.Path.Combine(dir, WeightsFile))
            || !File.Exists(System.IO.Path.Combine(dir, "model", ConfigFile)) ? dir
                : System.IO.Path.Combine(dir, "model");
        string cfg = System.IO.Path.Combine(model, ConfigFile);
        if (!File.Exists(cfg))
            throw new FileNotFoundException($"'{dir}' has no {ConfigFile}; it is not a Pictor {what} (a "
                + $"training run gets "
                + "RUN/model after its first validation)");
        string json = File.ReadAllText(cfg);
        string? format;
        try { format = (string?)JsonNode.Parse(json)?["format"]; }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new FormatException($"{cfg} is not a valid config: {e.Message}; restore it from the model's source");
        }
        return new ModelDirectory(model, format ?? "", json);
    }

    /// <summary>Opens <paramref name="dir"/> and checks that it holds <paramref name="format"/>.</summary>
    public static ModelDirectory Open(string dir, string format, string what)
    {
        var m = Open(dir, what);
        if (m.Format != format)
            throw new FormatException($"{m.ConfigPath} is not a {format} config (its format is '{m.Format}'); pass a "
                + $"{what} directory");
        return m;
    }

    /// <summary>The path of a file or folder the model must have; missing, it is an error that says the model was not
    /// saved whole.</summary>
    public string Require(string name)
    {
        string p = System.IO.Path.Combine(Path, name);
        if (!File.Exists(p) && !Directory.Exists(p))
            throw new FileNotFoundException($"'{Path}' has {ConfigFile} but no {name}; the model was not "
                + $"saved completely, "
                + "export or train it again");
        return p;
    }

    /// <summary>First 10 hex digits of the SHA-256 of a file.</summary>
    public static string HashFile(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s))[..10];
    }

    /// <summary>Several weight files hashed as one (the hash of their hashes' concatenation): for models whose images
    /// depend on more than one file, such as DALL-E's transformer and its VQ-VAE.</summary>
    public static string HashFiles(params string[] paths) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(
            string.Concat(paths.Select(HashFile)))))[..10];
}
