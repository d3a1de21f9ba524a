using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Models.Unet;
using Pictor.Pipelines.Diffusion;
using Pictor.TestSupport;

namespace Pictor.Pipelines.Tests;

/// <summary>Token slopes over a window (preset xs-rel-phrase): a token's channels V are read from the token and its
/// neighbours, so a colour word can move the channels of the shape word beside it. Width 1 is the plain token slope;
/// a window whose neighbour columns are zero is exactly width 1; gradients match finite differences; configs without
/// the field load as before.</summary>
[Collection("BufferPool")]
public class TokenSlopeWindowTests
{
    private const int Dc = 6, C = 4;

    private static ResBlock Block(int width, ulong seed) =>
        new(new Rng(seed), C, C, timeDim: 8, groups: 2, coordinates: true, tokenSlopeDim: Dc, tokenSlopeWidth: width);

    [Fact]
    public void A_window_sees_word_order_and_without_neighbours_it_is_the_plain_token_slope()
    {
        var rng = new Rng(3);
        var x = rng.Randn(1, C, 8, 8); var t = rng.Randn(1, 8);
        var ctx = rng.Randn(1, 3, Dc).ToArray();
        // The same three tokens in another order: [t0, t1, t2] and [t1, t0, t2].
        var swapped = ctx[Dc..(2 * Dc)].Concat(ctx[..Dc]).Concat(ctx[(2 * Dc)..]).ToArray();
        Tensor Ctx(float[] v) => Tensor.FromArray(v, 1, 3, Dc);
        var (one, three) = (Block(1, 5), Block(3, 5));
        using var _ = Autograd.NoGrad();
        // Width 1 sums V_s G_s over tokens: the order of the tokens cannot matter. A window reads neighbours: it does.
        OpCheck.AssertClose("width 1, tokens reordered", one.Forward(x, t, Ctx(swapped)).ToArray(), one.Forward(x, t, Ctx(ctx)).ToArray(), 1e-6);
        Assert.NotEqual(three.Forward(x, t, Ctx(ctx)).ToArray(), three.Forward(x, t, Ctx(swapped)).ToArray());

        // The oracle: copy width 1's weights into the window, its centre columns taking tok_slope_v and its neighbour
        // columns zero; the two blocks must then agree.
        var src = one.NamedParameters().ToDictionary(p => p.Name, p => p.Param);
        foreach (var (name, p) in three.NamedParameters())
        {
            if (name != "tok_slope_v.weight") { src[name].Span.CopyTo(p.Span); continue; }
            p.Span.Clear();                                                       // [C, 3 Dc]
            for (int o = 0; o < C; o++)
                src[name].Span.Slice(o * Dc, Dc).CopyTo(p.Span.Slice(o * 3 * Dc + Dc, Dc));
        }
        OpCheck.AssertClose("window without neighbours vs width 1", three.Forward(x, t, Ctx(ctx)).ToArray(), one.Forward(x, t, Ctx(ctx)).ToArray(), 1e-5);
    }

    [Fact]
    public void Gradients_of_the_window_match_finite_differences()
    {
        var block = Block(3, 7);
        var rng = new Rng(11);
        var x = rng.Randn(2, C, 4, 4); var t = rng.Randn(2, 8); var ctx = rng.Randn(2, 5, Dc);
        var probe = rng.Randn(2, C, 4, 4);
        var w = block.NamedParameters().Single(p => p.Name == "tok_slope_v.weight").Param;   // [C, 3 Dc]
        float Loss() { using var _ = Autograd.NoGrad(); return Ops.Sum(Ops.Mul(block.Forward(x, t, ctx), probe)).ToArray()[0]; }
        Ops.Sum(Ops.Mul(block.Forward(x, t, ctx), probe)).Backward();
        // A left neighbour's, the token's own and a right neighbour's columns.
        OpCheck.AssertFiniteDifferences(w, w.Grad!.ToArray(), Loss, [0, Dc + 2, 2 * Dc + 1, w.Numel - 1]);
    }

    [Fact]
    public void Preset_round_trips_bad_windows_are_errors_and_older_configs_have_none()
    {
        var rp = DiffusionConfig.FromPreset("xs-rel-phrase", 300);
        var rel = DiffusionConfig.FromPreset("xs-rel", 300);
        Assert.Equal(3, rp.Unet.TokenSlopeWidth);
        Assert.Equal(rel.Text, rp.Text);                                   // the text encoder is xs-rel's, unmixed
        Assert.Equal(rp.ToJson(), DiffusionConfig.FromJson(rp.ToJson(), "x").ToJson());
        Assert.DoesNotContain("token_slope_width", rel.ToJson());          // older models' config.json stays byte-identical
        Assert.Equal(1, DiffusionConfig.FromJson(rel.ToJson(), "x").Unet.TokenSlopeWidth);
        Assert.Equal("unet.token_slope_width: 3 vs null", DiffusionConfig.FirstDifference(rp, rel with { Preset = "xs-rel-phrase" }));

        foreach (var (width, slopes) in new[] { (2, true), (3, false) })
        {
            var bad = JsonNode.Parse(rp.ToJson())!;
            bad["unet"]!["token_slope_width"] = width;
            bad["unet"]!["token_slopes"] = slopes;
            var e = Assert.ThrowsAny<ArgumentException>(() => new UnetModel(DiffusionConfig.FromJson(bad.ToJsonString(), "bad").Unet, new Rng(1)));
            Assert.Contains($"token_slope_width {width}", e.Message);
            Assert.Contains("odd window", e.Message);
        }
    }
}
