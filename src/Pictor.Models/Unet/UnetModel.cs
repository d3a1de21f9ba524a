using Pictor.Engine;
using Pictor.Nn;

namespace Pictor.Models.Unet;

// Dimension legend: B batch, C channels, H/W spatial, S text tokens, Dc text width, E time-embedding width.

/// <summary>UNet denoiser configuration. Defaults are UNet-S (the engine issue's reference model).</summary>
public sealed record UnetConfig(
    int[] Channels,          // per level; level i works at resolution / 2^i
    bool[] Attention,        // per level: AttnBlock after each ResBlock
    // encoder ResBlocks per level; the decoder has one more (it also takes the skip of the downsample)
    int BlocksPerLevel = 2,
    int ContextDim = 256,    // text token width for cross-attention
    int Heads = 4,
    int HeadDim = 32,
    int TimeDim = 256,       // E
    int TimeSinusoidDim = 64,
    int Groups = 32,         // GroupNorm groups
    int ImageChannels = 3,
    int PooledDim = 0,       // width of a pooled text vector added to the time embedding; 0 = none (UNet-S)
    bool CoordChannels = false, // conv_in also sees x and y in [-1, 1] (CoordConv, Liu et al. 2018); see CoordinateGrid
    // every ResBlock turns the time+text embedding into per-channel x and y slopes (see ResBlock)
    bool ResBlockCoords = false,
    // with ResBlockCoords: every text token also adds its own channels x its own direction
    bool TokenSlopes = false,
                                  // to the slopes (see ResBlock), so "red goes left, blue goes right" needs no pooling
    bool TokenBlobs = false,      // with TokenPlaces: every ResBlock also lets each text token add its own channels
                                  // at its place (TokenBlobs)
    // with TokenBlobs: one head (TokenPlaces) predicts every token's place, shared by all the
    bool TokenPlaces = false)
                                  // ResBlocks' blobs, so it can be supervised ('train diffusion --placement')
{
    /// <summary>Channels conv_in reads: the image plus the two coordinate planes when <see
    /// cref="CoordChannels"/>.</summary>
    public int InputChannels => ImageChannels + (CoordChannels ? 2 : 0);

    /// <summary>UNet-S: 32x32 RGB, channels (64, 128, 128), attention at 16x16 and 8x8; 8,251,139 parameters,
    /// about 3.5 GFLOP per image forward.</summary>
    public static UnetConfig S => new([64, 128, 128], [false, true, true]);
}

/// <summary>
/// Text-conditioned UNet predicting noise (or v): conv_in; encoder levels of ResBlocks (+ AttnBlocks) and stride-2
/// downsampling; middle ResBlock + AttnBlock + ResBlock; decoder levels taking concatenated skips, nearest x2 upsample
/// + 3x3 conv; GN + SiLU + conv_out. Parameter names match tools/reference/models.py.
/// </summary>
public sealed class UnetModel : Module
{
    public UnetConfig Config { get; }
    private readonly Linear timeFc1, timeFc2;
    private readonly Linear? pooledFc;
    private readonly Conv2d convIn, convOut;
    private readonly List<ResBlock> encRes = new(), decRes = new();
    private readonly List<AttnBlock> encAttn = new(), decAttn = new();
    private readonly List<Conv2d> down = new(), up = new();
    private readonly ResBlock midRes1, midRes2;
    private readonly AttnBlock midAttn;
    private readonly GroupNorm normOut;
    private readonly TokenPlaces? places;

    public UnetModel(UnetConfig cfg, Rng rng)
    {
        Config = cfg;
        if (cfg.Channels.Length != cfg.Attention.Length)
            Throw.Argument($"UNet config: {cfg.Channels.Length} channel levels but {cfg.Attention.Length} "
                + $"attention flags");
        if (cfg.TokenSlopes && !cfg.ResBlockCoords)
            Throw.Argument("UNet config: token_slopes adds to the ResBlocks' x/y slopes, so it needs "
                + "resblock_coords true");
        if (cfg.TokenPlaces != cfg.TokenBlobs)
            Throw.Argument($"UNet config: token_blobs ({cfg.TokenBlobs}) and token_places ({cfg.TokenPlaces}) go "
                + "together: the blobs are put at the shared token places; set both true (as preset xs-rel-place does) "
                + "or both false");
        // Every ResBlock reads the same time and text options; only its channels differ.
        ResBlock NewRes(int cin, int cout) => new(rng, cin, cout, cfg.TimeDim, cfg.Groups, cfg.ResBlockCoords,
            cfg.TokenSlopes ? cfg.ContextDim : 0, cfg.TokenBlobs ? cfg.ContextDim : 0);
        AttnBlock NewAttn(int channels) => new(rng, channels, cfg.Heads, cfg.HeadDim, cfg.ContextDim, cfg.Groups);
        timeFc1 = Child("time.fc1", new Linear(rng, cfg.TimeSinusoidDim, cfg.TimeDim));
        timeFc2 = Child("time.fc2", new Linear(rng, cfg.TimeDim, cfg.TimeDim));
        if (cfg.PooledDim > 0) pooledFc = Child("pooled_fc", new Linear(rng, cfg.PooledDim, cfg.TimeDim));
        convIn = Child("conv_in", new Conv2d(rng, cfg.InputChannels, cfg.Channels[0], 3, padding: 1));
        var skips = new Stack<int>(); skips.Push(cfg.Channels[0]);
        int c = cfg.Channels[0], levels = cfg.Channels.Length;
        var encResList = new List<ResBlock>(); var encAttnList = new List<AttnBlock>();
        var downList = new List<Conv2d>();
        for (int lvl = 0; lvl < levels; lvl++)
        {
            int co = cfg.Channels[lvl];
            for (int i = 0; i < cfg.BlocksPerLevel; i++)
            {
                encResList.Add(NewRes(c, co)); c = co;
                if (cfg.Attention[lvl]) encAttnList.Add(NewAttn(c));
                skips.Push(c);
            }
            if (lvl != levels - 1) { downList.Add(new Conv2d(rng, c, c, 3, stride: 2, padding: 1)); skips.Push(c); }
        }
        // Register in the PyTorch order: enc_res, enc_attn, down, mid_*, dec_res, dec_attn, up, norm_out, conv_out.
        for (int i = 0; i < encResList.Count; i++) encRes.Add(Child($"enc_res.{i}", encResList[i]));
        for (int i = 0; i < encAttnList.Count; i++) encAttn.Add(Child($"enc_attn.{i}", encAttnList[i]));
        for (int i = 0; i < downList.Count; i++) down.Add(Child($"down.{i}", downList[i]));
        midRes1 = Child("mid_res1", NewRes(c, c));
        midAttn = Child("mid_attn", NewAttn(c));
        midRes2 = Child("mid_res2", NewRes(c, c));
        var decResList = new List<ResBlock>(); var decAttnList = new List<AttnBlock>(); var upList = new List<Conv2d>();
        for (int lvl = levels - 1; lvl >= 0; lvl--)
        {
            int co = cfg.Channels[lvl];
            for (int i = 0; i < cfg.BlocksPerLevel + 1; i++)
            {
                decResList.Add(NewRes(c + skips.Pop(), co)); c = co;
                if (cfg.Attention[lvl]) decAttnList.Add(NewAttn(c));
            }
            if (lvl != 0) upList.Add(new Conv2d(rng, c, c, 3, padding: 1));
        }
        for (int i = 0; i < decResList.Count; i++) decRes.Add(Child($"dec_res.{i}", decResList[i]));
        for (int i = 0; i < decAttnList.Count; i++) decAttn.Add(Child($"dec_attn.{i}", decAttnList[i]));
        for (int i = 0; i < upList.Count; i++) up.Add(Child($"up.{i}", upList[i]));
        normOut = Child("norm_out", new GroupNorm(cfg.Groups, c));
        convOut = Child("conv_out", new Conv2d(rng, c, cfg.ImageChannels, 3, padding: 1));
        if (cfg.TokenPlaces) places = Child("token_places", new TokenPlaces(rng, cfg.ContextDim));
    }

    /// <summary>x [B, 3, H, W] noisy images, t [B] timesteps, context [B, S, Dc] text tokens, pooled [B, Dp] (when the
    /// config has PooledDim) -> [B, 3, H, W]. <paramref name="crossMaps"/>, when given, receives every AttnBlock's
    /// cross-attention probabilities [B, heads, h*w, S] in forward order (for a grounding loss;
    /// docs/derivations/binding.md, "Grounding"). <paramref name="tokenPlaces"/>, when given, receives the shared token
    /// places [B, S, 2] (config TokenPlaces; for the placement loss).</summary>
    public Tensor Forward(Tensor x, ReadOnlySpan<float> t, Tensor context, Tensor? pooled = null,
        List<Tensor>? crossMaps = null, List<Tensor>? tokenPlaces = null)
    {
        var cfg = Config;
        if (x.Rank != 4 || x.Shape[1] != cfg.ImageChannels)
            Throw.Argument($"UNet input must be [B, {cfg.ImageChannels}, H, W], got {Shape.Format(x.Shape)}");
        int factor = 1 << (cfg.Channels.Length - 1);
        if (x.Shape[2] % factor != 0 || x.Shape[3] % factor != 0)
            Throw.Argument($"UNet input {x.Shape[2]}x{x.Shape[3]} must be divisible by {factor} "
                + $"({cfg.Channels.Length} levels)");
        if (t.Length != x.Shape[0]) Throw.Argument($"UNet: {t.Length} timesteps for a batch of {x.Shape[0]}");
        if (context.Rank != 3 || context.Shape[0] != x.Shape[0] || context.Shape[2] != cfg.ContextDim)
            Throw.Argument($"UNet context must be [{x.Shape[0]}, S, {cfg.ContextDim}], got "
                + $"{Shape.Format(context.Shape)}");
        var m = TokenPlacesOf(context);                                           // (B, S, 2), or null
        if (m != null) tokenPlaces?.Add(m);

        // (B, E)
        var temb = timeFc2.Forward(Ops.Silu(timeFc1.Forward(TimestepEmbedding.Compute(t, cfg.TimeSinusoidDim))));
        if (pooledFc != null)
        {
            if (pooled == null || pooled.Rank != 2 || pooled.Shape[0] != x.Shape[0] || pooled.Shape[1] != cfg.PooledDim)
                Throw.Argument($"UNet pooled text must be [{x.Shape[0]}, {cfg.PooledDim}], got "
                    + $"{(pooled == null ? "none" : Shape.Format(pooled.Shape))}");
            // (B, E)
            temb = Ops.Add(temb, pooledFc.Forward(pooled));
        }
        // (B, C0, H, W)
        var h = convIn.Forward(cfg.CoordChannels ? Ops.Concat([x, CoordinateGrid(x.Shape[0], x.Shape[2], x.Shape[3])],
            1) : x);
        var hs = new Stack<Tensor>(); hs.Push(h);
        int ri = 0, ai = 0, levels = cfg.Channels.Length;
        for (int lvl = 0; lvl < levels; lvl++)
        {
            for (int i = 0; i < cfg.BlocksPerLevel; i++)
            {
                h = encRes[ri++].Forward(h, temb, context, m);
                if (cfg.Attention[lvl]) h = encAttn[ai++].Forward(h, context, crossMaps);
                hs.Push(h);
            }
            if (lvl != levels - 1) { h = down[lvl].Forward(h); hs.Push(h); }
        }
        h = midRes1.Forward(h, temb, context, m);
        h = midRes2.Forward(midAttn.Forward(h, context, crossMaps), temb, context, m);
        ri = 0; ai = 0; int ui = 0;
        for (int lvl = levels - 1; lvl >= 0; lvl--)
        {
            for (int i = 0; i < cfg.BlocksPerLevel + 1; i++)
            {
                h = decRes[ri++].Forward(Ops.Concat([h, hs.Pop()], 1), temb, context, m);
                if (cfg.Attention[lvl]) h = decAttn[ai++].Forward(h, context, crossMaps);
            }
            if (lvl != 0) h = up[ui++].Forward(Ops.UpsampleNearest(h, 2));
        }
        return convOut.Forward(normOut.ForwardSilu(h));
    }

    /// <summary>The shared token places [B, S, 2] for text tokens [B, S, Dc], or null when the config has no
    /// TokenPlaces: where the model will put each token's blobs.</summary>
    public Tensor? TokenPlacesOf(Tensor context) => places?.Forward(context);

    /// <summary>
    /// The two constant planes of CoordConv (Liu et al. 2018, "An intriguing failing of convolutional neural networks
    /// and the CoordConv solution"): [B, 2, H, W], plane 0 the pixel centre's x and plane 1 its y, both mapped to [-1,
    /// 1] (x_j = (2 j + 1) / W - 1). Convolutions are translation-equivariant and attention without position embeddings
    /// is permutation-equivariant, so away from the zero-padded border a small UNet cannot tell left from right; a
    /// caption saying "on the left" then has nothing to act on. These planes give every pixel its position.
    /// </summary>
    public static Tensor CoordinateGrid(int b, int h, int w)
    {
        if (b < 1 || h < 1 || w < 1) Throw.Argument($"coordinate grid needs positive sizes, got {b}x{h}x{w}");
        var g = Tensor.Empty(b, 2, h, w);
        var s = g.Span;
        for (int n = 0; n < b; n++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int at = ((n * 2) * h + y) * w + x;
                    s[at] = (2f * x + 1f) / w - 1f;           // plane 0: x
                    s[at + h * w] = (2f * y + 1f) / h - 1f;   // plane 1: y
                }
        return g;
    }

    /// <summary>The coordinate planes as a [2, H*W] matrix: row 0 every pixel's x, row 1 its y (as <see
    /// cref="CoordinateGrid"/>). Built once per size and shared by every ResBlock call (read-only; not pooled, so it
    /// outlives any TensorScope).</summary>
    public static Tensor CoordinatePlanes(int h, int w) =>
        Planes.GetOrAdd((h, w), k => Tensor.FromArray(CoordinateGrid(1, k.H, k.W).ToArray(), 2, k.H * k.W));

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int H, int W), Tensor> Planes = new();
}
