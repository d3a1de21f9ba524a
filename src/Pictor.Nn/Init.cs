using Pictor.Engine;

namespace Pictor.Nn;

/// <summary>Weight initialisations, matching PyTorch's defaults where named.</summary>
public static class Init
{
    /// <summary>U(-bound, bound) with bound = 1/sqrt(fan_in): PyTorch's default for Linear/Conv weights
    /// (kaiming_uniform_ with a = sqrt(5)) and biases.</summary>
    public static Tensor DefaultUniform(Rng rng, int fanIn, params int[] shape)
    {
        float bound = fanIn > 0 ? 1f / MathF.Sqrt(fanIn) : 0f;
        var t = Tensor.Empty(shape);
        rng.FillUniform(t.Span, -bound, bound);
        return t;
    }

    /// <summary>N(0, std^2), e.g. std 0.02 for transformer embeddings (GPT-2).</summary>
    public static Tensor Normal(Rng rng, float std, params int[] shape)
    {
        var t = Tensor.Empty(shape);
        rng.FillNormal(t.Span, 0f, std);
        return t;
    }

    /// <summary>Xavier/Glorot uniform: bound = sqrt(6 / (fan_in + fan_out)).</summary>
    public static Tensor XavierUniform(Rng rng, int fanIn, int fanOut, params int[] shape)
    {
        float bound = MathF.Sqrt(6f / (fanIn + fanOut));
        var t = Tensor.Empty(shape);
        rng.FillUniform(t.Span, -bound, bound);
        return t;
    }

    public static Tensor Zeros(params int[] shape) => Tensor.Zeros(shape);
    public static Tensor Ones(params int[] shape) => Tensor.Ones(shape);
}
