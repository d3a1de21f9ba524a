using Pictor.Engine;
using Pictor.Models.Vq;
using Pictor.Nn.Optim;

namespace Pictor.Models.Tests;

/// <summary>The VQ-VAE image tokenizer: nearest-code search, straight-through gradient, the moving-average codebook and
/// its dead-code restart, usage statistics, the encode/decode round trip, and that a tiny one learns.</summary>
[Collection("BufferPool")]
public class VqVaeTests
{
    private static readonly VqConfig Tiny = new([8, 16, 16], BlocksPerLevel: 1, Codes: 16, CodeDim: 4, Groups: 4);

    private static Tensor Random(Rng rng, params int[] shape)
    {
        var t = Tensor.Empty(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = rng.Uniform(-1f, 1f);
        return t;
    }

    [Fact]
    public void Nearest_is_the_brute_force_argmin()
    {
        var vq = new VectorQuantizer(new Rng(1), 32, 6);
        var rows = Random(new Rng(2), 200, 6);
        var idx = vq.Nearest(rows);
        var r = rows.ToArray(); var e = vq.Codebook.ToArray();
        for (int i = 0; i < 200; i++)
        {
            double best = double.MaxValue; int arg = -1;
            for (int k = 0; k < 32; k++)
            {
                double d = 0;
                for (int j = 0; j < 6; j++) d += Math.Pow((double)r[i * 6 + j] - e[k * 6 + j], 2);
                if (d < best) { best = d; arg = k; }
            }
            Assert.Equal(arg, idx[i]);
        }
    }

    [Fact]
    public void Quantized_values_are_codebook_rows_and_the_gradient_passes_straight_through()
    {
        var vq = new VectorQuantizer(new Rng(3), 8, 4);
        var z = Random(new Rng(4), 2, 4, 3, 3);
        z.RequiresGrad = true;
        var (q, codes, commitment) = vq.Forward(z);
        Assert.Equal([2, 3, 3], codes.Shape);
        var Q = q.ToArray(); var e = vq.Codebook.ToArray();
        for (int b = 0; b < 2; b++)
            for (int p = 0; p < 9; p++)
                for (int j = 0; j < 4; j++)
                    Assert.Equal(e[codes[b * 9 + p] * 4 + j], Q[(b * 4 + j) * 9 + p], 5);
        // d/dz sum(q * w) = w (straight-through); d/dz commitment = 2 (z - e) / numel.
        var w = Random(new Rng(5), 2, 4, 3, 3);
        Ops.Add(Ops.Sum(Ops.Mul(q, w)), commitment).Backward();
        var g = z.Grad!.ToArray(); var W = w.ToArray(); var Z = z.ToArray();
        for (int i = 0; i < g.Length; i++) Assert.Equal(W[i] + 2f * (Z[i] - Q[i]) / g.Length, g[i], 4);
    }

    [Fact]
    public void Moving_average_codebook_reaches_the_k_means_fixed_point_and_dead_codes_restart_from_the_batch()
    {
        // Four tight clusters in 2-D; the codebook starts random and all its entries dead.
        var rng = new Rng(6);
        float[][] centres = [[-2f, -2f], [2f, -2f], [-2f, 2f], [2f, 2f]];
        var z = Tensor.Empty(1, 2, 8, 8);   // 64 vectors
        var s = z.Span;
        for (int p = 0; p < 64; p++) { s[p] = centres[p % 4][0] + rng.Uniform(-0.1f, 0.1f); s[64 + p] = centres[p % 4][1] + rng.Uniform(-0.1f, 0.1f); }
        var vq = new VectorQuantizer(new Rng(7), 4, 2, decay: 0.8f);
        float[] start = [-1.5f, -1.5f, 1.5f, -1.5f, -1.5f, 1.5f, 100f, 100f];   // three near clusters, one far away
        start.CopyTo(vq.Codebook.Span);
        var (_, codes0, _) = vq.Forward(z);
        Assert.DoesNotContain(3, codes0.Data);                                  // entry 3 is never nearest
        Assert.Equal(1, vq.Update(z, codes0.Data, new Rng(8)));                 // so it is dead and restarts ...
        var Z = z.ToArray(); var E = vq.Codebook.ToArray();
        Assert.Contains(Enumerable.Range(0, 64), p => Z[p] == E[6] && Z[64 + p] == E[7]);   // ... at a vector of the batch
        Assert.Equal(Enumerable.Range(0, 64).Where(p => codes0[p] == 0).Average(p => Z[p]), E[0], 2);   // the used ones moved to their means

        Assert.Contains("3 codes for 64 latent vectors", Assert.Throws<ArgumentException>(() => vq.Update(z, new int[3], new Rng(1))).Message);
        var restarts = new Rng(9);
        for (int step = 0; step < 300; step++) { var (_, c, _) = vq.Forward(z); vq.Update(z, c.Data, restarts); }
        var (_, codes, _) = vq.Forward(z);
        E = vq.Codebook.ToArray();
        for (int k = 0; k < 4; k++)
        {
            var mine = Enumerable.Range(0, 64).Where(p => codes[p] == k).ToList();
            if (mine.Count == 0) continue;
            Assert.Equal(mine.Average(p => Z[p]), E[k * 2], 2);          // each used entry sits at the mean of its vectors
            Assert.Equal(mine.Average(p => Z[64 + p]), E[k * 2 + 1], 2);
        }
    }

    [Fact]
    public void Usage_is_perplexity_and_fraction_used()
    {
        var vq = new VectorQuantizer(new Rng(1), 4, 2);
        var (p, u) = vq.Usage([0, 1, 2, 3, 0, 1, 2, 3]);
        Assert.Equal(4.0, p, 9); Assert.Equal(1.0, u);
        (p, u) = vq.Usage([2, 2, 2]);
        Assert.Equal(1.0, p, 9); Assert.Equal(0.25, u);
    }

    [Fact]
    public void Encode_decode_round_trip_has_the_right_shapes_and_matches_the_training_forward()
    {
        var model = new VqVae(Tiny, new Rng(10));
        var x = Random(new Rng(11), 2, 3, 32, 32);
        var codes = model.Encode(x);
        Assert.Equal([2, 8, 8], codes.Shape);
        Assert.All(codes.Data, c => Assert.InRange(c, 0, 15));
        var y = model.Decode(codes);
        Assert.Equal([2, 3, 32, 32], y.Shape);
        var (rec, _, _, _, _, trainCodes) = model.Forward(x);
        Assert.Equal(codes.Data, trainCodes.Data);
        var a = y.ToArray(); var b = rec.ToArray();
        for (int i = 0; i < a.Length; i++) Assert.True(MathF.Abs(a[i] - b[i]) <= 1e-4f, $"pixel {i}: {a[i]} vs {b[i]}");
        Assert.Contains("must be [B, 3, H, W]", Assert.Throws<ArgumentException>(() => model.Encode(Tensor.Zeros(1, 1, 32, 32))).Message);
        Assert.Contains("divisible by 4", Assert.Throws<ArgumentException>(() => model.Encode(Tensor.Zeros(1, 3, 30, 30))).Message);
        Assert.Contains("outside the codebook", Assert.Throws<ArgumentException>(() => model.Decode(new IntTensor(Enumerable.Repeat(16, 64).ToArray(), 1, 8, 8))).Message);
        // The codebook is saved with the weights but the optimiser never sees it.
        Assert.Contains(model.NamedParameters(), p => p.Name == "quantizer.codebook" && !p.Param.RequiresGrad);
        model.SetFrozen(false);
        Assert.False(model.Quantizer!.Codebook.RequiresGrad);
    }

    [Fact]
    public void A_tiny_vq_vae_learns_to_reconstruct_a_few_images()
    {
        var model = new VqVae(Tiny, new Rng(12));
        var x = Tensor.Empty(4, 3, 32, 32);   // four flat colours with a bright square in a different corner each
        var s = x.Span;
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < 32; i++)
                    for (int j = 0; j < 32; j++)
                    {
                        bool square = (i < 16) == (b % 2 == 0) && (j < 16) == (b < 2);
                        s[((b * 3 + c) * 32 + i) * 32 + j] = square ? 0.9f : (c == b % 3 ? 0.4f : -0.6f);
                    }
        var opt = new AdamW(model.NamedParameters().Where(p => p.Param.RequiresGrad), new AdamWConfig(LearningRate: 3e-3f));
        var rng = new Rng(13);
        float first = 0, last = 0;
        for (int step = 0; step < 80; step++)
        {
            using var scope = TensorScope.Begin();
            opt.ZeroGrad();
            var (_, mse, _, loss, z, codes) = model.Forward(x);
            if (step == 0) first = mse.Item();
            last = mse.Item();
            loss.Backward();
            opt.StepOnce();
            model.Quantizer!.Update(z, codes.Data, rng);
        }
        Assert.True(last < first * 0.3f, $"reconstruction MSE went {first} -> {last}");
    }
}

/// <summary>DALL-E's discrete VAE quantiser: argmax codes, KL to the uniform prior, the relaxed sample's gradient.</summary>
[Collection("BufferPool")]
public class GumbelQuantizerTests
{
    [Fact]
    public void Eval_decodes_the_argmax_code_and_the_kl_is_zero_for_uniform_logits()
    {
        var gq = new GumbelQuantizer(new Rng(1), 5, 3);
        var logits = Tensor.Zeros(1, 5, 1, 2);
        logits.Span[3 * 2 + 0] = 4f;                 // position 0 -> code 3
        logits.Span[1 * 2 + 1] = 2f;                 // position 1 -> code 1
        var (q, codes, kl) = gq.Forward(logits, null, training: false);
        Assert.Equal([3, 1], codes.Data);
        var e = gq.Codebook.ToArray(); var Q = q.ToArray();
        for (int j = 0; j < 3; j++) { Assert.Equal(e[3 * 3 + j], Q[j * 2 + 0]); Assert.Equal(e[1 * 3 + j], Q[j * 2 + 1]); }
        // KL(p || uniform) = sum p log(K p), averaged over the two positions.
        double Kl(double big) { double z = Math.Exp(big) + 4, p = Math.Exp(big) / z, r = 1 / z; return p * Math.Log(5 * p) + 4 * r * Math.Log(5 * r); }
        Assert.Equal((Kl(4) + Kl(2)) / 2, kl.Item(), 1e-5);
        Assert.Equal(0, gq.Forward(Tensor.Zeros(2, 5, 2, 2), null, false).Kl.Item(), 1e-6);
    }

    [Fact]
    public void The_relaxed_sample_mixes_codebook_rows_and_passes_gradients_to_logits_and_codebook()
    {
        var gq = new GumbelQuantizer(new Rng(2), 4, 2) { Temperature = 0.5f };
        var logits = Tensor.FromArray(new float[] { 0.1f, -0.3f, 0.7f, 0.2f, 0.5f, 0.0f, -0.2f, 0.4f }, 1, 4, 1, 2);
        logits.RequiresGrad = true;
        var (q, _, kl) = gq.Forward(logits, new Rng(3), training: true);
        // Each decoder input is a convex combination of codebook rows: inside their bounding box.
        var e = gq.Codebook.ToArray(); var Q = q.ToArray();
        for (int j = 0; j < 2; j++)
            for (int p = 0; p < 2; p++)
                Assert.InRange(Q[j * 2 + p], Enumerable.Range(0, 4).Min(k => e[k * 2 + j]) - 1e-6f, Enumerable.Range(0, 4).Max(k => e[k * 2 + j]) + 1e-6f);
        Ops.Add(Ops.Sum(Ops.Square(q)), kl).Backward();
        Assert.Contains(logits.Grad!.ToArray(), g => Math.Abs(g) > 1e-6);
        Assert.Contains(gq.Codebook.Grad!.ToArray(), g => Math.Abs(g) > 1e-6);
    }
}
