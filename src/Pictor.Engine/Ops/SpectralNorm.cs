namespace Pictor.Engine;

public static partial class Ops
{
    /// <summary>
    /// Spectral normalisation (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks",
    /// Algorithm 1): the weight divided by an estimate of its largest singular value. The weight is read as a matrix
    /// W [O, K] (its first axis against the rest: a convolution's [O, I, kh, kw] is [O, I kh kw]); u [O] and v [K] are
    /// the power iteration's vectors, updated in place by <paramref name="iterations"/> steps
    ///     u = W v / ||W v||,   v = W^T u / ||W^T u||      (norms floored at 1e-12, as torch.nn.functional.normalize;
    ///                                                     u first, as PyTorch's _power_method)
    /// and then, with u and v held constant,
    ///     sigma = u^T W v,   y = W / sigma.
    /// Gradient (u, v constant, as PyTorch's torch.nn.utils.parametrizations.spectral_norm):
    ///     dW = dY / sigma - (sum(dY * W) / sigma^2) u v^T.
    /// With zero iterations (evaluation) the stored u and v are used as they are.
    /// </summary>
    /// <param name="weight">[O, ...]: the weight to normalise (any rank of at least 2).</param>
    /// <param name="u">[O]: the left singular vector estimate; a buffer, never differentiated.</param>
    /// <param name="v">[K], K = the product of the weight's other axes: the right one.</param>
    public static Tensor SpectralNorm(Tensor weight, Tensor u, Tensor v, int iterations)
    {
        if (weight.Rank < 2)
            Throw.Argument($"spectral norm needs a weight of rank 2 or more, got {Shape.Format(weight.Shape)}");
        int o = weight.Shape[0], k = weight.Numel / o;
        if (u.Numel != o || v.Numel != k)
            Throw.Argument($"spectral norm of a {Shape.Format(weight.Shape)} weight needs u of {o} and v of {k} "
                + $"values, got {u.Numel} and {v.Numel}");
        if (iterations < 0) Throw.Argument($"spectral norm: iterations must be 0 or more, got {iterations}");
        var w = Contiguous(weight);
        var W = w.Span; var U = u.Span; var V = v.Span;
        for (int it = 0; it < iterations; it++)
        {
            MatVec(W, V, U, o, k); Normalize(U);
            MatTVec(W, U, V, o, k); Normalize(V);
        }
        var wv = new float[o];
        MatVec(W, V, wv, o, k);
        double sigma = 0;
        for (int i = 0; i < o; i++) sigma += (double)U[i] * wv[i];
        float inv = (float)(1 / sigma);
        var y = Tensor.Empty(w.Shape);
        System.Numerics.Tensors.TensorPrimitives.Multiply(W, inv, y.Span);
        if (!Autograd.Needs(weight)) return y;
        var uc = U.ToArray(); var vc = V.ToArray();
        return Autograd.Record(y, "SpectralNorm", [w], dY =>
        {
            // dW += dY / sigma - (sum(dY * W) / sigma^2) u v^T
            var D = dY.Span; var Wt = w.Span; var dW = Autograd.GradBuffer(w).Span;
            double dot = 0;
            for (int i = 0; i < D.Length; i++) dot += (double)D[i] * Wt[i];
            float c = (float)(dot / (sigma * sigma));
            for (int i = 0; i < o; i++)
            {
                float ci = c * uc[i];
                var row = dW.Slice(i * k, k); var drow = D.Slice(i * k, k);
                for (int j = 0; j < k; j++) row[j] += drow[j] * inv - ci * vc[j];
            }
        });
    }

    /// <summary>y [O] = W [O, K] x [K].</summary>
    private static void MatVec(ReadOnlySpan<float> w, ReadOnlySpan<float> x, Span<float> y, int o, int k)
    {
        for (int i = 0; i < o; i++)
            y[i] = System.Numerics.Tensors.TensorPrimitives.Dot(w.Slice(i * k, k), x);
    }

    /// <summary>y [K] = W^T [K, O] x [O].</summary>
    private static void MatTVec(ReadOnlySpan<float> w, ReadOnlySpan<float> x, Span<float> y, int o, int k)
    {
        var acc = new double[k];
        for (int i = 0; i < o; i++)
        {
            double xi = x[i]; var row = w.Slice(i * k, k);
            for (int j = 0; j < k; j++) acc[j] += xi * row[j];
        }
        for (int j = 0; j < k; j++) y[j] = (float)acc[j];
    }

    /// <summary>x / max(||x||, 1e-12) in place.</summary>
    private static void Normalize(Span<float> x)
    {
        double n = 0;
        foreach (var a in x) n += (double)a * a;
        float s = (float)(1 / Math.Max(Math.Sqrt(n), 1e-12));
        System.Numerics.Tensors.TensorPrimitives.Multiply(x, s, x);
    }
}
