using Pictor.Engine;
using Pictor.Nn;

namespace Pictor.Models.Unet;

// Dimension legend: B batch, C channels, H/W spatial, P = H*W pixels, S text tokens, Dc text width.

/// <summary>
/// Token blobs: every text token places its own channel vector at its own place. Token s of the context gives
/// channels v_s = W_v c_s, the UNet's shared <see cref="TokenPlaces"/> head gives its centre m_s in [-1, 1]^2 (pixel
/// coordinates as <see cref="UnetModel.CoordinateGrid"/>), and pixel p at position x_p receives
///
///     out[b, c, p] = (1/S) sum_s v[b, s, c] exp(-|x_p - m[b, s]|^2 / (2 sigma^2)),   sigma = 0.3
///
/// (half the width of a large shapes object; 0.3 of the half-image). A per-pixel read-out of the text that needs no
/// query from the (noisy) image: cross-attention asks the caption from each pixel's features, which at the noisiest
/// steps hold no layout yet; here the caption writes the layout itself. A colour word's token puts that colour's
/// channels at its place, and a shape word's token puts its shape's channels at the place of the same object: the
/// binding, first order (docs/derivations/binding.md, "Token places").
/// </summary>
public sealed class TokenBlobs : Module
{
    public const float Sigma = 0.3f;
    private readonly Linear channels;

    public TokenBlobs(Rng rng, int contextDim, int outChannels) =>
        channels = Child("v", new Linear(rng, contextDim, outChannels));

    /// <summary>context [B, S, Dc], the shared centres [B, S, 2] (<see cref="TokenPlaces"/>), output size H x W ->
    /// [B, C, H, W].</summary>
    public Tensor Forward(Tensor context, int h, int w, Tensor? centres)
    {
        if (centres == null)
            Throw.Argument("token blobs are put at the UNet's shared token places; pass the centres [B, S, 2]");
        return Place(channels.Forward(context), centres, h, w);
    }

    /// <summary>Channels v [B, S, C] and centres m [B, S, 2] -> [B, C, H, W], (1/S) sum_s v_s blob(m_s).</summary>
    public static Tensor Place(Tensor v, Tensor m, int h, int w)
    {
        if (v.Rank != 3 || m.Rank != 3 || m.Shape[2] != 2 || m.Shape[0] != v.Shape[0] || m.Shape[1] != v.Shape[1])
            Throw.Argument($"token blobs need channels [B, S, C] and centres [B, S, 2], got {Shape.Format(v.Shape)} "
                + $"and {Shape.Format(m.Shape)}");
        int b = v.Shape[0], s = v.Shape[1], c = v.Shape[2];
        var blobs = Ops.Reshape(Blobs(Ops.Reshape(m, b * s, 2), h, w), b, s, h * w);         // (B, S, P)
        // (B, C, P) = sum_s v_s^T blob_s
        var o = Ops.MatMul(Ops.Transpose(v, 1, 2), blobs);
        return Ops.Reshape(Ops.MulScalar(o, 1f / s), b, c, h, w);
    }

    /// <summary>Gaussian bumps: centres m [N, 2] (x, y) -> [N, H*W], exp(a |x_p - m|^2) with a = -1 / (2 sigma^2), and
    /// a |x_p - m|^2 = (-2a m) . x_p + a |m|^2 + a |x_p|^2: one [N, 2] x [2, P] product and two sums over its fresh
    /// output, so a ResBlock makes two [N, P] buffers (the product and the exponential), not five.</summary>
    public static Tensor Blobs(Tensor m, int h, int w)
    {
        const float a = -1f / (2 * Sigma * Sigma);
        var z = Ops.MatMul(Ops.MulScalar(m, -2 * a), UnetModel.CoordinatePlanes(h, w));     // (N, P)
        z = Ops.AddInPlace(z, Ops.MulScalar(Ops.Sum(Ops.Square(m), [1], keepDim: true), a));   // + a |m|^2, (N, 1)
        z = Ops.AddInPlace(z, ScaledPlaneNorms(h, w, a));                                     // + a |x_p|^2, (1, P)
        return Ops.Exp(z);
    }

    /// <summary>a |x_p|^2 for every pixel, [1, H*W]; built once per size (read-only, not pooled).</summary>
    private static Tensor ScaledPlaneNorms(int h, int w, float a) => Norms.GetOrAdd((h, w), k =>
    {
        var p = UnetModel.CoordinatePlanes(k.H, k.W).Span;
        int n = k.H * k.W;
        var r = new float[n];
        for (int i = 0; i < n; i++) r[i] = a * (p[i] * p[i] + p[n + i] * p[n + i]);
        return Tensor.FromArray(r, 1, n);
    });

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int H, int W), Tensor> Norms = new();
}
