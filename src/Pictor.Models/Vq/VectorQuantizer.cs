using Pictor.Engine;
using Pictor.Nn;

namespace Pictor.Models.Vq;

// Dimension legend: B batch, D code width, H/W latent grid, N = B*H*W latent vectors, K codebook entries.

/// <summary>
/// Vector quantiser with a moving-average codebook (van den Oord et al. 2017, "Neural Discrete Representation
/// Learning", section 3.2 and appendix A.1). Each latent vector z_i is replaced by its nearest entry e_k(i),
/// k(i) = argmin_k ||z_i - e_k||^2. The encoder gets the straight-through gradient (the decoder's gradient at e copied
/// to z) plus beta times the commitment loss ||z - sg[e]||^2. The codebook gets no gradient; it follows the mean of the
/// vectors assigned to each entry:
///   N_k &lt;- g N_k + (1 - g) n_k,   m_k &lt;- g m_k + (1 - g) sum_{i: k(i) = k} z_i,   e_k = m_k / N~_k,
/// with Laplace smoothing N~_k = (N_k + eps) / (N + K eps) N, N = sum_k N_k. Entries whose N_k falls below
/// <see cref="RestartBelow"/> are dead: they restart at a latent vector of the current batch drawn by the caller's Rng
/// (the restart of Dhariwal et al. 2020, Jukebox), which on the first update also initialises the codebook from data.
/// </summary>
public sealed class VectorQuantizer : Module
{
    private const float Eps = 1e-5f;

    public int Codes { get; }          // K
    public int Dim { get; }            // D
    public float Decay { get; }        // g
    public float RestartBelow { get; }
    public Tensor Codebook { get; }    // [K, D] e_k
    private readonly Tensor clusterSize;   // [K] N_k
    private readonly Tensor embedSum;      // [K, D] m_k

    public VectorQuantizer(Rng rng, int codes, int dim, float decay = 0.99f, float restartBelow = 0.1f)
    {
        if (codes < 2 || dim < 1)
            Throw.Argument($"VQ codebook needs at least 2 entries of width >= 1, got {codes} x {dim}");
        if (decay is <= 0f or >= 1f) Throw.Argument($"VQ codebook decay must be in (0, 1), got {decay}");
        Codes = codes; Dim = dim; Decay = decay; RestartBelow = restartBelow;
        Codebook = Buffer("codebook", Init.Normal(rng, 1f / MathF.Sqrt(dim), codes, dim));
        // all dead: the first update seeds every entry from data
        clusterSize = Buffer("cluster_size", Tensor.Zeros(codes));
        embedSum = Buffer("embed_sum", Tensor.Zeros(codes, dim));
    }

    /// <summary>One quantisation. z [B, D, H, W] -> quantised [B, D, H, W] (straight-through: its gradient flows to z),
    /// codes [B, H, W] as an IntTensor, and the commitment loss mean ||z - sg[e]||^2 (a scalar with gradient to
    /// z).</summary>
    public (Tensor Quantized, IntTensor Codes, Tensor Commitment) Forward(Tensor z)
    {
        if (z.Rank != 4 || z.Shape[1] != Dim)
            Throw.Argument($"VQ input must be [B, {Dim}, H, W], got {Shape.Format(z.Shape)}");
        int b = z.Shape[0], h = z.Shape[2], w = z.Shape[3];
        var idx = Nearest(Rows(z));
        var q = Lookup(idx, b, h, w);                                             // (B, D, H, W), no gradient
        var commitment = Ops.MseLoss(z, q);                                       // gradient to z only: q is a constant
        var straight = Ops.Add(z, Ops.Sub(q, z.Detach()));                        // value q, gradient identity to z
        return (straight, new IntTensor(idx, b, h, w), commitment);
    }

    /// <summary>Latents [B, D, H, W] as one vector per row [N, D] (no gradient), the layout the codebook search
    /// reads.</summary>
    public Tensor Rows(Tensor z)
    {
        using var _ = Autograd.NoGrad();
        return Ops.Contiguous(Ops.Reshape(Ops.Permute(z.Detach(), 0, 2, 3, 1), z.Shape[0] * z.Shape[2] * z.Shape[3],
            Dim));
    }

    /// <summary>Index of the nearest codebook entry for each row of <paramref name="rows"/> [N, D]: argmin over k of
    /// ||e_k||^2 - 2 z.e_k (||z||^2 is the same for every k). Ties go to the lower index.</summary>
    public int[] Nearest(Tensor rows)
    {
        int n = rows.Shape[0];
        Tensor dots;
        using (Autograd.NoGrad()) dots = Ops.MatMul(rows, Ops.Transpose(Codebook, 0, 1));   // (N, K)
        var d = dots.Span; var e = Codebook.Span;
        var norms = new float[Codes];
        for (int k = 0; k < Codes; k++) { double s = 0; for (int j = 0; j < Dim; j++) s += (double)e[k * Dim
            + j] * e[k * Dim + j]; norms[k] = (float)s; }
        var idx = new int[n];
        for (int i = 0; i < n; i++)
        {
            int best = 0; float bestD = float.PositiveInfinity;
            for (int k = 0; k < Codes; k++)
            {
                float dist = norms[k] - 2f * d[i * Codes + k];
                if (dist < bestD) { bestD = dist; best = k; }
            }
            idx[i] = best;
        }
        return idx;
    }

    /// <summary>Codebook rows for codes [B*H*W] laid out as an image [B, D, H, W] (decoding token grids).</summary>
    public Tensor Lookup(ReadOnlySpan<int> codes, int b, int h, int w)
    {
        if (codes.Length != b * h * w) Throw.Argument($"{codes.Length} codes for a {b}x{h}x{w} grid");
        var q = Tensor.Empty(b, Dim, h, w);
        var Q = q.Span; var e = Codebook.Span;
        for (int bi = 0; bi < b; bi++)
            for (int p = 0; p < h * w; p++)
            {
                int k = codes[bi * h * w + p];
                if ((uint)k >= (uint)Codes)
                    Throw.Argument($"code {k} at position {bi * h * w + p} is outside the codebook (0..{Codes - 1})");
                for (int j = 0; j < Dim; j++) Q[(bi * Dim + j) * h * w + p] = e[k * Dim + j];
            }
        return q;
    }

    /// <summary>
    /// The moving-average codebook update for one training batch (call after <see cref="Forward"/>, with the same z and
    /// the codes it returned), then the restart of dead entries from rows of z chosen by <paramref name="rng"/>.
    /// Returns how many entries were restarted.
    /// </summary>
    public int Update(Tensor z, ReadOnlySpan<int> codes, Rng rng)
    {
        int n = codes.Length;
        var rows = Rows(z);
        if (rows.Shape[0] != n) Throw.Argument($"{n} codes for {rows.Shape[0]} latent vectors");
        var R = rows.Span; var N = clusterSize.Span; var M = embedSum.Span; var E = Codebook.Span;
        var count = new double[Codes]; var sum = new double[Codes * Dim];
        for (int i = 0; i < n; i++)
        {
            int k = codes[i]; count[k] += 1;
            for (int j = 0; j < Dim; j++) sum[k * Dim + j] += R[i * Dim + j];
        }
        float g = Decay;
        double total = 0;
        for (int k = 0; k < Codes; k++)
        {
            N[k] = g * N[k] + (1 - g) * (float)count[k];
            for (int j = 0; j < Dim; j++) M[k * Dim + j] = g * M[k * Dim + j] + (1 - g) * (float)sum[k * Dim + j];
            total += N[k];
        }
        for (int k = 0; k < Codes; k++)
        {
            double smoothed = (N[k] + Eps) / (total + Codes * Eps) * total;
            if (smoothed > 0) for (int j = 0; j < Dim; j++) E[k * Dim + j] = (float)(M[k * Dim + j] / smoothed);
        }
        int restarted = 0;
        for (int k = 0; k < Codes; k++)
        {
            if (N[k] >= RestartBelow) continue;
            // a random latent vector of this batch
            int r = rng.NextInt(n);
            for (int j = 0; j < Dim; j++) { E[k * Dim + j] = R[r * Dim + j]; M[k * Dim + j] = R[r * Dim + j]; }
            // counts as used once: m_k / N_k = e_k
            N[k] = 1f;
            restarted++;
        }
        return restarted;
    }

    /// <summary>Codebook use in a batch of codes: perplexity exp(-sum p_k log p_k) (K when all entries are used
    /// equally, 1 when one is) and the fraction of entries used at least once.</summary>
    public (double Perplexity, double Used) Usage(ReadOnlySpan<int> codes) => UsageOf(codes, Codes);

    /// <summary>As <see cref="Usage"/> for a codebook of <paramref name="k"/> entries.</summary>
    public static (double Perplexity, double Used) UsageOf(ReadOnlySpan<int> codes, int k)
    {
        var count = new int[k];
        foreach (int code in codes) count[code]++;
        double h = 0; int used = 0;
        foreach (int c in count)
            if (c > 0) { double p = (double)c / codes.Length; h -= p * Math.Log(p); used++; }
        return (Math.Exp(h), (double)used / k);
    }
}
