using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

/// <summary>Per-level self_attention flags (preset xs-bind): a level can cross-attend to the text without self-attending,
/// the text then reaches full-resolution pixels, and configs without the field load as before.</summary>
[Collection("BufferPool")]
public class CrossOnlyAttentionTests
{
    [Fact]
    public void A_cross_only_level_has_no_self_attention_and_its_cross_attention_learns()
    {
        var tok = PipelineTests.Tokenizer();
        var tiny = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12);
        var cfg = tiny with { Unet = tiny.Unet with { Attention = [true, true], SelfAttention = [false, true] } };
        var p = new DiffusionPipeline(cfg, tok, new Rng(5));
        var names = p.Unet.NamedParameters().Select(q => q.Name).ToList();
        // tiny: 1 encoder and 2 decoder ResBlocks per level, so enc_attn.0 and dec_attn.2/3 are the 16x16 level's
        Assert.Contains("enc_attn.0.attn2.q.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("enc_attn.0.attn1.") || n.StartsWith("enc_attn.0.ln1."));
        Assert.DoesNotContain(names, n => n.StartsWith("dec_attn.2.attn1.") || n.StartsWith("dec_attn.3.attn1."));
        Assert.Contains("enc_attn.1.attn1.q.weight", names);   // the 8x8 level still self-attends
        Assert.Contains("mid_attn.attn1.q.weight", names);

        var (x, ids, before) = PipelineTests.ForwardBackward(p);
        var q = p.Unet.NamedParameters().Single(n => n.Name == "enc_attn.0.attn2.q.weight").Param;
        Assert.Contains(q.Grad!.ToArray(), d => d != 0);
        // The full-resolution cross-attention is on the path: zeroing its output projection changes the prediction.
        p.Unet.NamedParameters().Single(n => n.Name == "enc_attn.0.proj_out.weight").Param.Span.Clear();
        using (Autograd.NoGrad()) Assert.NotEqual(before, p.Forward(x, [500f, 300f], ids).ToArray());
    }

    [Fact]
    public void Preset_round_trips_and_configs_without_the_field_self_attend_everywhere()
    {
        var bind = DiffusionConfig.FromPreset("xs-bind", 300);
        Assert.Equal([true, true, true], bind.Unet.Attention);
        Assert.Equal([false, true, true], bind.Unet.SelfAttention!);
        Assert.Equal(4, bind.Text.Layers);
        Assert.True(bind.Unet.CoordChannels && bind.Unet.ResBlockCoords);
        Assert.Equal(bind.ToJson(), DiffusionConfig.FromJson(bind.ToJson(), "x").ToJson());

        var pos = DiffusionConfig.FromPreset("xs-pos", 300);
        Assert.DoesNotContain("self_attention", pos.ToJson());   // older models' config.json stays byte-identical
        Assert.Null(DiffusionConfig.FromJson(pos.ToJson(), "x").Unet.SelfAttention);
        Assert.True(pos.Unet.SelfAttends(1));

        var bad = JsonNode.Parse(bind.ToJson())!;
        bad["unet"]!["self_attention"] = new JsonArray(false, true);   // two flags for three levels
        var badUnet = DiffusionConfig.FromJson(bad.ToJsonString(), "bad").Unet;
        var e = Assert.ThrowsAny<ArgumentException>(() => new Pictor.Models.Unet.UnetModel(badUnet, new Rng(1)));
        Assert.Contains("2 self_attention flags", e.Message);
    }
}
