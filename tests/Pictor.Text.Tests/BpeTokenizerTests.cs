using System.Text;
using Pictor.Engine;
using Pictor.Text;

namespace Pictor.Text.Tests;

public class BpeTokenizerTests
{
    private static readonly string[] Corpus =
    [
        "grinning face with big eyes, twemoji style", "waving hand: dark skin tone, noto style", "smiling cat face, noto style",
        "a small red circle on the left", "a blue square above a green triangle", "three yellow circles", "Crème brûlée 🍮 café",
        "two purple squares", "a large white triangle at the bottom", "grinning cat, twemoji style", "red heart, noto style",
    ];

    private static string RandomUnicode(Rng r, int n)
    {
        var sb = new StringBuilder();
        while (sb.Length < n)
        {
            int cp = r.NextInt(4) switch { 0 => 32 + r.NextInt(95), 1 => 0xA0 + r.NextInt(0x2000), 2 => 0x1F300 + r.NextInt(0x300), _ => 0x4E00 + r.NextInt(0x5000) };
            sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }

    [Fact]
    public void Word_spans_tile_the_encoding_and_name_each_word()
    {
        var tok = BpeTokenizer.Train(Corpus, 400);
        var r = new Rng(2);
        foreach (var text in Corpus.Append("  A   RED\tcircle, left of 12 cats ").Concat(Enumerable.Range(0, 50).Select(_ => RandomUnicode(r, 1 + r.NextInt(30)))))
        {
            var spans = tok.WordSpans(text);
            var ids = tok.Encode(text);
            int at = 0;
            foreach (var (word, start, count) in spans)
            {
                Assert.Equal(at, start);
                Assert.True(count >= 1, $"'{word}' in '{text}' has no tokens");
                Assert.Equal(word, tok.Decode(ids.AsSpan(start, count)).Trim());   // each span decodes to its own word
                at += count;
            }
            Assert.Equal(ids.Length, at);
        }
        Assert.Equal(new[] { "a", "red", "circle", ",", "left", "of", "12", "cats" }, tok.WordSpans("  A   RED\tcircle, left of 12 cats ").Select(w => w.Word));
    }

    [Fact]
    public void Round_trips_any_unicode_exactly_without_normalisation_and_to_normal_form_with_it()
    {
        var raw = BpeTokenizer.Train(Corpus, 400, normalise: false);
        var norm = BpeTokenizer.Train(Corpus, 400, normalise: true);
        var r = new Rng(1);
        for (int i = 0; i < 300; i++)
        {
            string s = RandomUnicode(r, 1 + r.NextInt(40));
            Assert.Equal(s, raw.Decode(raw.Encode(s)));
            Assert.Equal(BpeTokenizer.NormaliseText(s), norm.Decode(norm.Encode(s)));
        }
        Assert.Equal("tabs\tand\nnewlines  stay", raw.Decode(raw.Encode("tabs\tand\nnewlines  stay")));
        Assert.Equal("a red circle", norm.Decode(norm.Encode("  A   RED\tcircle ")));
    }

    [Fact]
    public void Training_is_deterministic_learns_frequent_words_and_respects_the_size()
    {
        var a = BpeTokenizer.Train(Corpus, 400);
        var b = BpeTokenizer.Train(Corpus.Reverse(), 400);   // order of texts must not matter
        Assert.Equal(a.Merges, b.Merges);
        Assert.True(a.VocabSize <= 400);
        var ids = a.Encode("twemoji style");
        Assert.Equal(" style", a.Decode(ids[^1..]));   // " style" (6 occurrences) became one token
        Assert.True(a.Encode("noto style").Length < "noto style".Length);
        var e = Assert.Throws<ArgumentException>(() => BpeTokenizer.Train(Corpus, 100));
        Assert.Contains("below the 260 base tokens", e.Message);
    }

    [Fact]
    public void Saves_and_loads_in_the_gpt2_layout()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-bpe").FullName;
        var t = BpeTokenizer.Train(Corpus, 350);
        t.Save(dir);
        Assert.StartsWith("#version: 0.2", File.ReadAllText(Path.Combine(dir, "merges.txt")));
        var u = BpeTokenizer.Load(dir);
        Assert.Equal(t.VocabSize, u.VocabSize);
        foreach (var s in Corpus) Assert.Equal(t.Encode(s), u.Encode(s));
        Assert.Equal(0, u.IdOf("<|pad|>")); Assert.Equal(3, u.IdOf("<|null|>"));

        File.AppendAllText(Path.Combine(dir, "merges.txt"), "zz qq\n");
        var e = Assert.Throws<FormatException>(() => BpeTokenizer.Load(dir));
        Assert.Contains("uses symbols missing from vocab.json", e.Message);
        Assert.Throws<FileNotFoundException>(() => BpeTokenizer.Load(Path.Combine(dir, "nope")));
    }

    [Fact]
    public void Model_input_has_bos_eos_padding_null_caption_and_a_clear_length_error()
    {
        var t = BpeTokenizer.Train(Corpus, 300);
        var ids = t.EncodeForModel("red heart", 16);
        Assert.Equal(16, ids.Length);
        Assert.Equal(t.BosId, ids[0]);
        int eos = Array.IndexOf(ids, t.EosId);
        Assert.Equal("red heart", t.Decode(ids.AsSpan(1, eos - 1)));
        Assert.All(ids[(eos + 1)..], v => Assert.Equal(t.PadId, v));
        Assert.Equal(new[] { t.BosId, t.NullId, t.EosId, t.PadId }, t.EncodeForModel("", 4));

        string longPrompt = string.Join(" ", Enumerable.Repeat("grinning face with big eyes", 10));
        var e = Assert.Throws<ArgumentException>(() => t.EncodeForModel(longPrompt, 16));
        Assert.Matches(@"prompt has \d+ tokens, the model takes 14 \(context 16 with bos and eos\); shorten it or pass --truncate", e.Message);
        var cut = t.EncodeForModel(longPrompt, 16, truncate: true);
        Assert.Equal(t.EosId, cut[15]);
        Assert.Throws<ArgumentException>(() => t.Decode([t.VocabSize]));

        // Fit: the text the model reads. Unchanged when it fits; else a prefix that now fits and encodes to the same
        // ids as the truncated long prompt (so metadata and sample grids name what was actually drawn).
        Assert.Equal("red heart", t.Fit("red heart", 16));
        string fit = t.Fit(longPrompt, 16);
        Assert.StartsWith(fit, longPrompt);
        Assert.True(fit.Length < longPrompt.Length);
        Assert.Equal(cut, t.EncodeForModel(fit, 16));
    }
}
