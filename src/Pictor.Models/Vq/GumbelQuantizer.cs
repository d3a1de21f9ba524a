using Pictor.Engine;
using Pictor.Nn;

namespace Pictor.Models.Vq;

// Dimension legend: B batch, K codes, D code width, h/w latent grid, N = B*h*w positions.

/// <summary>
/// The discrete VAE's quantiser (Ramesh et al. 2021, "Zero-Shot Text-to-Image Generation", section 2.1): the encoder
/// gives logits l [B, K, h, w] over the K codes at each position; during training the code is relaxed to the
/// Gumbel-softmax sample y = softmax((l + g) / tau), g_k = -log(-log u_k), u ~ U(0, 1) (Jang et al. 2017, eq. 1;
/// Maddison et al. 2017), and the decoder reads sum_k y_k e_k, so gradients reach the encoder and the codebook e
/// (a parameter here, trained by the optimiser). The temperature tau is annealed towards 1/16 by the trainer. The prior
/// term is KL(q(z | x) || uniform) = sum_k p_k log(K p_k), p = softmax(l), averaged over positions (the ELBO's KL
/// with the uniform prior DALL-E uses for stage 1). Tokens are argmax_k l_k.
/// </summary>
public sealed class GumbelQuantizer : Module
{
    public int Codes { get; }   // K
    public int Dim { get; }     // D
    public Tensor Codebook { get; }   // [K, D]
    /// <summary>The Gumbel-softmax temperature tau (set by the trainer's annealing schedule).</summary>
    public float Temperature { get; set; } = 1f;

    public GumbelQuantizer(Rng rng, int codes, int dim)
    {
        if (codes < 2 || dim < 1)
            Throw.Argument($"dVAE codebook needs at least 2 entries of width >= 1, got {codes} x {dim}");
        Codes = codes; Dim = dim;
        Codebook = Param("codebook", Init.Normal(rng, 1f, codes, dim));
    }

    /// <summary>logits [B, K, h, w] -> (decoder input [B, D, h, w], codes [B, h, w] = argmax, KL to uniform).
    /// Training draws Gumbel noise from <paramref name="rng"/>; otherwise the decoder input is the argmax code's
    /// entry.</summary>
    public (Tensor Quantized, IntTensor Codes, Tensor Kl) Forward(Tensor logits, Rng? rng, bool training)
    {
        if (logits.Rank != 4 || logits.Shape[1] != Codes)
            Throw.Argument($"dVAE logits must be [B, {Codes}, h, w], got {Shape.Format(logits.Shape)}");
        int b = logits.Shape[0], h = logits.Shape[2], w = logits.Shape[3], n = b * h * w;
        var rows = Ops.Reshape(Ops.Permute(logits, 0, 2, 3, 1), n, Codes);                 // (N, K)
        var codes = Argmax(rows);
        var logp = Ops.LogSoftmax(rows, 1);                                                  // (N, K)
        var kl = Ops.MulScalar(Ops.Sum(Ops.Mul(Ops.Exp(logp), Ops.AddScalar(logp, MathF.Log(Codes)))), 1f / n);
        Tensor q;
        if (training)
        {
            if (rng == null) Throw.Argument("dVAE training needs a random generator for the Gumbel noise");
            var g = Tensor.Empty(n, Codes);
            var G = g.Span;
            for (int i = 0; i < G.Length; i++)
                G[i] = -MathF.Log(-MathF.Log(Math.Max(rng.NextFloat(), 1e-20f)) + 1e-20f);
            var y = Ops.Softmax(Ops.MulScalar(Ops.Add(rows, g), 1f / Temperature), 1);      // (N, K)
            q = Ops.MatMul(y, Codebook);                                                     // (N, D)
        }
        else q = Ops.Embedding(new IntTensor(codes, n), Codebook);                           // (N, D)
        var quantized = Ops.Permute(Ops.Reshape(q, b, h, w, Dim), 0, 3, 1, 2);              // (B, D, h, w)
        return (Ops.Contiguous(quantized), new IntTensor(codes, b, h, w), kl);
    }

    /// <summary>Codebook rows for codes [B*h*w] laid out as [B, D, h, w] (decoding token grids).</summary>
    public Tensor Lookup(int[] codes, int b, int h, int w)
    {
        if (codes.Length != b * h * w) Throw.Argument($"{codes.Length} codes for a {b}x{h}x{w} grid");
        new IntTensor(codes, codes.Length).CheckRange(Codes, "dVAE code");
        return Ops.Contiguous(Ops.Permute(Ops.Reshape(Ops.Embedding(new IntTensor(codes, codes.Length), Codebook), b, h,
            w, Dim), 0, 3, 1, 2));
    }

    private int[] Argmax(Tensor rows)
    {
        int n = rows.Shape[0];
        var r = Ops.Contiguous(rows.Detach()).Span;
        var idx = new int[n];
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            for (int k = 1; k < Codes; k++) if (r[i * Codes + k] > r[i * Codes + best]) best = k;
            idx[i] = best;
        }
        return idx;
    }
}
