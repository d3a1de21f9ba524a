using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Models.Text;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

/// <summary>Preset xs-rel-rope: xs-rel's UNet and text encoder with rotary position embedding in the encoder's
/// attention; it adds no parameters (the same initial weights as xs-rel), changes what the encoder computes, and
/// configs without the field load as before.</summary>
[Collection("BufferPool")]
public class RotaryTextTests
{
    [Fact]
    public void Preset_is_xs_rel_plus_rotary_and_round_trips()
    {
        var rope = DiffusionConfig.FromPreset("xs-rel-rope", 300);
        var rel = DiffusionConfig.FromPreset("xs-rel", 300);
        Assert.True(rope.Text.Rotary);
        Assert.Equal(JsonNode.Parse(rel.ToJson())!["unet"]!.ToJsonString(), JsonNode.Parse(rope.ToJson())!["unet"]!.ToJsonString());
        Assert.Equal(rope.ToJson(), DiffusionConfig.FromJson(rope.ToJson(), "x").ToJson());
        Assert.DoesNotContain("rotary", rel.ToJson());               // older models' config.json stays byte-identical
        Assert.False(DiffusionConfig.FromJson(rel.ToJson(), "x").Text.Rotary);
        Assert.Equal("text.rotary: true vs null", DiffusionConfig.FirstDifference(rope, rel with { Preset = "xs-rel-rope" }));
    }

    [Fact]
    public void Same_weights_as_without_it_and_a_different_encoding()
    {
        var cfg = new TextEncoderConfig(20, Context: 6, Layers: 2, Dim: 16, Heads: 2, OutDim: 8);
        var plain = new TextEncoder(cfg, new Rng(2));
        var rope = new TextEncoder(cfg with { Rotary = true }, new Rng(2));
        Assert.Equal(plain.NamedParameters().Select(p => (p.Name, p.Param.ToArray())), rope.NamedParameters().Select(p => (p.Name, p.Param.ToArray())));
        var ids = new IntTensor([1, 4, 5, 6, 2, 0], 1, 6);
        using var _ = Autograd.NoGrad();
        Assert.NotEqual(plain.Forward(ids).Tokens.ToArray(), rope.Forward(ids).Tokens.ToArray());
    }
}
