using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

/// <summary>Two text streams (preset xs-rel-split): a layout encoder feeds the token slopes and the pooled input, the
/// first encoder feeds cross-attention alone; each stream's gradient reaches only its own encoder; the weights save and
/// load under "layout_text."; models without it keep their config and initial weights.</summary>
[Collection("BufferPool")]
public class LayoutTextTests
{
    /// <summary>The tiny preset with slopes and token slopes, rotary cross-attention text and a plain layout encoder.</summary>
    private static DiffusionPipeline TinySplit(ulong seed = 5)
    {
        var tok = PipelineTests.Tokenizer();
        var tiny = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12);
        var cfg = tiny with
        {
            Unet = tiny.Unet with { CoordChannels = true, ResBlockCoords = true, TokenSlopes = true },
            Text = tiny.Text with { Rotary = true }, LayoutText = tiny.Text,
        };
        return new DiffusionPipeline(cfg, tok, new Rng(seed));
    }

    [Fact]
    public void Each_stream_reaches_only_its_own_paths()
    {
        var p = TinySplit();
        PipelineTests.ForwardBackward(p);
        bool Moved(string prefix) => p.NamedParameters().Where(n => n.Name.StartsWith(prefix, StringComparison.Ordinal))
            .Any(n => n.Param.Grad != null && n.Param.Grad.ToArray().Any(g => g != 0));
        Assert.True(Moved("text."));
        Assert.True(Moved("layout_text."));

        // Zero every cross-attention value weight: the first encoder no longer matters, the layout encoder still does.
        foreach (var (_, prm) in p.Unet.NamedParameters().Where(n => n.Name.EndsWith("attn2.v.weight", StringComparison.Ordinal))) prm.Span.Clear();
        var xs = new float[2 * 3 * 16 * 16]; new Rng(9).FillUniform(xs, -1, 1);
        var x = Tensor.FromArray(xs, 2, 3, 16, 16);
        var ids = p.Tokenize(["a small red circle", "two blue squares"]);
        float[] Out() { using var _ = Autograd.NoGrad(); p.Train(false); return p.Forward(x, [500f, 300f], ids).ToArray(); }
        var before = Out();
        Perturb(p.TextEncoder.NamedParameters());
        Assert.Equal(before, Out());
        Perturb(p.LayoutEncoder!.NamedParameters());
        Assert.NotEqual(before, Out());
    }

    private static void Perturb(IEnumerable<(string Name, Tensor Param)> ps)
    {
        var rng = new Rng(11);
        foreach (var (_, prm) in ps) { var s = prm.Span; for (int i = 0; i < s.Length; i++) s[i] += 0.1f * rng.NextFloat(); }
    }

    [Fact]
    public void Saves_and_loads_the_layout_encoder()
    {
        var p = TinySplit();
        Assert.Contains(p.NamedParameters(), n => n.Name == "layout_text.pos_emb");
        var dir = Directory.CreateTempSubdirectory("pictor-split").FullName;
        p.Save(dir);
        var q = DiffusionPipeline.Load(dir);
        Assert.Equal(p.NamedParameters().Select(n => (n.Name, n.Param.ToArray())), q.NamedParameters().Select(n => (n.Name, n.Param.ToArray())));
        var o = new GenerateOptions("a small red circle", Steps: 2, Seed: 3);
        Assert.Equal(p.Generate(o).ToArray(), q.Generate(o).ToArray());
        // A different seed draws other layout weights, and sampling reads them.
        Assert.NotEqual(p.LayoutEncoder!.NamedParameters().First().Param.ToArray(), TinySplit(6).LayoutEncoder!.NamedParameters().First().Param.ToArray());
    }

    [Fact]
    public void Preset_round_trips_and_leaves_other_models_as_they_were()
    {
        var split = DiffusionConfig.FromPreset("xs-rel-split", 300);
        var rel = DiffusionConfig.FromPreset("xs-rel", 300);
        var rope = DiffusionConfig.FromPreset("xs-rel-rope", 300);
        Assert.Equal(rel.Text, split.LayoutText);                  // the layout stream is xs-rel's encoder
        Assert.Equal(rope.Text, split.Text);                       // cross-attention reads xs-rel-rope's
        Assert.Equal(split.ToJson(), DiffusionConfig.FromJson(split.ToJson(), "x").ToJson());
        Assert.DoesNotContain("layout_text", rope.ToJson());      // older models' config.json stays byte-identical
        Assert.Null(DiffusionConfig.FromJson(rope.ToJson(), "x").LayoutText);
        Assert.StartsWith("layout_text: {", DiffusionConfig.FirstDifference(split, rope with { Preset = "xs-rel-split" }));

        // The layout encoder is drawn last: the other weights are xs-rel-rope's initial weights.
        var tok = PipelineTests.Tokenizer();
        var a = new DiffusionPipeline(DiffusionConfig.FromPreset("xs-rel-split", tok.VocabSize, 16, 12), tok, new Rng(4));
        var b = new DiffusionPipeline(DiffusionConfig.FromPreset("xs-rel-rope", tok.VocabSize, 16, 12), tok, new Rng(4));
        Assert.Equal(b.NamedParameters().Select(n => (n.Name, n.Param.ToArray())),
            a.NamedParameters().Where(n => !n.Name.StartsWith("layout_text.", StringComparison.Ordinal)).Select(n => (n.Name, n.Param.ToArray())));

        var bad = JsonNode.Parse(split.ToJson())!;
        bad["layout_text"]!["out_dim"] = 64;
        Assert.Contains("layout_text must share text's vocab, context and out_dim", Assert.Throws<FormatException>(() => DiffusionConfig.FromJson(bad.ToJsonString(), "m/config.json")).Message);
    }

    [Fact]
    public void Sum_preset_adds_the_layout_tokens_to_cross_attention()
    {
        var tok = PipelineTests.Tokenizer();
        var ids = tok.EncodeBatch(["a small red circle", "two blue squares"], 12);
        var split = new DiffusionPipeline(DiffusionConfig.FromPreset("xs-rel-split", tok.VocabSize, 16, 12), tok, new Rng(4));
        var sum = new DiffusionPipeline(DiffusionConfig.FromPreset("xs-rel-sum", tok.VocabSize, 16, 12), tok, new Rng(4));
        // Same initial weights as xs-rel-split: only the wiring differs.
        Assert.Equal(split.NamedParameters().Select(n => (n.Name, n.Param.ToArray())), sum.NamedParameters().Select(n => (n.Name, n.Param.ToArray())));
        using var _ = Autograd.NoGrad();
        var content = sum.TextEncoder.Forward(ids).Tokens.ToArray();
        var layout = sum.LayoutEncoder!.Forward(ids).Tokens.ToArray();
        var (sumTokens, sumPooled, sumSlopes) = sum.EncodeText(ids);
        var (splitTokens, splitPooled, splitSlopes) = split.EncodeText(ids);
        Assert.Equal(content, splitTokens.ToArray());                                      // split: cross-attention reads the content stream alone
        Assert.Equal(content.Zip(layout, (a, b) => a + b).ToArray(), sumTokens.ToArray()); // sum: both streams
        Assert.Equal(layout, sumSlopes!.ToArray());                                        // the slopes and pooled vector are as in split
        Assert.Equal(splitSlopes!.ToArray(), sumSlopes.ToArray());
        Assert.Equal(splitPooled!.ToArray(), sumPooled!.ToArray());

        var cfg = sum.Config;
        Assert.Contains("\"cross_attention_adds_layout\": true", cfg.ToJson());
        Assert.True(DiffusionConfig.FromJson(cfg.ToJson(), "x").CrossAddsLayout);
        Assert.DoesNotContain("cross_attention_adds_layout", split.Config.ToJson());
        Assert.Equal("cross_attention_adds_layout: true vs null", DiffusionConfig.FirstDifference(cfg, split.Config with { Preset = cfg.Preset }));
        var bad = JsonNode.Parse(cfg.ToJson())!.AsObject();
        bad.Remove("layout_text");
        Assert.Contains("needs a layout_text encoder", Assert.Throws<FormatException>(() => DiffusionConfig.FromJson(bad.ToJsonString(), "m/config.json")).Message);
        Assert.Throws<ArgumentException>(() => new DiffusionPipeline(cfg with { LayoutText = null }, tok, new Rng(4)));
    }
}
