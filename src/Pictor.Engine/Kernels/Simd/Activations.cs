using System.Numerics.Tensors;

namespace Pictor.Engine.Kernels;

/// <summary>Activation kernels (forward, and backward accumulating into dX). Derivatives in the comments.</summary>
internal static class Activations
{
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;
    private const float Sqrt2OverPi = 0.79788456080286536f;

    // silu(x) = x s(x), s = sigmoid; silu'(x) = s(x) (1 + x (1 - s(x)))
    public static void SiluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.IsEmpty) return;   // TensorPrimitives.Sigmoid rejects empty spans
        // sigmoid goes to scratch first: y may alias x (in-place use).
        var scratch = System.Buffers.ArrayPool<float>.Shared.Rent(x.Length);
        var s = scratch.AsSpan(0, x.Length);
        TensorPrimitives.Sigmoid(x, s);
        TensorPrimitives.Multiply(x, s, y);
        System.Buffers.ArrayPool<float>.Shared.Return(scratch);
    }

    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dY, Span<float> dX)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float s = 1f / (1f + MathF.Exp(-x[i]));
            dX[i] += dY[i] * s * (1f + x[i] * (1f - s));
        }
    }

    // gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); gelu'(x) = Phi(x) + x phi(x)
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = 0.5f * x[i] * (1f + Erf(x[i] * InvSqrt2));
    }

    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dY, Span<float> dX)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            float cdf = 0.5f * (1f + Erf(v * InvSqrt2));
            float pdf = InvSqrt2Pi * MathF.Exp(-0.5f * v * v);
            dX[i] += dY[i] * (cdf + v * pdf);
        }
    }

    // gelu_tanh(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
    // d/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    public static void GeluTanhForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = 0.5f * v * (1f + MathF.Tanh(Sqrt2OverPi * (v + 0.044715f * v * v * v)));
        }
    }

    public static void GeluTanhBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dY, Span<float> dX)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            float t = MathF.Tanh(Sqrt2OverPi * (v + 0.044715f * v * v * v));
            float d = 0.5f * (1f + t) + 0.5f * v * (1f - t * t) * Sqrt2OverPi * (1f + 3f * 0.044715f * v * v);
            dX[i] += dY[i] * d;
        }
    }

    /// <summary>erf in float precision: computed in double with the complementary-error-function series of
    /// Numerical Recipes (erfc Chebyshev fit, |error| &lt; 1.2e-7), then rounded.</summary>
    public static float Erf(float xf)
    {
        double x = xf;
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                   t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                   t * (-0.82215223 + t * 0.17087277)))))))));
        double erf = 1.0 - r;
        return (float)(x >= 0 ? erf : -erf);
    }
}
