using Pictor.Engine.Kernels;

namespace Pictor.Engine;

// Dimension legend: B batch, C channels, G groups, S spatial positions (H*W), N elements normalised together, D
// features.
public static partial class Ops
{
    /// <summary>
    /// Group normalisation (Wu and He, 2018): x [B, C, *] split into G groups of C/G channels; each (b, group) is
    /// normalised with its biased variance, then scaled by gamma[c] and shifted by beta[c]. PyTorch: F.group_norm.
    /// Backward derivation: docs/derivations/normalization.md.
    /// </summary>
    public static Tensor GroupNorm(Tensor x, int groups, Tensor? gamma, Tensor? beta, float eps = 1e-5f)
        => GroupNormCore(x, groups, gamma, beta, eps, siluAfter: false);

    /// <summary>
    /// silu(GroupNorm(x)), the UNet's "norm then activate", fused: the activation runs on each normalised group while
    /// it is in cache (one pass and one tensor fewer; forward bit-identical to the two ops). For backward it keeps only
    /// x and the row statistics, not the normalised tensor: backward recomputes a = GN(x) row by row, turns dY into
    /// dA = dY silu'(a), silu'(a) = s(a) (1 + a (1 - s(a))), and runs GroupNorm's backward on dA. That saves one
    /// activation-sized tensor per use in a training step (PyTorch keeps both).
    /// </summary>
    public static Tensor GroupNormSilu(Tensor x, int groups, Tensor? gamma, Tensor? beta, float eps = 1e-5f)
        => GroupNormCore(x, groups, gamma, beta, eps, siluAfter: true);

    private static Tensor GroupNormCore(Tensor x, int groups, Tensor? gamma, Tensor? beta, float eps, bool siluAfter)
    {
        if (x.Rank < 2) Throw.Argument($"group norm input must be [B, C, ...], got {Shape.Format(x.Shape)}");
        int b = x.Shape[0], c = x.Shape[1];
        if (groups < 1 || c % groups != 0)
            Throw.Argument($"group norm: {c} channels do not divide into {groups} groups");
        CheckAffine(gamma, beta, c, "group norm");
        int s = x.Numel / Math.Max(1, b * c), cg = c / groups;
        return Normalize(x, "GroupNorm", rows: b * groups, n: cg * s, gamma, beta, eps,
            channelOf: (row, i) => (row % groups) * cg + i / s, siluAfter);
    }

    /// <summary>Layer normalisation over the last dimension: x [.., D], gamma and beta [D]. PyTorch:
    /// F.layer_norm.</summary>
    public static Tensor LayerNorm(Tensor x, Tensor? gamma, Tensor? beta, float eps = 1e-5f)
    {
        int d = x.Shape[^1];
        CheckAffine(gamma, beta, d, "layer norm");
        return Normalize(x, "LayerNorm", rows: x.Numel / Math.Max(1, d), n: d, gamma, beta, eps,
            channelOf: (_, i) => i);
    }

    private static void CheckAffine(Tensor? gamma, Tensor? beta, int c, string what)
    {
        if (gamma != null && (gamma.Numel != c || gamma.Rank != 1))
            Throw.Argument($"{what}: weight must be [{c}], got {Shape.Format(gamma.Shape)}");
        if (beta != null && (beta.Numel != c || beta.Rank != 1))
            Throw.Argument($"{what}: bias must be [{c}], got {Shape.Format(beta.Shape)}");
    }

    /// <summary>
    /// Shared kernel: the tensor is <paramref name="rows"/> blocks of <paramref name="n"/> contiguous elements, each
    /// normalised to zero mean and unit variance; element i of a row uses affine channel channelOf(row, i). The channel
    /// is constant over runs (GroupNorm: runs of S; LayerNorm: each element its own), which the loops exploit. Rows run
    /// in parallel both ways; gamma and beta gradients are summed in row order afterwards, so the result does not
    /// depend on the thread count.
    /// </summary>
    private static Tensor Normalize(Tensor x, string name, int rows, int n, Tensor? gamma, Tensor? beta, float eps,
        Func<int, int, int> channelOf,
                                    bool siluAfter = false)
    {
        var X = Contiguous(x);
        var y = Tensor.Empty(x.Shape);
        var mean = new float[rows]; var rstd = new float[rows];
        var G = gamma?.ToArray(); var Bt = beta?.ToArray();
        int run = RunLength(n, rows, channelOf);
        Parallelism.For(rows, r =>
        {
            var xs = X.Span.Slice(r * n, n); var ys = y.Span.Slice(r * n, n);
            var (m, rs) = NormKernels.RowMoments(xs, eps);
            mean[r] = m; rstd[r] = rs;
            if (run == 1)
            {
                // Channels ch0 .. ch0 + n - 1 (LayerNorm; GroupNorm over [B, C] input)
                int ch0 = channelOf(r, 0);
                NormKernels.ApplyPerElement(xs, ys, m, rs, G == null ? default : G.AsSpan(ch0, n), Bt == null ? default
                    : Bt.AsSpan(ch0, n));
            }
            else
                for (int i0 = 0; i0 < n; i0 += run)
                {
                    int ch = channelOf(r, i0);
                    NormKernels.ApplyRun(xs.Slice(i0, run), ys.Slice(i0, run), m, rs, G == null ? 1f : G[ch],
                        Bt == null ? 0f : Bt[ch]);
                }
            if (siluAfter) Activations.SiluForward(ys, ys);
        });
        if (!Autograd.Needs([x, gamma, beta])) return y;
        var inputs = new List<Tensor> { X };
        if (gamma != null) inputs.Add(gamma);
        if (beta != null) inputs.Add(beta);
        return Autograd.Record(y, siluAfter ? name + "Silu" : name, inputs.ToArray(), dOut =>
        {
            var dY = siluAfter ? SiluThroughNorm(dOut) : dOut;
            // xhat = (x - mu) rstd;  dxhat = dY gamma;
            // dX = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat));  dgamma += sum dY xhat;  dbeta += sum dY
            int channels = G?.Length ?? Bt?.Length ?? 0;
            var dG = new double[channels]; var dB = new double[channels];
            int runs = n / run;
            // Per-(row, run) sums of dY xhat and dY for runs longer than one element, added in row order below.
            var partG = channels > 0 && run > 1 ? new double[rows * runs] : null;
            var partB = channels > 0 && run > 1 ? new double[rows * runs] : null;
            var dXt = X.RequiresGrad ? Autograd.GradBuffer(X) : null;   // created here: the pool is per thread
            Parallelism.For(rows, r =>
            {
                var D = dY.Span.Slice(r * n, n); var xs = X.Span.Slice(r * n, n);
                float m = mean[r], rs = rstd[r];
                double s1 = 0, s2 = 0;   // sum dxhat, sum dxhat xhat
                if (run == 1)
                    (s1, s2) = NormKernels.GradSums(xs, D, G == null ? default : G.AsSpan(channelOf(r, 0), n), m, rs);
                else
                    for (int i0 = 0, j = 0; i0 < n; i0 += run, j++)
                    {
                        float g = G == null ? 1f : G[channelOf(r, i0)];
                        var (sumD, sumDXhat) = NormKernels.GradSums(xs.Slice(i0, run), D.Slice(i0, run), default, m,
                            rs);
                        s1 += g * sumD; s2 += g * sumDXhat;
                        if (partG != null) { partG[r * runs + j] = sumDXhat; partB![r * runs + j] = sumD; }
                    }
                if (dXt == null) return;
                var dX = dXt.Span.Slice(r * n, n);
                float a1 = (float)(s1 / n), a2 = (float)(s2 / n);
                if (run == 1)
                    NormKernels.ApplyGradPerElement(xs, D, dX, m, rs, G == null ? default
                        : G.AsSpan(channelOf(r, 0), n), a1, a2);
                else
                    for (int i0 = 0; i0 < n; i0 += run)
                        NormKernels.ApplyGradRun(xs.Slice(i0, run), D.Slice(i0, run), dX.Slice(i0, run), m, rs,
                            G == null ? 1f : G[channelOf(r, i0)], a1, a2);
            });
            if (channels > 0)
            {
                var D = dY.Span; var xs = X.Span;
                for (int r = 0; r < rows; r++)
                {
                    if (partG != null)
                        for (int j = 0; j < runs; j++) { int ch = channelOf(r, j * run); dG[ch] += partG[r * runs
                            + j]; dB[ch] += partB![r * runs + j]; }
                    else
                    {
                        float m = mean[r], rs = rstd[r];
                        int ch0 = channelOf(r, 0);
                        for (int i = 0; i < n; i++)
                        {
                            float xh = (xs[r * n + i] - m) * rs, d = D[r * n + i];
                            dG[ch0 + i] += d * xh; dB[ch0 + i] += d;
                        }
                    }
                }
            }
            if (gamma != null && gamma.RequiresGrad) { var dg = Autograd.GradBuffer(gamma).Span; for (int i =
                0; i < channels; i++) dg[i] += (float)dG[i]; }
            if (beta != null && beta.RequiresGrad) { var db = Autograd.GradBuffer(beta).Span; for (int i =
                0; i < channels; i++) db[i] += (float)dB[i]; }
            if (siluAfter) dY.ReleaseStorage();
        });

        // dA = dOut * silu'(a), with a = (x - mean) rstd gamma + beta recomputed per row (the fused op did not keep
        // it).
        Tensor SiluThroughNorm(Tensor dOut)
        {
            var dA = Tensor.Empty(x.Shape);
            Parallelism.For(rows, r =>
            {
                var xs = X.Span.Slice(r * n, n); var D = dOut.Span.Slice(r * n, n); var dAr = dA.Span.Slice(r * n, n);
                float m = mean[r], rs = rstd[r];
                if (run > 1)
                {
                    for (int i0 = 0; i0 < n; i0 += run)
                    {
                        int ch = channelOf(r, i0);
                        NormKernels.SiluGradThroughRun(xs.Slice(i0, run), D.Slice(i0, run), dAr.Slice(i0, run), m, rs,
                                                       G == null ? 1f : G[ch], Bt == null ? 0f : Bt[ch]);
                    }
                    return;
                }
                int ch0 = channelOf(r, 0);   // per-element channels: GroupNorm over [B, C] input
                for (int i = 0; i < n; i++)
                {
                    float a = (xs[i] - m) * rs * (G == null ? 1f : G[ch0 + i]) + (Bt == null ? 0f : Bt[ch0 + i]);
                    float sg = 1f / (1f + MathF.Exp(-a));
                    dAr[i] = D[i] * sg * (1f + a * (1f - sg));
                }
            });
            return dA;
        }
    }

    /// <summary>Length of the runs over which channelOf is constant (divides n).</summary>
    private static int RunLength(int n, int rows, Func<int, int, int> channelOf)
    {
        if (n <= 1 || rows == 0) return Math.Max(1, n);
        int first = channelOf(0, 0), len = 1;
        while (len < n && channelOf(0, len) == first) len++;
        return len;
    }
}
