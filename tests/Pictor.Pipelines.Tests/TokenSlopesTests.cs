using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Models.Unet;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

/// <summary>Token slopes (part of preset xs-rel-place): each text token moves its own channels along x and y, so the
/// ResBlock sees which token goes where, which a mean over tokens loses; gradients reach them; configs without the
/// field load as before.</summary>
[Collection("BufferPool")]
public class TokenSlopesTests
{
    [Fact]
    public void Token_slopes_see_how_tokens_pair_up_not_only_their_mean()
    {
        var rng = new Rng(3);
        var block = new ResBlock(rng, 4, 4, timeDim: 8, groups: 2, coordinates: true, tokenSlopeDim: 6);
        var plain = new ResBlock(new Rng(3), 4, 4, timeDim: 8, groups: 2, coordinates: true);
        var x = rng.Randn(1, 4, 8, 8); var t = rng.Randn(1, 8);
        // Two contexts with the same mean over tokens: [u + d, w - d] and [u - d, w + d].
        var u = rng.Randn(6).ToArray(); var w = rng.Randn(6).ToArray(); var d = rng.Randn(6).ToArray();
        Tensor Ctx(float sign) => Tensor.FromArray(u.Select((v, i) => v + sign * d[i]).Concat(w.Select((v, i) => v - sign * d[i])).ToArray(), 1, 2, 6);
        using var _ = Autograd.NoGrad();
        Assert.NotEqual(block.Forward(x, t, Ctx(1)).ToArray(), block.Forward(x, t, Ctx(-1)).ToArray());
        // A ResBlock without them reads no context at all (its text arrives only through t).
        Assert.Equal(plain.Forward(x, t, Ctx(1)).ToArray(), plain.Forward(x, t, Ctx(-1)).ToArray());
        var e = Assert.ThrowsAny<ArgumentException>(() => block.Forward(x, t));
        Assert.Contains("text context", e.Message);
    }

    [Fact]
    public void Gradients_reach_the_token_slopes_and_they_are_on_the_path()
    {
        var tok = PipelineTests.Tokenizer();
        var tiny = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12);
        var cfg = tiny with { Unet = tiny.Unet with { ResBlockCoords = true, TokenSlopes = true } };
        var p = new DiffusionPipeline(cfg, tok, new Rng(5));
        var (x, ids, before) = PipelineTests.ForwardBackward(p);
        var g = p.Unet.NamedParameters().Single(n => n.Name == "enc_res.0.tok_slope_g.weight").Param;
        var v = p.Unet.NamedParameters().Single(n => n.Name == "mid_res1.tok_slope_v.weight").Param;
        Assert.Contains(g.Grad!.ToArray(), q => q != 0);
        Assert.Contains(v.Grad!.ToArray(), q => q != 0);
        foreach (var (name, prm) in p.Unet.NamedParameters().Where(n => n.Name.Contains("tok_slope_g"))) prm.Span.Clear();
        using (Autograd.NoGrad()) Assert.NotEqual(before, p.Forward(x, [500f, 300f], ids).ToArray());
    }

    [Fact]
    public void Preset_round_trips_and_configs_without_the_field_have_none()
    {
        var place = DiffusionConfig.FromPreset("xs-rel-place", 300);
        Assert.True(place.Unet.TokenSlopes && place.Unet.ResBlockCoords && place.Unet.CoordChannels);
        Assert.Equal(DiffusionConfig.FromPreset("xs", 300).Text, place.Text);   // xs's 2-layer encoder
        Assert.Equal(place.ToJson(), DiffusionConfig.FromJson(place.ToJson(), "x").ToJson());

        var xs = DiffusionConfig.FromPreset("xs", 300);
        Assert.DoesNotContain("token_slopes", xs.ToJson());   // older models' config.json stays byte-identical
        Assert.False(DiffusionConfig.FromJson(xs.ToJson(), "x").Unet.TokenSlopes);

        var bad = JsonNode.Parse(place.ToJson())!;
        bad["unet"]!["resblock_coords"] = false;
        var badUnet = DiffusionConfig.FromJson(bad.ToJsonString(), "bad").Unet;
        var e = Assert.ThrowsAny<ArgumentException>(() => new UnetModel(badUnet, new Rng(1)));
        Assert.Contains("resblock_coords", e.Message);
    }
}
