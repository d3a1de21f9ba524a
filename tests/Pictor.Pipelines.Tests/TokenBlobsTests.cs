using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Models.Unet;
using Pictor.Pipelines.Diffusion;
using Pictor.TestSupport;

namespace Pictor.Pipelines.Tests;

/// <summary>Token blobs (preset xs-rel-place): each text token adds its own channels in a Gaussian bump at the place
/// the shared token places give it. Forward and gradients against a double-precision reference and finite
/// differences; a token placed left lights the left; gradients reach the layer inside the pipeline; configs without the
/// field load as before, and blobs with centres of their own (the removed preset xs-blob) are refused.</summary>
[Collection("BufferPool")]
public class TokenBlobsTests
{
    /// <summary>The definition, in double: out[b, c, y, x] = (1/S) sum_s v[b, s, c] exp(-|p(y, x) - m[b, s]|^2 / (2 sigma^2)),
    /// p = pixel centre in [-1, 1] ((2 j + 1) / W - 1).</summary>
    private static D Reference(D v, D m, int h, int w)
    {
        int b = v.S[0], s = v.S[1], c = v.S[2];
        var o = new double[b * c * h * w];
        double sig2 = (double)TokenBlobs.Sigma * TokenBlobs.Sigma;
        for (int n = 0; n < b; n++)
            for (int k = 0; k < s; k++)
            {
                double mx = m.V[(n * s + k) * 2], my = m.V[(n * s + k) * 2 + 1];
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        double px = (2.0 * x + 1) / w - 1, py = (2.0 * y + 1) / h - 1;
                        double g = Math.Exp(-((px - mx) * (px - mx) + (py - my) * (py - my)) / (2 * sig2));
                        for (int ch = 0; ch < c; ch++) o[((n * c + ch) * h + y) * w + x] += v.V[(n * s + k) * c + ch] * g / s;
                    }
            }
        return new D(o, [b, c, h, w]);
    }

    [Fact]
    public void Place_matches_the_reference_and_finite_differences()
    {
        var v = OpCheck.Randn(11, true, 2, 3, 4);
        var m = OpCheck.Randn(12, true, 2, 3, 2);   // centres ~ N(0, 1): some inside the image, some past its edge
        OpCheck.Check("token blobs 8x6", [v, m], a => TokenBlobs.Place(a[0], a[1], 8, 6), d => Reference(d[0], d[1], 8, 6),
                      fwdTol: 1e-5, gradTol: 2e-3);
    }

    [Fact]
    public void A_token_centred_left_lights_the_left_half()
    {
        var v = Tensor.FromArray([1f], 1, 1, 1);
        var m = Tensor.FromArray([-0.5f, 0f], 1, 1, 2);
        var o = TokenBlobs.Place(v, m, 8, 8).ToArray();                       // (1, 1, 8, 8)
        double left = 0, right = 0;
        for (int y = 0; y < 8; y++) for (int x = 0; x < 8; x++) { if (x < 4) left += o[y * 8 + x]; else right += o[y * 8 + x]; }
        Assert.True(left > 10 * right, $"left {left}, right {right}");
        // The peak is at the four pixels nearest (-0.5, 0), each 0.125 off in x and in y.
        Assert.Equal(Math.Exp(-2 * 0.125 * 0.125 / (2 * 0.3 * 0.3)), o.Max(), 5);
        var e = Assert.ThrowsAny<ArgumentException>(() => TokenBlobs.Place(v, Tensor.FromArray([0f, 0f, 0f], 1, 1, 3), 8, 8));
        Assert.Contains("centres [B, S, 2]", e.Message);
    }

    [Fact]
    public void Token_blobs_see_how_tokens_pair_up_and_gradients_reach_them()
    {
        var rng = new Rng(3);
        var block = new ResBlock(rng, 4, 4, timeDim: 8, groups: 2, tokenBlobDim: 6);
        var x = rng.Randn(1, 4, 8, 8); var t = rng.Randn(1, 8);
        var places = Tensor.FromArray([-0.5f, 0f, 0.5f, 0f], 1, 2, 2);   // token 0 left, token 1 right
        // Two contexts with the same mean over tokens: [u + d, w - d] and [u - d, w + d].
        var u = rng.Randn(6).ToArray(); var w = rng.Randn(6).ToArray(); var d = rng.Randn(6).ToArray();
        Tensor Ctx(float sign) => Tensor.FromArray(u.Select((q, i) => q + sign * d[i]).Concat(w.Select((q, i) => q - sign * d[i])).ToArray(), 1, 2, 6);
        using (Autograd.NoGrad())
        {
            var plus = block.Forward(x, t, Ctx(1), places).ToArray();
            Assert.NotEqual(plus, block.Forward(x, t, Ctx(-1), places).ToArray());
            Assert.Contains("token blobs", Assert.ThrowsAny<ArgumentException>(() => block.Forward(x, t)).Message);
        }

        var tok = PipelineTests.Tokenizer();
        var tiny = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12);
        var cfg = tiny with { Unet = tiny.Unet with { TokenBlobs = true, TokenPlaces = true } };
        var p = new DiffusionPipeline(cfg, tok, new Rng(5));
        var (xs, ids, before) = PipelineTests.ForwardBackward(p);
        string[] some = ["enc_res.0.tok_blob.v.weight", "mid_res1.tok_blob.v.weight", "dec_res.0.tok_blob.v.bias"];
        foreach (var name in some)
            Assert.Contains(p.Unet.NamedParameters().Single(n => n.Name == name).Param.Grad!.ToArray(), q => q != 0);
        foreach (var (_, prm) in p.Unet.NamedParameters().Where(n => n.Name.Contains("tok_blob.v"))) prm.Span.Clear();
        using (Autograd.NoGrad()) Assert.NotEqual(before, p.Forward(xs, [500f, 300f], ids).ToArray());
    }

    [Fact]
    public void Configs_without_the_field_have_none_and_blobs_without_shared_places_are_refused()
    {
        var xs = DiffusionConfig.FromPreset("xs", 300);
        Assert.DoesNotContain("token_blobs", xs.ToJson());   // older models' config.json stays byte-identical
        Assert.False(DiffusionConfig.FromJson(xs.ToJson(), "x").Unet.TokenBlobs);

        var blob = JsonNode.Parse(DiffusionConfig.FromPreset("xs-rel-place", 300).ToJson())!;
        blob["unet"]!.AsObject().Remove("token_places");   // what preset xs-blob wrote
        var e = Assert.Throws<FormatException>(() => DiffusionConfig.FromJson(blob.ToJsonString(), "m/config.json"));
        Assert.Contains("unet.token_blobs without unet.token_places", e.Message);
        Assert.Contains("xs-blob", e.Message);
        Assert.Contains(RemovedPresets.Commit, e.Message);
        var tiny = DiffusionConfig.FromPreset("tiny", 300).Unet;
        var own = Assert.ThrowsAny<ArgumentException>(() => new UnetModel(tiny with { TokenBlobs = true }, new Rng(1)));
        Assert.Contains("token_places", own.Message);
    }
}
