using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Pictor.Engine.IO;

namespace Pictor.Pipelines;

/// <summary>One line of a weights manifest: a weights file (relative to the model directory, '/' separated) and the
/// SHA-256 it had when the model was shipped (64 lower-case hex digits).</summary>
public sealed record WeightsEntry(string Path, string Sha256);

/// <summary>
/// DIR/weights.sha256: the full SHA-256 of every weights file (*.safetensors) of a model directory, of any family.
/// It is a separate file so that recording a hash changes neither the weights nor config.json, and so nothing that
/// feeds an image (weights, config, tokenizer; the PNG metadata's 10-digit hash is of model.safetensors) changes.
/// The format is GNU coreutils' own, so 'sha256sum -c weights.sha256' in the folder checks it without Pictor, and
/// 'sha256sum FILES > weights.sha256' writes one; its first line, a comment coreutils skips, names the format and
/// version:
/// <code>
/// # pictor-weights-sha256 1: check with 'sha256sum -c weights.sha256' in this folder
/// 3f0c...e1  model.safetensors
/// 9ab2...07  vqvae/model.safetensors
/// </code>
/// Paths are relative and stay inside the folder. A file without the header (written by sha256sum) reads as version 1.
/// </summary>
public static partial class WeightsManifest
{
    public const string FileName = "weights.sha256", Format = "pictor-weights-sha256";
    public const int Version = 1;

    /// <summary>The weights files of a model directory: every *.safetensors below it, relative, '/' separated,
    /// sorted.</summary>
    public static IReadOnlyList<string> WeightsFiles(string dir) =>
        Directory.EnumerateFiles(dir, "*.safetensors", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(dir, f).Replace('\\', '/')).Order(StringComparer.Ordinal).ToList();

    /// <summary>The full SHA-256 of a file, lower-case hex.</summary>
    public static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    /// <summary>Writes DIR/weights.sha256 for the weights files there now (atomically). Run it only on weights you
    /// mean to ship: afterwards <see cref="Verify"/> accepts exactly these bytes.</summary>
    public static void Write(string dir)
    {
        var files = WeightsFiles(dir);
        if (files.Count == 0)
            throw new FileNotFoundException($"'{dir}' has no *.safetensors file to record; save the model there first");
        var sb = new StringBuilder($"# {Format} {Version}: check with 'sha256sum -c {FileName}' in this folder\n");
        foreach (var f in files) sb.Append(CultureInfo.InvariantCulture, $"{Sha256(Path.Combine(dir, f))}  {f}\n");
        AtomicFile.WriteAllText(Path.Combine(dir, FileName), sb.ToString());
    }

    /// <summary>Reads DIR/weights.sha256; a missing file, a later version or a malformed line throws, saying which line
    /// and how to fix it.</summary>
    public static IReadOnlyList<WeightsEntry> Read(string dir)
    {
        string path = Path.Combine(dir, FileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} is missing, so the weights cannot be checked; {RecordHint(dir)}");
        var entries = new List<WeightsEntry>();
        var lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.Length == 0) continue;
            if (line.StartsWith('#'))
            {
                var h = Header().Match(line);
                if (h.Success && int.Parse(h.Groups[1].Value, CultureInfo.InvariantCulture) != Version)
                    throw new FormatException($"{path} is {Format} version {h.Groups[1].Value}; "
                                              + $"this Pictor reads version {Version}. Update Pictor.");
                continue;
            }
            var m = Line().Match(line);
            string rel = m.Success ? m.Groups[2].Value.Replace('\\', '/') : "";
            if (rel.StartsWith("./", StringComparison.Ordinal)) rel = rel[2..];
            if (!m.Success || rel.Length == 0 || Path.IsPathRooted(rel) || rel.Split('/').Contains(".."))
                throw new FormatException($"{path} line {i + 1} is not '<64 hex digits>  <path inside the folder>': "
                                          + $"'{line}'; {RecordHint(dir)}");
            entries.Add(new(rel, m.Groups[1].Value.ToLowerInvariant()));
        }
        return entries;
    }

    /// <summary>Checks every weights file of DIR against weights.sha256: each is listed, each listed file exists, and
    /// each hash matches. Returns Ok and a one-line detail: the 10-digit hashes when all match, else the first problem,
    /// naming the file and the fix.</summary>
    public static (bool Ok, string Detail) Verify(string dir)
    {
        IReadOnlyList<WeightsEntry> entries;
        try { entries = Read(dir); }
        catch (Exception e) when (e is FileNotFoundException or FormatException) { return (false, e.Message); }
        string manifest = Path.Combine(dir, FileName);
        var listed = entries.Select(e => e.Path).ToHashSet(StringComparer.Ordinal);
        foreach (var f in WeightsFiles(dir).Where(f => !listed.Contains(f)))
            return (false, $"{Path.Combine(dir, f)} is not listed in {manifest}; if it belongs to the model, "
                           + RecordHint(dir));
        var ok = new List<string>();
        foreach (var e in entries)
        {
            string file = Path.Combine(dir, e.Path);
            if (!File.Exists(file))
                return (false, $"{manifest} lists {e.Path}, but {file} is missing; "
                               + $"restore it (git checkout -- {file}, or copy the model again)");
            string actual = Sha256(file);
            if (actual != e.Sha256)
                return (false, $"{file} has SHA-256 {actual}, {manifest} records {e.Sha256}: the file was changed or "
                               + $"damaged. Restore it (git checkout -- {file}, or copy the model again); "
                               + $"if the new weights are meant, {RecordHint(dir)}");
            ok.Add($"{e.Path} {actual[..10]}");
        }
        return entries.Count == 0 ? (false, $"{manifest} lists no files; {RecordHint(dir)}")
                                  : (true, string.Join(", ", ok) + $" match {FileName}");
    }

    /// <summary>How to (re)record the hashes of DIR's weights, as a shell command that needs no Pictor.</summary>
    private static string RecordHint(string dir)
    {
        var files = Directory.Exists(dir) ? WeightsFiles(dir) : [];
        string list = files.Count > 0 ? string.Join(' ', files) : "model.safetensors";
        return $"record them with: cd {dir} && sha256sum {list} > {FileName}";
    }

    [GeneratedRegex(@"^#\s*pictor-weights-sha256\s+(\d+)\b")]
    private static partial Regex Header();

    [GeneratedRegex(@"^([0-9a-fA-F]{64}) [ *](.+)$")]
    private static partial Regex Line();
}
