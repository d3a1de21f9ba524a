using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Pictor.Cli;

/// <summary>
/// Options declared once, each with its type, default and allowed range: the parser turns a bad value into one line
/// naming the option and what it takes (exit 2), and `pictor VERB --help` lists the default beside the description.
/// </summary>
internal static class CliOptions
{
    /// <summary>A whole-number option in [min, max] with a default.</summary>
    public static Option<int> Int(string name, string description, int fallback, int min, int max,
        params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            DefaultValueFactory = _ => fallback,
            CustomParser = r => ParseInt(r, name, min, max),
        };

    /// <summary>A whole-number option in [min, max] whose absence means "the model's own default".</summary>
    public static Option<int?> IntOrModel(string name, string description, int min, int max, params string[] aliases) =>
        new(name, aliases) { Description = description, CustomParser = r => ParseInt(r, name, min, max) };

    /// <summary>A number option in [min, max] with a default.</summary>
    public static Option<float> Float(string name, string description, float fallback, float min, float max) =>
        new(name)
        {
            Description = description,
            DefaultValueFactory = _ => fallback,
            CustomParser = r => ParseFloat(r, name, min, max),
        };

    /// <summary>A number option in [min, max] whose absence means "the model's own default".</summary>
    public static Option<float?> FloatOrModel(string name, string description, float min, float max) =>
        new(name) { Description = description, CustomParser = r => ParseFloat(r, name, min, max) };

    /// <summary>A non-negative 64-bit whole number (seeds).</summary>
    public static Option<ulong> ULong(string name, string description, ulong fallback) =>
        new(name)
        {
            Description = description,
            DefaultValueFactory = _ => fallback,
            CustomParser = r =>
            {
                string v = Token(r);
                if (ulong.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong x)) return x;
                r.AddError($"{name} must be a non-negative whole number, got '{v}'");
                return 0;
            },
        };

    /// <summary>A text option (a path, a prompt); <paramref name="required"/> makes its absence a usage
    /// error.</summary>
    public static Option<string> Text(string name, string description, bool required = false, string? fallback = null)
    {
        var o = new Option<string>(name) { Description = description, Required = required };
        if (fallback != null) o.DefaultValueFactory = _ => fallback;
        return o;
    }

    /// <summary>A text option that takes one of <paramref name="choices"/>.</summary>
    public static Option<string> Choice(string name, string description, string fallback, params string[] choices)
    {
        var o = new Option<string>(name) { Description = description, DefaultValueFactory = _ => fallback };
        o.Validators.Add(r =>
        {
            string? v = r.Tokens.Count > 0 ? r.Tokens[^1].Value : null;
            if (v != null && !choices.Contains(v, StringComparer.Ordinal))
                r.AddError($"{name} must be one of {string.Join(", ", choices)}, got '{v}'");
        });
        o.CompletionSources.Add(choices);
        return o;
    }

    /// <summary>An on/off switch.</summary>
    public static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    private static string Token(ArgumentResult r) => r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";

    private static int ParseInt(ArgumentResult r, string name, int min, int max)
    {
        string v = Token(r);
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x))
        {
            r.AddError($"{name} must be a whole number, got '{v}'");
            return 0;
        }
        if (x < min || x > max) r.AddError($"{name} must be between {min} and {max}, got {x}");
        return x;
    }

    private static float ParseFloat(ArgumentResult r, string name, float min, float max)
    {
        string v = Token(r);
        if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float x) || !float.IsFinite(x))
        {
            r.AddError($"{name} must be a number, got '{v}'");
            return 0;
        }
        if (x < min || x > max)
            r.AddError(string.Create(CultureInfo.InvariantCulture, $"{name} must be between {min} and {max}, got {x}"));
        return x;
    }

    /// <summary>Whether the user typed <paramref name="option"/> (rather than its default applying).</summary>
    public static bool Given(this ParseResult p, Option option) => p.GetResult(option) is { Implicit: false };
}
