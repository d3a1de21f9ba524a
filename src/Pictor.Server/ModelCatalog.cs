using Pictor.Pipelines;
using Pictor.Pipelines.Clip;

namespace Pictor.Server;

/// <summary>
/// The text-to-image models the server offers, loaded once at start, by name (the directory's name). The first is the
/// default for requests that name none. A CLIP model found beside them reranks candidates for the generators whose
/// image size it scores.
/// </summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, TextToImage> byName = new(StringComparer.Ordinal);
    private readonly List<TextToImage> ordered = [];

    public ModelCatalog(IEnumerable<TextToImage> models)
    {
        foreach (var m in models)
        {
            if (!byName.TryAdd(m.Name, m))
                throw new ArgumentException($"two models are named '{m.Name}'; give each a distinct name");
            ordered.Add(m);
        }
        if (ordered.Count == 0)
            throw new ArgumentException("no text-to-image model to serve; pass --models DIR, a folder of model "
                + "directories (the repository's models/ has emoji, emoji-dalle and shapes)");
    }

    public IReadOnlyList<TextToImage> Models => ordered;
    public TextToImage Default => ordered[0];

    public TextToImage? Find(string name) => byName.GetValueOrDefault(name);

    /// <summary>Loads every text-to-image model directory directly under <paramref name="dir"/> (or
    /// <paramref name="dir"/> itself when it is one), skipping CLIP and VQ-VAE folders: a CLIP folder becomes the
    /// reranker of the generators of its image size. <paramref name="log"/> hears one line per folder.</summary>
    public static ModelCatalog Load(string dir, Action<string>? log = null)
    {
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"models folder '{dir}' does not exist; pass --models DIR with "
                + "model directories in it (the repository's models/)");
        var dirs = File.Exists(Path.Combine(dir, ModelDirectory.ConfigFile)) ? [dir]
            : Directory.GetDirectories(dir).Order(StringComparer.Ordinal)
                .Where(d => File.Exists(Path.Combine(d, ModelDirectory.ConfigFile))).ToList();
        var clips = new List<string>();
        var generators = new List<string>();
        foreach (var d in dirs)
        {
            var m = ModelDirectory.Open(d);
            if (m.Format == ClipPipeline.Format)
                clips.Add(d);
            else if (m.Format == Pipelines.Vq.VqModel.Format) log?.Invoke($"skipped {d}: a VQ-VAE tokenizer");
            else generators.Add(d);
        }
        var models = new List<TextToImage>();
        foreach (var d in generators)
        {
            TextToImage? t2i = null;
            string? clip = null;
            foreach (var c in clips)
            {
                // Load refuses a CLIP of another image size (ArgumentException): try the next, then none.
                try { t2i = TextToImage.Load(d, c); clip = c; break; }
                catch (ArgumentException) { }
            }
            t2i ??= TextToImage.Load(d);
            t2i.Name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(d)));
            log?.Invoke($"loaded {t2i.Name}: {t2i.Family}, {t2i.ImageSize}x{t2i.ImageSize}"
                + (clip != null ? $", reranked by {Path.GetFileName(clip)}" : ""));
            models.Add(t2i);
        }
        return new ModelCatalog(models);
    }
}
