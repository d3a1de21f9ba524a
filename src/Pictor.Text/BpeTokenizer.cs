using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Pictor.Engine.IO;

namespace Pictor.Text;

/// <summary>
/// Byte-level BPE (Sennrich et al. 2016; byte-level as in GPT-2, Radford et al. 2019). Text is normalised (NFC,
/// lowercase, whitespace runs collapsed to one space, trimmed), split by the GPT-2 pre-tokenisation pattern, each
/// piece's UTF-8 bytes are mapped to printable characters (GPT-2's bytes_to_unicode), and learned merges are applied by
/// rank. Any Unicode text encodes, and decodes back to its normalised form. Saved as vocab.json + merges.txt, the
/// GPT-2 / CLIP layout. Special tokens: &lt;|pad|&gt;, &lt;|bos|&gt;, &lt;|eos|&gt; and &lt;|null|&gt; (the empty
/// caption for classifier-free guidance), with ids 0-3.
/// </summary>
public sealed partial class BpeTokenizer
{
    public const string Pad = "<|pad|>", Bos = "<|bos|>", Eos = "<|eos|>", Null = "<|null|>";
    public static readonly string[] Specials = [Pad, Bos, Eos, Null];
    public int PadId => 0;
    public int BosId => 1;
    public int EosId => 2;
    public int NullId => 3;

    private readonly Dictionary<string, int> vocab;
    private readonly string[] idToToken;
    private readonly Dictionary<(string, string), int> mergeRank;
    public IReadOnlyList<(string A, string B)> Merges { get; }
    public bool Normalise { get; }
    public int VocabSize => idToToken.Length;

    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex PreTokenize();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    private static readonly char[] ByteToChar = MakeByteMap();
    private static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, i) => (c, (byte)i))
        .ToDictionary(p => p.c, p => p.Item2);

    /// <summary>GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards.</summary>
    private static char[] MakeByteMap()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    private BpeTokenizer(Dictionary<string, int> vocab, List<(string, string)> merges, bool normalise)
    {
        this.vocab = vocab;
        idToToken = new string[vocab.Count];
        foreach (var (t, id) in vocab)
        {
            if (id < 0 || id >= vocab.Count || idToToken[id] != null)
                throw new FormatException($"vocab ids must be 0..{vocab.Count - 1} with no repeats; id {id} "
                    + $"('{t}') breaks that");
            idToToken[id] = t;
        }
        for (int i = 0; i < Specials.Length; i++)
            if (!vocab.TryGetValue(Specials[i], out int sid) || sid != i)
                throw new FormatException($"special token {Specials[i]} must have id {i}");
        Merges = merges;
        mergeRank = new Dictionary<(string, string), int>();
        for (int i = 0; i < merges.Count; i++) mergeRank.TryAdd(merges[i], i);
        Normalise = normalise;
    }

    public static string NormaliseText(string s) => Whitespace().Replace(s.Normalize(NormalizationForm.FormC)
        .ToLowerInvariant(), " ").Trim();

    // ------------------------------------------------------------ training

    /// <summary>
    /// Learns merges from <paramref name="texts"/> until the vocabulary (4 specials + 256 bytes + merges) reaches
    /// <paramref name="vocabSize"/> or no pair occurs twice. Each round merges the most frequent adjacent pair; ties go
    /// to the ordinally smallest pair, so training is deterministic.
    /// </summary>
    public static BpeTokenizer Train(IEnumerable<string> texts, int vocabSize, bool normalise = true)
    {
        int baseSize = Specials.Length + 256;
        if (vocabSize < baseSize)
            throw new ArgumentException($"vocabulary size {vocabSize} is below the {baseSize} base tokens (4 "
                + $"specials + 256 bytes)");
        var wordCounts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in texts)
            foreach (var piece in Pieces(normalise ? NormaliseText(t) : t))
                wordCounts[piece] = wordCounts.GetValueOrDefault(piece) + 1;
        var words = wordCounts.Select(kv => (Symbols: kv.Key.Select(c => c.ToString()).ToList(), Count: kv.Value))
            .ToList();

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var s in Specials) vocab[s] = vocab.Count;
        foreach (char c in ByteToChar) vocab[c.ToString()] = vocab.Count;
        var merges = new List<(string, string)>();
        while (vocab.Count < vocabSize)
        {
            var pairs = new Dictionary<(string, string), long>();
            foreach (var (sym, count) in words)
                for (int i = 0; i + 1 < sym.Count; i++)
                {
                    var p = (sym[i], sym[i + 1]);
                    pairs[p] = pairs.GetValueOrDefault(p) + count;
                }
            if (pairs.Count == 0) break;
            var best = pairs.OrderByDescending(p => p.Value).ThenBy(p => p.Key.Item1, StringComparer.Ordinal)
                .ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First();
            if (best.Value < 2) break;
            var (a, b) = best.Key;
            merges.Add((a, b));
            string merged = a + b;
            if (!vocab.ContainsKey(merged)) vocab[merged] = vocab.Count;
            foreach (var (sym, _) in words)
                for (int i = 0; i + 1 < sym.Count; i++)
                    if (sym[i] == a && sym[i + 1] == b) { sym[i] = merged; sym.RemoveAt(i + 1); }
        }
        return new BpeTokenizer(vocab, merges, normalise);
    }

    /// <summary>Pre-tokenised pieces of <paramref name="text"/>, each as byte-mapped characters.</summary>
    private static IEnumerable<string> Pieces(string text)
    {
        foreach (Match m in PreTokenize().Matches(text))
        {
            var bytes = Encoding.UTF8.GetBytes(m.Value);
            var sb = new StringBuilder(bytes.Length);
            foreach (byte b in bytes) sb.Append(ByteToChar[b]);
            yield return sb.ToString();
        }
    }

    // ------------------------------------------------------------ encode / decode

    /// <summary>Token ids of <paramref name="text"/> (no bos/eos).</summary>
    public int[] Encode(string text)
    {
        var ids = new List<int>();
        foreach (var piece in Pieces(Normalise ? NormaliseText(text) : text)) EncodePiece(piece, ids);
        return ids.ToArray();
    }

    /// <summary>Where each word of <paramref name="text"/> lands in <see cref="Encode"/>'s ids: one entry per
    /// pre-tokenisation piece (a word with its leading space, a number, a punctuation run), in order, with the piece's
    /// text trimmed of spaces (normalised: lowercase) and the range [Start, Start + Count) of the ids it became. Pieces
    /// are encoded independently, so the ranges tile Encode(text) exactly.</summary>
    public List<(string Word, int Start, int Count)> WordSpans(string text)
    {
        var spans = new List<(string, int, int)>();
        var ids = new List<int>();
        foreach (var piece in Pieces(Normalise ? NormaliseText(text) : text))
        {
            int start = ids.Count;
            EncodePiece(piece, ids);
            spans.Add((Encoding.UTF8.GetString(piece.Select(c => CharToByte[c]).ToArray()).Trim(), start,
                ids.Count - start));
        }
        return spans;
    }

    /// <summary>Applies the merges by rank to one piece's byte characters and appends the resulting ids.</summary>
    private void EncodePiece(string piece, List<int> ids)
    {
        var sym = piece.Select(c => c.ToString()).ToList();
        while (sym.Count > 1)
        {
            int bestRank = int.MaxValue, at = -1;
            for (int i = 0; i + 1 < sym.Count; i++)
                if (mergeRank.TryGetValue((sym[i], sym[i + 1]), out int r) && r < bestRank) { bestRank = r; at = i; }
            if (at < 0) break;
            sym[at] += sym[at + 1];
            sym.RemoveAt(at + 1);
        }
        foreach (var s in sym) ids.Add(vocab[s]);
    }

    /// <summary>Text of <paramref name="ids"/>; special tokens are skipped. Bytes that are not valid UTF-8 become
    /// U+FFFD.</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)idToToken.Length)
                throw new ArgumentException($"token id {id} is outside the vocabulary (0..{idToToken.Length - 1})");
            if (id < Specials.Length) continue;
            foreach (char c in idToToken[id]) bytes.Add(CharToByte[c]);
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>Captions -> model input ids [N, context], one <see cref="EncodeForModel"/> row each.</summary>
    public Pictor.Engine.IntTensor EncodeBatch(IReadOnlyList<string> captions, int context, bool truncate = false)
    {
        var ids = new int[captions.Count * context];
        for (int i = 0; i < captions.Count; i++)
            EncodeForModel(captions[i], context, truncate).CopyTo(ids, i * context);
        return new Pictor.Engine.IntTensor(ids, captions.Count, context);
    }

    /// <summary>The text a model with this context actually reads: <paramref name="text"/> itself when it fits, else
    /// the decoded tokens that <see cref="EncodeForModel"/> keeps when truncating (what 'generate --truncate'
    /// records).</summary>
    public string Fit(string text, int context)
    {
        if (string.IsNullOrWhiteSpace(text) || Encode(text).Length + 2 <= context) return text;
        return Decode(EncodeForModel(text, context, truncate: true).Where(t => t > NullId).ToArray());
    }

    /// <summary>
    /// A model's fixed-length input: [bos] tokens [eos] then pad up to <paramref name="context"/>. A prompt that does
    /// not fit is an error naming both lengths, unless <paramref name="truncate"/> (then the tokens are cut and eos
    /// kept). An empty prompt encodes as [bos] &lt;|null|&gt; [eos], the unconditional caption for classifier-free
    /// guidance.
    /// </summary>
    public int[] EncodeForModel(string text, int context, bool truncate = false)
    {
        if (context < 3)
            throw new ArgumentException($"context must hold at least bos, one token and eos; got {context}");
        var toks = string.IsNullOrWhiteSpace(text) ? [NullId] : Encode(text);
        if (toks.Length + 2 > context)
        {
            if (!truncate)
                throw new ArgumentException($"prompt has {toks.Length} tokens, the model takes {context - 2} (context "
                    + $"{context} with bos and eos); shorten it or pass --truncate");
            toks = toks[..(context - 2)];
        }
        var r = new int[context];
        r[0] = BosId;
        toks.CopyTo(r, 1);
        r[toks.Length + 1] = EosId;
        for (int i = toks.Length + 2; i < context; i++) r[i] = PadId;
        return r;
    }

    public string TokenOf(int id) => idToToken[id];
    public int? IdOf(string token) => vocab.TryGetValue(token, out int id) ? id : null;

    // ------------------------------------------------------------ files

    /// <summary>Writes DIR/vocab.json and DIR/merges.txt atomically (merges.txt starts with "#version: 0.2", as
    /// GPT-2's; a "#pictor normalise=..." line records the normalisation).</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        var ordered = idToToken.Select((t, i) => new KeyValuePair<string, int>(t, i));
        var json = JsonSerializer.Serialize(ordered.ToDictionary(p => p.Key, p => p.Value),
            new JsonSerializerOptions { WriteIndented = false,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        AtomicFile.WriteAllText(Path.Combine(dir, "vocab.json"), json);
        var sb = new StringBuilder("#version: 0.2\n");
        sb.Append(CultureInfo.InvariantCulture, $"#pictor normalise={(Normalise ? "true" : "false")}\n");
        foreach (var (a, b) in Merges) sb.Append(a).Append(' ').Append(b).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(dir, "merges.txt"), sb.ToString());
    }

    public static BpeTokenizer Load(string dir)
    {
        string vp = Path.Combine(dir, "vocab.json"), mp = Path.Combine(dir, "merges.txt");
        if (!File.Exists(vp) || !File.Exists(mp))
            throw new FileNotFoundException($"tokenizer folder '{dir}' needs vocab.json and merges.txt; train one with "
                + $"'pictor tokenizer train'");
        Dictionary<string, int> vocab;
        try { vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(vp))
            ?? throw new FormatException("empty vocab.json"); }
        catch (JsonException e) { throw new FormatException($"'{vp}' is not a JSON object of token to id: "
            + $"{e.Message}"); }
        var merges = new List<(string, string)>();
        bool normalise = true;
        int lineNo = 0;
        foreach (var line in File.ReadLines(mp))
        {
            lineNo++;
            if (line.StartsWith("#pictor normalise=", StringComparison.Ordinal)) { normalise = line.EndsWith("true",
                StringComparison.Ordinal); continue; }
            if (line.StartsWith('#') || line.Length == 0) continue;
            int sp = line.IndexOf(' ');
            if (sp <= 0 || sp == line.Length - 1 || line.IndexOf(' ', sp + 1) >= 0)
                throw new FormatException($"'{mp}' line {lineNo}: expected two symbols separated by one "
                    + $"space, got '{line}'");
            var (a, b) = (line[..sp], line[(sp + 1)..]);
            if (!vocab.ContainsKey(a) || !vocab.ContainsKey(b) || !vocab.ContainsKey(a + b))
                throw new FormatException($"'{mp}' line {lineNo}: merge '{line}' uses symbols missing from vocab.json");
            merges.Add((a, b));
        }
        return new BpeTokenizer(vocab, merges, normalise);
    }
}
