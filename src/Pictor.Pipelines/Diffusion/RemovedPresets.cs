namespace Pictor.Pipelines.Diffusion;

/// <summary>
/// The experimental diffusion presets that no shipped model used, removed from src/ with the code only they reached.
/// Their results stay in docs/derivations/binding.md and bench/RESULTS.md; their code can still be read at
/// <see cref="Commit"/> (<c>git show ef11403:src/Pictor.Pipelines/Diffusion/DiffusionConfig.cs</c>). A config.json
/// or a --preset that names one of them is refused with a message saying so, rather than as an unknown name.
/// </summary>
public static class RemovedPresets
{
    /// <summary>The last commit whose src/ holds the removed presets.</summary>
    public const string Commit = "ef11403";

    public static readonly string[] Names =
    [
        "xs-coord", "xs-pos", "xs-bind", "xs-rel", "xs-blob", "xs-phrase", "xs-rel-phrase", "xs-rel-rope",
        "xs-rel-split", "xs-rel-sum",
    ];

    /// <summary>config.json fields that only removed presets wrote, with the preset each came from; a preset that wrote
    /// several (xs-rel-sum: both layout fields and text.rotary) comes before those it was built on.</summary>
    public static readonly (string Field, string Preset)[] Fields =
    [
        ("cross_attention_adds_layout", "xs-rel-sum"), ("layout_text", "xs-rel-split"),
        ("text.rotary", "xs-rel-rope"), ("text.phrase_width", "xs-phrase"),
        ("unet.token_slope_width", "xs-rel-phrase"), ("unet.self_attention", "xs-bind"),
    ];

    /// <summary>Why <paramref name="preset"/> is not offered, when it is a removed one; null otherwise.</summary>
    public static string? Why(string preset) => Names.Contains(preset)
        ? $"preset '{preset}' was removed from Pictor (no shipped model used it); its code can still be read at "
          + $"commit {Commit}"
        : null;

    /// <summary>The one-line error for a config that sets <paramref name="field"/> of the removed
    /// <paramref name="preset"/>.</summary>
    public static string FieldMessage(string source, string field, string preset) =>
        $"{source} sets {field}, which only preset {preset} used; that preset was removed from Pictor, and its code "
        + $"can still be read at commit {Commit} (run this model with Pictor at that commit)";
}
