using Pictor.Engine;
using Pictor.Nn;

namespace Pictor.Models.Unet;

// Dimension legend: B batch, C channels, H/W spatial, T = H*W pixel tokens, S text tokens, Dc text width, E time width.

/// <summary>ResBlock: GN+SiLU+conv3x3, + Linear(SiLU(time embedding)), GN+SiLU+conv3x3, 1x1 skip when channels differ.
/// With timeDim 0 there is no time input (the VQ-VAE's encoder and decoder).</summary>
public sealed class ResBlock : Module
{
    private readonly GroupNorm norm1, norm2;
    private readonly Conv2d conv1, conv2;
    private readonly Linear? temb, tembCoord, tokChannels, tokDirection;
    private readonly Conv2d? skip;
    private readonly TokenBlobs? tokBlobs;

    /// <param name="coordinates">Also map the embedding to a per-channel slope along x and along y, added as
    /// slope_x * x + slope_y * y over the pixels (x, y in [-1, 1]); see <see
    /// cref="UnetConfig.ResBlockCoords"/>.</param>
    /// <param name="tokenSlopeDim">Text token width for token slopes (0 = none; needs <paramref name="coordinates"/>):
    /// each token s of the context adds V_s[c] * G_s to channel c's (x, y) slope, V = tok_slope_v(tokens) [B, S, Cout]
    /// and G = tok_slope_g(tokens) [B, S, 2], averaged over tokens. A product per token, so a colour word whose output
    /// token says "I go left" sends its own channels left while another token sends its channels right; the pooled
    /// embedding is a sum of tokens taken before any such product, and a linear read-out of it cannot tell which colour
    /// goes where (docs/derivations/binding.md, the probe).</param>
    /// <param name="tokenBlobDim">Text token width for token blobs (0 = none): each token adds its own channels after
    /// the time embedding, at the place the UNet's shared <see cref="TokenPlaces"/> give it, passed to
    /// <see cref="Forward"/> (<see cref="TokenBlobs"/>).</param>
    public ResBlock(Rng rng, int cin, int cout, int timeDim, int groups, bool coordinates = false,
        int tokenSlopeDim = 0, int tokenBlobDim = 0)
    {
        if (tokenBlobDim > 0 && timeDim == 0)
            Throw.Argument("token blobs are added beside the time embedding; build the ResBlock with a time embedding");
        if (tokenSlopeDim > 0 && !(coordinates && timeDim > 0))
            Throw.Argument("token slopes add to the ResBlock's x/y slopes; build it with coordinates and a "
                + "time embedding");
        norm1 = Child("norm1", new GroupNorm(groups, cin));
        conv1 = Child("conv1", new Conv2d(rng, cin, cout, 3, padding: 1));
        if (timeDim > 0) temb = Child("temb", new Linear(rng, timeDim, cout));
        if (timeDim > 0 && coordinates) tembCoord = Child("temb_coord", new Linear(rng, timeDim, 2 * cout));
        if (tokenSlopeDim > 0)
        {
            tokChannels = Child("tok_slope_v", new Linear(rng, tokenSlopeDim, cout));
            tokDirection = Child("tok_slope_g", new Linear(rng, tokenSlopeDim, 2));
        }
        if (tokenBlobDim > 0) tokBlobs = Child("tok_blob", new TokenBlobs(rng, tokenBlobDim, cout));
        norm2 = Child("norm2", new GroupNorm(groups, cout));
        conv2 = Child("conv2", new Conv2d(rng, cout, cout, 3, padding: 1));
        if (cin != cout) skip = Child("skip", new Conv2d(rng, cin, cout, 1));
    }

    /// <summary>x [B, Cin, H, W], t [B, E] (null when built with timeDim 0), context [B, S, Dc] (read only with token
    /// slopes or blobs), places [B, S, 2] (the shared token places, with token blobs) -> [B, Cout, H, W].</summary>
    public Tensor Forward(Tensor x, Tensor? t = null, Tensor? context = null, Tensor? places = null)
    {
        var h = conv1.Forward(norm1.ForwardSilu(x));                              // (B, Cout, H, W)
        if (temb != null)
        {
            if (t == null) Throw.Argument("this ResBlock takes a time embedding");
            var st = Ops.Silu(t);
            var tb = temb.Forward(st);                                            // (B, Cout)
            // h is conv1's fresh output: no new buffer
            h = Ops.AddInPlace(h, Ops.Reshape(tb, tb.Shape[0], tb.Shape[1], 1, 1));
            if (tembCoord != null)
            {
                int b = h.Shape[0], c = h.Shape[1], hh = h.Shape[2], ww = h.Shape[3];
                // (B*Cout, 2): slope along x, along y
                var slopes = Ops.Reshape(tembCoord.Forward(st), b * c, 2);
                if (tokChannels != null)
                {
                    if (context == null)
                        Throw.Argument("this ResBlock has token slopes and needs the text context [B, S, Dc]");
                    var v = tokChannels.Forward(context);                                       // (B, S, Cout)
                    var g = tokDirection!.Forward(context);                                     // (B, S, 2)
                    // (B, Cout, 2) = sum_s V_s^T G_s
                    var perToken = Ops.MatMul(Ops.Transpose(v, 1, 2), g);
                    slopes = Ops.Add(slopes, Ops.Reshape(Ops.MulScalar(perToken, 1f / context.Shape[1]), b * c, 2));
                }
                var ramps = Ops.MatMul(slopes, UnetModel.CoordinatePlanes(hh, ww));             // (B*Cout, H*W)
                h = Ops.AddInPlace(h, Ops.Reshape(ramps, b, c, hh, ww));
            }
            if (tokBlobs != null)
            {
                if (context == null)
                    Throw.Argument("this ResBlock has token blobs and needs the text context [B, S, Dc]");
                h = Ops.AddInPlace(h, tokBlobs.Forward(context, h.Shape[2], h.Shape[3], places));   // (B, Cout, H, W)
            }
        }
        h = conv2.Forward(norm2.ForwardSilu(h));
        return Ops.AddInPlace(h, skip == null ? x : skip.Forward(x));
    }
}

/// <summary>AttnBlock ("guided attention"): GN, 1x1 proj_in, [LN + self-attention] + residual, [LN + cross-attention
/// to the text] + residual, 1x1 proj_out, + residual.</summary>
public sealed class AttnBlock : Module
{
    private readonly GroupNorm norm;
    private readonly Conv2d projIn, projOut;
    private readonly LayerNorm ln1, ln2;
    private readonly MultiHeadAttention attn1, attn2;

    public AttnBlock(Rng rng, int channels, int heads, int headDim, int contextDim, int groups)
    {
        norm = Child("norm", new GroupNorm(groups, channels));
        projIn = Child("proj_in", new Conv2d(rng, channels, channels, 1));
        ln1 = Child("ln1", new LayerNorm(channels));
        attn1 = Child("attn1", new MultiHeadAttention(rng, channels, heads, headDim, qkvBias: false));
        ln2 = Child("ln2", new LayerNorm(channels));
        attn2 = Child("attn2", new MultiHeadAttention(rng, channels, heads, headDim, contextDim, qkvBias: false));
        projOut = Child("proj_out", new Conv2d(rng, channels, channels, 1));
    }

    /// <summary>x [B, C, H, W], context [B, S, Dc] -> [B, C, H, W]. <paramref name="crossMaps"/>, when given, receives
    /// the cross-attention probabilities [B, heads, H*W, S] (pixels in row-major order), with their gradient.</summary>
    public Tensor Forward(Tensor x, Tensor context, List<Tensor>? crossMaps = null)
    {
        int b = x.Shape[0], c = x.Shape[1], hh = x.Shape[2], ww = x.Shape[3];
        var h = projIn.Forward(norm.Forward(x));
        h = Ops.Transpose(Ops.Reshape(h, b, c, hh * ww), 1, 2);                  // (B, T, C)
        h = Ops.AddInPlace(attn1.Forward(ln1.Forward(h)), h);   // h + attn, summed into attn's fresh output
        h = Ops.AddInPlace(attn2.Forward(ln2.Forward(h), context, probabilities: crossMaps), h);
        h = Ops.Reshape(Ops.Transpose(h, 1, 2), b, c, hh, ww);                    // (B, C, H, W)
        return Ops.AddInPlace(projOut.Forward(h), x);
    }
}

/// <summary>Sinusoidal timestep embedding [sin(t f_i), cos(t f_i)], f_i = 10000^(-i/half) (Ho et al. 2020, after
/// Vaswani et al. 2017). t [B] -> [B, dim]. Computed in double, rounded once.</summary>
public static class TimestepEmbedding
{
    public static Tensor Compute(ReadOnlySpan<float> t, int dim)
    {
        if (dim % 2 != 0) Throw.Argument($"timestep embedding width must be even, got {dim}");
        int half = dim / 2;
        var e = Tensor.Empty(t.Length, dim);
        var s = e.Span;
        for (int b = 0; b < t.Length; b++)
            for (int i = 0; i < half; i++)
            {
                double a = t[b] * Math.Exp(-Math.Log(10000.0) * i / half);
                s[b * dim + i] = (float)Math.Sin(a);
                s[b * dim + half + i] = (float)Math.Cos(a);
            }
        return e;
    }
}
