using Pictor.Engine.Kernels;

namespace Pictor.Engine;

// Dimension legend: B batch, C channels, G groups, S spatial positions (H*W), N elements normalised together, D features.
public static partial class Ops
{
    /// <summary>
    /// Group normalisation (Wu and He, 2018): x [B, C, *] split into G groups of C/G channels; each (b, group) is
    /// normalised with its biased variance, then scaled by gamma[c] and shifted by beta[c]. PyTorch: F.group_norm.
    /// Backward derivation: docs/derivations/normalization.md.
    /// </summary>
    public static Tensor GroupNorm(Tensor x, int groups, Tensor? gamma, Tensor? beta, float eps = 1e-5f)
    {
        if (x.Rank < 2) Throw.Argument($"group norm input must be [B, C, ...], got {Shape.Format(x.Shape)}");
        int b = x.Shape[0], c = x.Shape[1];
        if (groups < 1 || c % groups != 0) Throw.Argument($"group norm: {c} channels do not divide into {groups} groups");
        CheckAffine(gamma, beta, c, "group norm");
        int s = x.Numel / Math.Max(1, b * c), cg = c / groups;
        return Normalize(x, "GroupNorm", rows: b * groups, n: cg * s, gamma, beta, eps,
            channelOf: (row, i) => (row % groups) * cg + i / s);
    }

    /// <summary>Layer normalisation over the last dimension: x [.., D], gamma and beta [D]. PyTorch: F.layer_norm.</summary>
    public static Tensor LayerNorm(Tensor x, Tensor? gamma, Tensor? beta, float eps = 1e-5f)
    {
        int d = x.Shape[^1];
        CheckAffine(gamma, beta, d, "layer norm");
        return Normalize(x, "LayerNorm", rows: x.Numel / Math.Max(1, d), n: d, gamma, beta, eps, channelOf: (_, i) => i);
    }

    private static void CheckAffine(Tensor? gamma, Tensor? beta, int c, string what)
    {
        if (gamma != null && (gamma.Numel != c || gamma.Rank != 1)) Throw.Argument($"{what}: weight must be [{c}], got {Shape.Format(gamma.Shape)}");
        if (beta != null && (beta.Numel != c || beta.Rank != 1)) Throw.Argument($"{what}: bias must be [{c}], got {Shape.Format(beta.Shape)}");
    }

    /// <summary>
    /// Shared kernel: the tensor is <paramref name="rows"/> blocks of <paramref name="n"/> contiguous elements, each
    /// normalised to zero mean and unit variance; element i of a row uses affine channel channelOf(row, i). The channel
    /// is constant over runs (GroupNorm: runs of S; LayerNorm: each element its own), which the loops exploit.
    /// </summary>
    private static Tensor Normalize(Tensor x, string name, int rows, int n, Tensor? gamma, Tensor? beta, float eps, Func<int, int, int> channelOf)
    {
        var X = Contiguous(x);
        var y = Tensor.Empty(x.Shape);
        var mean = new float[rows]; var rstd = new float[rows];
        var G = gamma?.ToArray(); var Bt = beta?.ToArray();
        int run = RunLength(n, rows, channelOf);
        Parallelism.For(rows, r =>
        {
            var xs = X.Span.Slice(r * n, n); var ys = y.Span.Slice(r * n, n);
            double sum = 0, sq = 0;
            for (int i = 0; i < n; i++) sum += xs[i];
            double mu = sum / n;
            for (int i = 0; i < n; i++) { double dv = xs[i] - mu; sq += dv * dv; }
            float rs = (float)(1.0 / Math.Sqrt(sq / n + eps));
            mean[r] = (float)mu; rstd[r] = rs;
            float m = (float)mu;
            for (int i0 = 0; i0 < n; i0 += run)
            {
                int ch = channelOf(r, i0);
                float g = G == null ? 1f : G[ch], bb = Bt == null ? 0f : Bt[ch];
                for (int i = i0; i < i0 + run; i++) ys[i] = (xs[i] - m) * rs * g + bb;
            }
        });
        if (!Autograd.Needs([x, gamma, beta])) return y;
        var inputs = new List<Tensor> { X };
        if (gamma != null) inputs.Add(gamma);
        if (beta != null) inputs.Add(beta);
        return Autograd.Record(y, name, inputs.ToArray(), dY =>
        {
            // xhat = (x - mu) rstd;  dxhat = dY gamma;
            // dX = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat));  dgamma += sum dY xhat;  dbeta += sum dY
            int channels = G?.Length ?? Bt?.Length ?? 0;
            var dG = new double[channels]; var dB = new double[channels];
            var D = dY.Span; var xs = X.Span;
            Span<float> dX = X.RequiresGrad ? Autograd.GradBuffer(X).Span : default;
            for (int r = 0; r < rows; r++)
            {
                float m = mean[r], rs = rstd[r];
                double s1 = 0, s2 = 0;
                for (int i0 = 0; i0 < n; i0 += run)
                {
                    int ch = channelOf(r, i0);
                    float g = G == null ? 1f : G[ch];
                    double gsum = 0, bsum = 0;
                    for (int i = i0; i < i0 + run; i++)
                    {
                        float xh = (xs[r * n + i] - m) * rs, d = D[r * n + i];
                        float dxh = d * g;
                        s1 += dxh; s2 += dxh * xh;
                        gsum += d * xh; bsum += d;
                    }
                    if (channels > 0) { dG[ch] += gsum; dB[ch] += bsum; }
                }
                if (!X.RequiresGrad) continue;
                float a1 = (float)(s1 / n), a2 = (float)(s2 / n);
                for (int i0 = 0; i0 < n; i0 += run)
                {
                    int ch = channelOf(r, i0);
                    float g = G == null ? 1f : G[ch];
                    for (int i = i0; i < i0 + run; i++)
                    {
                        float xh = (xs[r * n + i] - m) * rs;
                        dX[r * n + i] += rs * (D[r * n + i] * g - a1 - xh * a2);
                    }
                }
            }
            if (gamma != null && gamma.RequiresGrad) { var dg = Autograd.GradBuffer(gamma).Span; for (int i = 0; i < channels; i++) dg[i] += (float)dG[i]; }
            if (beta != null && beta.RequiresGrad) { var db = Autograd.GradBuffer(beta).Span; for (int i = 0; i < channels; i++) db[i] += (float)dB[i]; }
        });
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
