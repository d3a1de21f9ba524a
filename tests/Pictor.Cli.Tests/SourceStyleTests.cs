namespace Pictor.Cli.Tests;

/// <summary>House style checks over the repository's sources (not the built assemblies).</summary>
public class SourceStyleTests
{
    private const int MaxLineLength = 120;

    /// <summary>Paths (relative to the repository root, '/' separated) that are not checked: folders end with '/',
    /// files are matched by name anywhere under src/. Empty now that every file is wrapped; keep it that way.</summary>
    private static readonly string[] ExcludedPaths = [];

    /// <summary>Single lines ("src/...cs:LINE") allowed to stay long, e.g. a raw string literal that cannot be
    /// split. Empty now; keep it that way.</summary>
    private static readonly string[] AllowedLongLines = [];

    [Fact]
    public void Source_lines_stay_within_120_characters()
    {
        string root = RepoRoot();
        string src = Path.Combine(root, "src");
        var offenders = new List<string>();
        var files = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal);
        foreach (var file in files)
        {
            string rel = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (rel.Contains("/bin/", StringComparison.Ordinal) || rel.Contains("/obj/", StringComparison.Ordinal))
                continue;
            if (ExcludedPaths.Any(x => x.EndsWith('/') ? rel.StartsWith(x, StringComparison.Ordinal)
                : Path.GetFileName(rel) == x)) continue;
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                string where = $"{rel}:{i + 1}";
                if (lines[i].Length > MaxLineLength && !AllowedLongLines.Contains(where))
                    offenders.Add($"{where} ({lines[i].Length} characters)");
            }
        }
        Assert.True(offenders.Count == 0,
            $"{offenders.Count} source lines are longer than {MaxLineLength} characters:\n"
                + string.Join('\n', offenders));
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Pictor.slnx"))) return d.FullName;
        throw new DirectoryNotFoundException($"no Pictor.slnx above {AppContext.BaseDirectory}");
    }
}
