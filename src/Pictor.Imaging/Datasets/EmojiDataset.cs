using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Pictor.Engine.IO;

namespace Pictor.Imaging.Datasets;

/// <summary>
/// The emoji set: real art nobody here made. Images from the npm packages emoji-datasource-google (Noto Emoji,
/// Apache-2.0) and emoji-datasource-twitter (Twemoji, CC-BY-4.0), 64 px including skin-tone variants; labels from
/// emojibase-data (MIT). Each image is composited on white and captioned "{label}, {noto|twemoji} style", e.g.
/// "grinning face with big eyes, twemoji style" or "waving hand: dark skin tone, noto style". Split into train/val
/// deterministically (an FNV-1a hash of the base emoji's code points, <see cref="SplitOf"/>) so that val captions are
/// unseen in training, in one of two ways (<see cref="EmojiSplit"/>): by default one style of one base emoji in five is
/// held out (val asks for an emoji the model has seen, in the style it has not); or whole base emoji, one in ten, all
/// styles and skin tones together (val asks for emoji never seen: zero-shot). No Apple or Facebook images are used
/// (their licences forbid it).
/// </summary>
public static class EmojiDataset
{
    /// <summary>Decides an image's split from its base emoji and style. <paramref name="otherStyleHasIt"/>: whether
    /// the base emoji has an image in the other style (with <see cref="EmojiSplit.Style"/>, an emoji drawn in one style
    /// only always trains, so no val caption names an emoji training never showed).</summary>
    public static string SplitOf(EmojiSplit mode, string baseKey, int styleIndex, bool otherStyleHasIt)
    {
        uint h = Fnv1a(baseKey);
        bool val = mode == EmojiSplit.Emoji ? h % 10 == 0 : h % 5 == 0 && (h / 5) % 2 == styleIndex && otherStyleHasIt;
        return val ? "val" : "train";
    }

    public static readonly string[] Packages =
        ["emoji-datasource-google@16.0.0", "emoji-datasource-twitter@16.0.0", "emojibase-data@17.0.0"];

    /// <summary>Runs `npm pack` for the three packages into <paramref name="dir"/>; returns the tarball
    /// paths.</summary>
    public static string[] NpmPack(string dir)
    {
        Directory.CreateDirectory(dir);
        var psi = new ProcessStartInfo("npm") { WorkingDirectory = dir, RedirectStandardOutput = true,
            RedirectStandardError = true };
        psi.ArgumentList.Add("pack");
        foreach (var p in Packages) psi.ArgumentList.Add(p);
        psi.ArgumentList.Add("--silent");
        Process proc;
        try { proc = Process.Start(psi) ?? throw new InvalidOperationException("npm did not start"); }
        catch (System.ComponentModel.Win32Exception) { throw new InvalidOperationException("npm is not installed; "
            + "install Node.js and npm (apt-get install -y npm), or pass --from DIR with the three .tgz files"); }
        string stdout = proc.StandardOutput.ReadToEnd(), stderr = proc.StandardError.ReadToEnd();
        proc.WaitForExit();
        if (proc.ExitCode != 0)
            throw new InvalidOperationException($"npm pack failed (exit {proc.ExitCode}): {stderr.Trim()}");
        return FindTarballs(dir);
    }

    /// <summary>The three tarballs in <paramref name="dir"/> (as npm pack names them).</summary>
    public static string[] FindTarballs(string dir)
    {
        string Find(string prefix) => Directory.GetFiles(dir, prefix + "-*.tgz").OrderBy(f => f).LastOrDefault()
            ?? throw new FileNotFoundException(
                $"no {prefix}-*.tgz in '{dir}'; run 'npm pack {string.Join(" ", Packages)}' there");
        return [Find("emoji-datasource-google"), Find("emoji-datasource-twitter"), Find("emojibase-data")];
    }

    /// <summary>Files of a .tgz whose path satisfies <paramref name="want"/>, by path.</summary>
    internal static Dictionary<string, byte[]> ReadTgz(string path, Func<string, bool> want)
    {
        var r = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var fs = File.OpenRead(path);
        using var gz = new GZipStream(fs, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        TarEntry? e;
        while ((e = tar.GetNextEntry()) != null)
        {
            if (e.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || e.DataStream == null
                || !want(e.Name)) continue;
            using var ms = new MemoryStream();
            e.DataStream.CopyTo(ms);
            r[e.Name] = ms.ToArray();
        }
        return r;
    }

    private static string Key(string hex) =>
        string.Join("-", hex.ToUpperInvariant().Split('-').Where(p => p != "FE0F"));

    public sealed record Summary(int Train, int Val, int Emoji, int SkippedUnlabelled);

    public static Summary Build(string googleTgz, string twitterTgz, string emojibaseTgz, string outDir,
        Action<string>? log = null, EmojiSplit mode = EmojiSplit.Style, EmojiSelection? select = null)
    {
        select ??= EmojiSelection.All;
        HashSet<string>? categories = null;
        if (select.Categories is { Count: > 0 } wanted)
        {
            // Checked before anything is written: a misspelt category would otherwise make an empty or partial set.
            var known = CategoriesOf(googleTgz);
            var unknown = wanted.Where(c => !known.Contains(c)).ToList();
            if (unknown.Count > 0)
                throw new ArgumentException($"unknown emoji categor{(unknown.Count == 1 ? "y" : "ies")} "
                    + $"{string.Join(", ", unknown.Select(c => $"'{c}'"))}; "
                    + $"use a comma-separated list of: {string.Join(", ", known.Order(StringComparer.Ordinal))}");
            categories = new HashSet<string>(
                wanted.Select(c => known.First(k => string.Equals(k, c, StringComparison.OrdinalIgnoreCase))),
                StringComparer.Ordinal);
        }
        // Labels: base emoji and skin-tone variants, keyed by code points without FE0F.
        var baseFiles = ReadTgz(emojibaseTgz, n => n is "package/en/data.json" or "package/LICENSE");
        if (!baseFiles.TryGetValue("package/en/data.json", out var dataJson)) throw new DatasetFormatException(
            $"'{emojibaseTgz}' has no package/en/data.json; is it emojibase-data?");
        var labels = new Dictionary<string, string>();
        foreach (var e in JsonDocument.Parse(dataJson).RootElement.EnumerateArray())
        {
            labels[Key(e.GetProperty("hexcode").GetString()!)] = e.GetProperty("label").GetString()!;
            if (e.TryGetProperty("skins", out var skins))
                foreach (var s in skins.EnumerateArray())
                    labels[Key(s.GetProperty("hexcode").GetString()!)] = s.GetProperty("label").GetString()!;
        }

        var lines = new Dictionary<string, List<string>> { ["train"] = new(), ["val"] = new() };
        foreach (var split in lines.Keys) Directory.CreateDirectory(Path.Combine(outDir, split));
        int skipped = 0;
        var emoji = new HashSet<string>();
        var licences = new Dictionary<string, byte[]>();
        foreach (var (tgz, style, name, styleIndex, other) in new[] { (googleTgz, "google", "noto", 0, "twitter"),
            (twitterTgz, "twitter", "twemoji", 1, "google") })
        {
            log?.Invoke($"reading {Path.GetFileName(tgz)}");
            var files = ReadTgz(tgz, n => n == "package/emoji.json" || n == "package/LICENSE"
                || n.StartsWith($"package/img/{style}/64/", StringComparison.Ordinal));
            if (!files.TryGetValue("package/emoji.json", out var ej)) throw new DatasetFormatException(
                $"'{tgz}' has no package/emoji.json; is it emoji-datasource-{style}?");
            if (files.TryGetValue("package/LICENSE", out var lic))
                licences[$"emoji-datasource-{style}.LICENSE.txt"] = lic;
            foreach (var e in JsonDocument.Parse(ej).RootElement.EnumerateArray())
            {
                string category = e.TryGetProperty("category", out var cat) ? cat.GetString() ?? "" : "";
                if (categories != null && !categories.Contains(category)) continue;
                string baseKey = Key(e.GetProperty("unified").GetString()!);
                var variants = new List<(string Unified, string Image, bool Has)>
                {
                    (e.GetProperty("unified").GetString()!, e.GetProperty("image").GetString()!,
                        e.TryGetProperty($"has_img_{style}", out var h) && h.GetBoolean())
                };
                if (select.SkinTones && e.TryGetProperty("skin_variations", out var sv))
                    foreach (var v in sv.EnumerateObject())
                        variants.Add((v.Value.GetProperty("unified").GetString()!,
                            v.Value.GetProperty("image").GetString()!,
                            v.Value.TryGetProperty($"has_img_{style}", out var hv) && hv.GetBoolean()));
                string to = SplitOf(mode, baseKey, styleIndex,
                    e.TryGetProperty($"has_img_{other}", out var ho) && ho.GetBoolean());
                foreach (var (unified, imageName, has) in variants)
                {
                    if (!has || !files.TryGetValue($"package/img/{style}/64/{imageName}", out var png)) continue;
                    if (!labels.TryGetValue(Key(unified), out var label)) { skipped++; continue; }
                    var img = Image.Load(png).CompositeOver(255, 255, 255);
                    string file = $"{name}_{imageName}";
                    img.Save(Path.Combine(outDir, to, file));
                    lines[to].Add(JsonSerializer.Serialize(new Dictionary<string, string>
                    {
                        ["file_name"] = file, ["text"] = $"{label}, {name} style", ["label"] = label, ["style"] = name,
                        ["hexcode"] = Key(unified), ["base"] = baseKey, ["category"] = category,
                    }));
                    emoji.Add(baseKey);
                }
            }
        }
        if (lines["train"].Count == 0)
            throw new ArgumentException("the selection keeps no emoji images; choose other --categories");
        foreach (var (split, l) in lines)
            AtomicFile.WriteAllText(Path.Combine(outDir, split, "metadata.jsonl"), string.Join("\n", l) + "\n");
        if (baseFiles.TryGetValue("package/LICENSE", out var bl)) licences["emojibase-data.LICENSE.txt"] = bl;
        Directory.CreateDirectory(Path.Combine(outDir, "licenses"));
        foreach (var (f, b) in licences) AtomicFile.WriteAllBytes(Path.Combine(outDir, "licenses", f), b);
        AtomicFile.WriteAllText(Path.Combine(outDir, "ATTRIBUTION.md"), Attribution);
        return new Summary(lines["train"].Count, lines["val"].Count, emoji.Count, skipped);
    }

    /// <summary>The emoji-datasource categories ("Smileys & Emotion", "Animals & Nature", ...) named in a package's
    /// index.</summary>
    public static HashSet<string> CategoriesOf(string datasourceTgz)
    {
        var files = ReadTgz(datasourceTgz, n => n == "package/emoji.json");
        if (!files.TryGetValue("package/emoji.json", out var ej)) throw new DatasetFormatException(
            $"'{datasourceTgz}' has no package/emoji.json; is it emoji-datasource-google?");
        return JsonDocument.Parse(ej).RootElement.EnumerateArray()
            .Select(e => e.TryGetProperty("category", out var c) ? c.GetString() : null).OfType<string>()
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    internal static uint Fnv1a(string s)
    {
        uint h = 0x811C9DC5;
        foreach (char c in s) h = (h ^ c) * 0x01000193;
        return h;
    }

    private const string Attribution = """
        # Attribution

        This folder was made by `pictor data emoji` from three npm packages:

        - Images "noto style": Noto Emoji by Google, from the npm package emoji-datasource-google 16.0.0.
          Licensed under the Apache License 2.0 (https://github.com/googlefonts/noto-emoji/blob/main/LICENSE).
        - Images "twemoji style": Twemoji graphics by Twitter, Inc. and other contributors, from the npm package
          emoji-datasource-twitter 16.0.0. Licensed under CC-BY 4.0
          (https://creativecommons.org/licenses/by/4.0/). Changes made: composited on a white background.
        - Labels: emojibase-data 17.0.0 by Miles Johnson, MIT licence.
        - Index data: emoji-datasource by Cal Henderson, MIT licence.

        The packages' own licence files are in licenses/. No Apple or Facebook images are included.
        """;
}

/// <summary>Which emoji <c>pictor data emoji</c> keeps: some emoji-datasource categories (null or empty: all), and
/// whether skin-tone variants come with the people emoji. A smaller, denser set (say faces, animals and food without
/// skin tones: about 920 images rather than 7,600) is seen many more times in the same training budget.</summary>
public sealed record EmojiSelection(IReadOnlyList<string>? Categories, bool SkinTones)
{
    public static readonly EmojiSelection All = new(null, true);
}

/// <summary>How <c>pictor data emoji</c> holds out its val split (<see cref="EmojiDataset.SplitOf"/>).</summary>
public enum EmojiSplit
{
    /// <summary>One style of one base emoji in five, when the emoji has the other style: val emoji are seen, in the
    /// other style.</summary>
    Style,
    /// <summary>Whole base emoji, one in ten, every style and skin tone: val emoji are never seen
    /// (zero-shot).</summary>
    Emoji,
}
