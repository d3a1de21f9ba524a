using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

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

    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> y,
        ReadOnlySpan<float> dY, Span<float> dX)
    {
        // Vectorised in chunks on the stack: s = sigmoid(x); t = s (1 + x (1 - s)); dX += dY t.
        Span<float> s = stackalloc float[256]; Span<float> t = stackalloc float[256];
        for (int c0 = 0; c0 < x.Length; c0 += s.Length)
        {
            int len = Math.Min(s.Length, x.Length - c0);
            var xc = x.Slice(c0, len); var sc = s[..len]; var tc = t[..len];
            TensorPrimitives.Sigmoid(xc, sc);
            TensorPrimitives.Subtract(1f, sc, tc);
            TensorPrimitives.MultiplyAdd(xc, tc, 1f, tc);
            TensorPrimitives.Multiply(tc, sc, tc);
            TensorPrimitives.MultiplyAdd(dY.Slice(c0, len), tc, dX.Slice(c0, len), dX.Slice(c0, len));
        }
    }

    /// <summary>Reference for <see cref="SiluBackward"/>: the scalar definition.</summary>
    public static void SiluBackwardReference(ReadOnlySpan<float> x, ReadOnlySpan<float> dY, Span<float> dX)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float s = 1f / (1f + MathF.Exp(-x[i]));
            dX[i] += dY[i] * s * (1f + x[i] * (1f - s));
        }
    }

    // gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); gelu'(x) = Phi(x) + x phi(x)
    // Vectorised in float lanes (8 per Vector256) with the same erfc fit as the scalar Erf; the tail is scalar.
    // The fit in double with a double vector exp was 14% of the AR-S training step (bench/RESULTS.md).
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var half = Vector256.Create(0.5f);
            for (; i <= x.Length - 8; i += 8)
            {
                var v = Vector256.Create(x.Slice(i, 8));   // loaded before the store: y may alias x
                (half * v * (Vector256<float>.One + ErfVector(v * InvSqrt2))).CopyTo(y.Slice(i, 8));
            }
        }
        for (; i < x.Length; i++) y[i] = 0.5f * x[i] * (1f + Erf(x[i] * InvSqrt2));
    }

    /// <summary>Scalar GELU: the reference the vectorised <see cref="GeluForward"/> is tested against.</summary>
    public static void GeluForwardReference(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = 0.5f * x[i] * (1f + Erf(x[i] * InvSqrt2));
    }

    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> y,
        ReadOnlySpan<float> dY, Span<float> dX)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var half = Vector256.Create(0.5f); var k = Vector256.Create(InvSqrt2Pi);
            for (; i <= x.Length - 8; i += 8)
            {
                var v = Vector256.Create(x.Slice(i, 8));
                var cdf = half * (Vector256<float>.One + ErfVector(v * InvSqrt2));
                var pdf = k * Vector256.Exp(-half * v * v);
                var d = Vector256.Create(dX.Slice(i, 8));
                Vector256.FusedMultiplyAdd(Vector256.Create(dY.Slice(i, 8)), Vector256.FusedMultiplyAdd(v, pdf, cdf), d)
                    .CopyTo(dX.Slice(i, 8));
            }
        }
        for (; i < x.Length; i++)
        {
            float v = x[i];
            float cdf = 0.5f * (1f + Erf(v * InvSqrt2));
            float pdf = InvSqrt2Pi * MathF.Exp(-0.5f * v * v);
            dX[i] += dY[i] * (cdf + v * pdf);
        }
    }

    /// <summary>erf of 8 floats by the erfc fit of <see cref="Erf"/> (Numerical Recipes), evaluated in float with the
    /// vector exp: within 1e-6 of the double-precision scalar (SimdKernelTests).</summary>
    private static Vector256<float> ErfVector(Vector256<float> x)
    {
        var z = Vector256.Abs(x);
        var one = Vector256<float>.One;
        var t = one / Vector256.FusedMultiplyAdd(Vector256.Create(0.5f), z, one);
        var p = Vector256.Create(0.17087277f);
        p = Vector256.FusedMultiplyAdd(t, p, Vector256.Create(-0.82215223f));
        p = Vector256.FusedMultiplyAdd(t, p, Vector256.Create(1.48851587f));
        p = Vector256.FusedMultiplyAdd(t, p, Vector256.Create(-1.13520398f));
        p = Vector256.FusedMultiplyAdd(t, p, Vector256.Create(0.27886807f));
        p = Vector256.FusedMultiplyAdd(t, p, Vector256.Create(-0.18628806f));
        p = Vector256.FusedMultiplyAdd(t, p, Vector256.Create(0.09678418f));
        p = Vector256.FusedMultiplyAdd(t, p, Vector256.Create(0.37409196f));
        p = Vector256.FusedMultiplyAdd(t, p, Vector256.Create(1.00002368f));
        var r = t * Vector256.Exp(Vector256.FusedMultiplyAdd(t, p, -z * z - Vector256.Create(1.26551223f)));
        var erf = one - r;
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), erf, -erf);
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

    public static void GeluTanhBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> y,
        ReadOnlySpan<float> dY, Span<float> dX)
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
