using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Models.Text;
using Pictor.Pipelines.Diffusion;
using Pictor.TestSupport;

namespace Pictor.Pipelines.Tests;

/// <summary>Phrase mixing (preset xs-phrase): before attention, each token's embedding takes in its neighbours', so a
/// colour word carries the shape word beside it; only its neighbours reach it that way; gradients reach the mixer;
/// configs without the field load as before.</summary>
[Collection("BufferPool")]
public class PhraseMixingTests
{
    // With no attention layers a token's output depends on nothing but its own input, unless the phrase mixer is on.
    private static float[] TokenOutputs(TextEncoder enc, int[] ids)
    {
        using var _ = Autograd.NoGrad();
        return enc.Forward(new IntTensor(ids, 1, ids.Length)).Tokens.ToArray();
    }

    [Fact]
    public void A_token_sees_its_neighbours_and_only_them()
    {
        const int dim = 8;
        var mixed = new TextEncoder(new TextEncoderConfig(20, Context: 6, Layers: 0, Dim: dim, Heads: 2, OutDim: dim, PhraseWidth: 3), new Rng(2));
        var plain = new TextEncoder(new TextEncoderConfig(20, Context: 6, Layers: 0, Dim: dim, Heads: 2, OutDim: dim), new Rng(2));
        int[] a = [1, 4, 5, 6, 2, 0], b = [1, 4, 9, 6, 2, 0];   // only position 2 differs
        float[] Pos(float[] t, int i) => t[(i * dim)..((i + 1) * dim)];
        var (ma, mb) = (TokenOutputs(mixed, a), TokenOutputs(mixed, b));
        foreach (int i in new[] { 1, 2, 3 }) Assert.NotEqual(Pos(ma, i), Pos(mb, i));   // the word and its two neighbours
        foreach (int i in new[] { 0, 4, 5 }) Assert.Equal(Pos(ma, i), Pos(mb, i));      // nothing further away
        var (pa, pb) = (TokenOutputs(plain, a), TokenOutputs(plain, b));
        foreach (int i in new[] { 1, 3 }) Assert.Equal(Pos(pa, i), Pos(pb, i));         // without it, neighbours are invisible
        // Encoders without the mixer draw the same initial weights as before it existed: it is created last.
        Assert.Equal(plain.NamedParameters().Select(p => p.Param.ToArray()), mixed.NamedParameters().Where(p => !p.Name.StartsWith("phrase")).Select(p => p.Param.ToArray()));
    }

    [Fact]
    public void Neighbours_are_shifted_copies_with_zeros_past_the_ends()
    {
        var x = Tensor.FromArray(Enumerable.Range(1, 2 * 4 * 2).Select(v => (float)v).ToArray(), 2, 4, 2);   // [B=2, S=4, D=2]
        var n = TextEncoder.Neighbours(x, 3).ToArray();   // [2, 4, 6]: x_{i-1}, x_i, x_{i+1}
        Assert.Equal([0, 0, 1, 2, 3, 4], n[0..6]);         // first position: nothing before it
        Assert.Equal([1, 2, 3, 4, 5, 6], n[6..12]);
        Assert.Equal([5, 6, 7, 8, 0, 0], n[18..24]);       // last position: nothing after it
        Assert.Equal([0, 0, 9, 10, 11, 12], n[24..30]);    // the second caption never reads the first
    }

    [Fact]
    public void Gradients_reach_the_mixer_and_match_finite_differences()
    {
        var enc = new TextEncoder(new TextEncoderConfig(20, Context: 5, Layers: 1, Dim: 8, Heads: 2, OutDim: 4, PhraseWidth: 3), new Rng(4));
        var ids = new IntTensor([1, 4, 5, 6, 2, 1, 7, 8, 2, 0], 2, 5);
        var w = enc.NamedParameters().Single(p => p.Name == "phrase.weight").Param;
        var probe = new Rng(9).Randn(2, 5, 4);
        float Loss() { using var _ = Autograd.NoGrad(); return Ops.Sum(Ops.Mul(enc.Forward(ids).Tokens, probe)).ToArray()[0]; }
        Ops.Sum(Ops.Mul(enc.Forward(ids).Tokens, probe)).Backward();
        // Entries reading the left neighbour, the token itself and the right neighbour.
        OpCheck.AssertFiniteDifferences(w, w.Grad!.ToArray(), Loss, [0, 9, 8 * 3 + 5, w.Numel - 1]);
    }

    [Fact]
    public void Preset_round_trips_bad_widths_are_errors_and_older_configs_have_none()
    {
        var phrase = DiffusionConfig.FromPreset("xs-phrase", 300);
        var rel = DiffusionConfig.FromPreset("xs-rel", 300);
        Assert.Equal(3, phrase.Text.PhraseWidth);
        Assert.Equal(JsonNode.Parse(rel.ToJson())!["unet"]!.ToJsonString(), JsonNode.Parse(phrase.ToJson())!["unet"]!.ToJsonString());   // the UNet is xs-rel's
        Assert.Equal(phrase.ToJson(), DiffusionConfig.FromJson(phrase.ToJson(), "x").ToJson());
        Assert.DoesNotContain("phrase_width", rel.ToJson());          // older models' config.json stays byte-identical
        Assert.Equal(0, DiffusionConfig.FromJson(rel.ToJson(), "x").Text.PhraseWidth);
        Assert.Equal("text.phrase_width: 3 vs null", DiffusionConfig.FirstDifference(phrase, rel with { Preset = "xs-phrase" }));

        var bad = JsonNode.Parse(phrase.ToJson())!;
        bad["text"]!["phrase_width"] = 2;
        var e = Assert.ThrowsAny<ArgumentException>(() => new TextEncoder(DiffusionConfig.FromJson(bad.ToJsonString(), "bad").Text, new Rng(1)));
        Assert.Contains("phrase_width 2", e.Message);
        Assert.Contains("odd width", e.Message);
    }
}
