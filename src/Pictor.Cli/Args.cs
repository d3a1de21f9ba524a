using System.Globalization;

namespace Pictor.Cli;

/// <summary>Minimal option parsing: --name value pairs and positionals, with every unknown option an error.</summary>
public sealed class Args
{
    private readonly Dictionary<string, string> options = new(StringComparer.Ordinal);
    private readonly HashSet<string> used = new(StringComparer.Ordinal);
    public List<string> Positionals { get; } = new();
    private readonly string verb;

    public Args(string verb, IEnumerable<string> args, string[] known, string[]? flags = null)
    {
        this.verb = verb;
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (!a.StartsWith("--", StringComparison.Ordinal)) { Positionals.Add(a); continue; }
            string name = a[2..];
            if (flags != null && flags.Contains(name)) { options[name] = "true"; continue; }
            if (!known.Contains(name))
                throw new ArgumentException($"unknown option '{a}' for '{verb}'; it takes {string.Join(", ", known.Concat(flags ?? []).Select(k => "--" + k))}");
            if (i + 1 >= list.Count) throw new ArgumentException($"option '{a}' of '{verb}' needs a value");
            options[name] = list[++i];
        }
    }

    public string Required(string name) =>
        options.TryGetValue(name, out var v) ? v : throw new ArgumentException($"'{verb}' needs --{name}");

    public string? Optional(string name) => options.TryGetValue(name, out var v) ? v : null;

    public bool Flag(string name) => options.ContainsKey(name);

    public int Int(string name, int fallback, int min, int max)
    {
        if (!options.TryGetValue(name, out var v)) return fallback;
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int r))
            throw new ArgumentException($"--{name} must be a whole number, got '{v}'");
        if (r < min || r > max) throw new ArgumentException($"--{name} must be between {min} and {max}, got {r}");
        return r;
    }

    public float Float(string name, float fallback, float min, float max)
    {
        if (!options.TryGetValue(name, out var v)) return fallback;
        if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float r) || !float.IsFinite(r))
            throw new ArgumentException($"--{name} must be a number, got '{v}'");
        if (r < min || r > max) throw new ArgumentException($"--{name} must be between {min} and {max}, got {r}");
        return r;
    }

    /// <summary>The option names the user actually passed.</summary>
    public IEnumerable<string> Given => options.Keys;

    public ulong ULong(string name, ulong fallback)
    {
        if (!options.TryGetValue(name, out var v)) return fallback;
        return ulong.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong r) ? r : throw new ArgumentException($"--{name} must be a non-negative whole number, got '{v}'");
    }

    public void NoPositionals()
    {
        if (Positionals.Count > 0) throw new ArgumentException($"'{verb}' takes no argument '{Positionals[0]}'");
    }
}
