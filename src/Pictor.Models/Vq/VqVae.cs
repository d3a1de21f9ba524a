using Pictor.Engine;
using Pictor.Models.Unet;
using Pictor.Nn;

namespace Pictor.Models.Vq;

// Dimension legend: B batch, C channels, H/W image size, h/w latent grid (H / 2^(levels-1)), D code width, K codes.

/// <summary>VQ-VAE configuration. Default: 32x32 RGB to an 8x8 grid of codes from a 512-entry codebook (the DALL-E
/// issue's default image tokenizer).</summary>
public sealed record VqConfig(
    int[] Channels,              // per level; level i works at resolution / 2^i, so the grid is H / 2^(levels-1)
    int BlocksPerLevel = 1,      // ResBlocks per level in the encoder and in the decoder
    int Codes = 512,             // K
    int CodeDim = 64,            // D
    int Groups = 8,
    int ImageChannels = 3,
    float Beta = 0.25f,          // commitment weight (van den Oord et al. 2017 use 0.25)
    float Decay = 0.99f,         // codebook moving-average decay
    string Quantizer = "vq-ema", // "vq-ema" (VQ-VAE) or "gumbel" (DALL-E's discrete VAE)
    float KlWeight = 1e-3f)      // gumbel only: weight of KL(q || uniform) beside the MSE
{
    public bool IsGumbel => Quantizer == "gumbel";
    public static VqConfig Default => new([64, 128, 128]);
    public int Downsample => 1 << (Channels.Length - 1);
}

/// <summary>
/// VQ-VAE image tokenizer: encoder (conv_in, ResBlocks, stride-2 convs, GN + SiLU, 1x1 to D), the moving-average
/// vector quantiser, decoder (1x1 from D, ResBlocks, nearest x2 upsample + conv, GN + SiLU, conv_out). Loss: MSE
/// reconstruction + beta commitment; the codebook is updated by <see cref="VectorQuantizer.Update"/>, not by the
/// optimiser.
/// </summary>
public sealed class VqVae : Module
{
    public VqConfig Config { get; }
    /// <summary>The moving-average quantiser (null for the discrete VAE).</summary>
    public VectorQuantizer? Quantizer { get; }
    /// <summary>The Gumbel-softmax quantiser (null for the VQ-VAE).</summary>
    public GumbelQuantizer? Gumbel { get; }
    private readonly Conv2d encIn, encOut, decIn, decOut;
    private readonly List<ResBlock> encRes = new(), decRes = new();
    private readonly List<Conv2d> down = new(), up = new();
    private readonly GroupNorm encNorm, decNorm;

    public VqVae(VqConfig cfg, Rng rng)
    {
        Config = cfg;
        if (cfg.Channels.Length == 0) Throw.Argument("VQ-VAE config needs at least one channel level");
        if (cfg.Quantizer is not ("vq-ema" or "gumbel"))
            Throw.Argument($"unknown quantizer '{cfg.Quantizer}'; use vq-ema or gumbel");
        int levels = cfg.Channels.Length, c = cfg.Channels[0];
        encIn = Child("enc_in", new Conv2d(rng, cfg.ImageChannels, c, 3, padding: 1));
        for (int lvl = 0; lvl < levels; lvl++)
        {
            for (int i = 0; i < cfg.BlocksPerLevel; i++) { encRes.Add(Child($"enc_res.{encRes.Count}",
                new ResBlock(rng, c, cfg.Channels[lvl], 0, cfg.Groups))); c = cfg.Channels[lvl]; }
            if (lvl != levels - 1) down.Add(Child($"down.{lvl}", new Conv2d(rng, c, c, 3, stride: 2, padding: 1)));
        }
        encNorm = Child("enc_norm", new GroupNorm(cfg.Groups, c));
        encOut = Child("enc_out", new Conv2d(rng, c, cfg.IsGumbel ? cfg.Codes : cfg.CodeDim, 1));   // logits or latents
        if (cfg.IsGumbel) Gumbel = Child("quantizer", new GumbelQuantizer(rng, cfg.Codes, cfg.CodeDim));
        else Quantizer = Child("quantizer", new VectorQuantizer(rng, cfg.Codes, cfg.CodeDim, cfg.Decay));
        decIn = Child("dec_in", new Conv2d(rng, cfg.CodeDim, c, 1));
        for (int lvl = levels - 1; lvl >= 0; lvl--)
        {
            for (int i = 0; i < cfg.BlocksPerLevel; i++) { decRes.Add(Child($"dec_res.{decRes.Count}",
                new ResBlock(rng, c, cfg.Channels[lvl], 0, cfg.Groups))); c = cfg.Channels[lvl]; }
            if (lvl != 0) up.Add(Child($"up.{up.Count}", new Conv2d(rng, c, c, 3, padding: 1)));
        }
        decNorm = Child("dec_norm", new GroupNorm(cfg.Groups, c));
        decOut = Child("dec_out", new Conv2d(rng, c, cfg.ImageChannels, 3, padding: 1));
    }

    /// <summary>Images [B, 3, H, W] in [-1, 1] -> continuous latents [B, D, h, w] before quantisation (the discrete
    /// VAE: code logits [B, K, h, w]).</summary>
    public Tensor EncodeLatent(Tensor x)
    {
        var cfg = Config;
        if (x.Rank != 4 || x.Shape[1] != cfg.ImageChannels)
            Throw.Argument($"VQ-VAE input must be [B, {cfg.ImageChannels}, H, W], got {Shape.Format(x.Shape)}");
        if (x.Shape[2] % cfg.Downsample != 0 || x.Shape[3] % cfg.Downsample != 0)
            Throw.Argument($"VQ-VAE input {x.Shape[2]}x{x.Shape[3]} must be divisible by {cfg.Downsample} "
                + $"({cfg.Channels.Length} levels)");
        var h = encIn.Forward(x);
        int ri = 0;
        for (int lvl = 0; lvl < cfg.Channels.Length; lvl++)
        {
            for (int i = 0; i < cfg.BlocksPerLevel; i++) h = encRes[ri++].Forward(h);
            if (lvl != cfg.Channels.Length - 1) h = down[lvl].Forward(h);
        }
        return encOut.Forward(encNorm.ForwardSilu(h));                           // (B, D, h, w)
    }

    /// <summary>Quantised latents [B, D, h, w] -> images [B, 3, H, W].</summary>
    public Tensor DecodeLatent(Tensor q)
    {
        var h = decIn.Forward(q);
        int ri = 0, ui = 0;
        for (int lvl = Config.Channels.Length - 1; lvl >= 0; lvl--)
        {
            for (int i = 0; i < Config.BlocksPerLevel; i++) h = decRes[ri++].Forward(h);
            if (lvl != 0) h = up[ui++].Forward(Ops.UpsampleNearest(h, 2));
        }
        return decOut.Forward(decNorm.ForwardSilu(h));                           // (B, 3, H, W)
    }

    /// <summary>Images -> code grids [B, h, w] (the image tokens of DALL-E).</summary>
    public IntTensor Encode(Tensor x)
    {
        using var _ = Autograd.NoGrad();
        var z = EncodeLatent(x);
        if (Gumbel != null) return Gumbel.Forward(z, null, training: false).Codes;
        return new IntTensor(Quantizer!.Nearest(Quantizer.Rows(z)), z.Shape[0], z.Shape[2], z.Shape[3]);
    }

    /// <summary>Code grids [B, h, w] -> images [B, 3, H, W].</summary>
    public Tensor Decode(IntTensor codes)
    {
        if (codes.Shape.Length != 3) Throw.Argument($"VQ-VAE codes must be [B, h, w], got {Shape.Format(codes.Shape)}");
        using var _ = Autograd.NoGrad();
        return DecodeLatent(Gumbel != null ? Gumbel.Lookup(codes.Data, codes.Shape[0], codes.Shape[1], codes.Shape[2])
            : Quantizer!.Lookup(codes.Data, codes.Shape[0], codes.Shape[1], codes.Shape[2]));
    }

    /// <summary>One forward: reconstruction [B, 3, H, W], its MSE, the quantiser's own term (VQ: commitment; dVAE: KL
    /// to the uniform prior), the total loss to backpropagate (MSE + beta commitment, or MSE + kl_weight KL), the
    /// latents and the codes (for <see cref="VectorQuantizer.Update"/>). The discrete VAE relaxes its codes with Gumbel
    /// noise from <paramref name="rng"/> in training mode; in eval mode (or without rng) it decodes the argmax
    /// codes.</summary>
    public (Tensor Reconstruction, Tensor Mse, Tensor Commitment, Tensor Loss, Tensor Latent,
        IntTensor Codes) Forward(Tensor x, Rng? rng = null)
    {
        var z = EncodeLatent(x);
        var (q, codes, aux) = Gumbel != null ? Gumbel.Forward(z, rng, Training && rng != null) : Quantizer!.Forward(z);
        var y = DecodeLatent(q);
        var mse = Ops.MseLoss(y, x);
        return (y, mse, aux, Ops.Add(mse, Ops.MulScalar(aux, Gumbel != null ? Config.KlWeight : Config.Beta)), z,
            codes);
    }

    /// <summary>Codebook use in a batch of codes: perplexity and the fraction of entries used (<see
    /// cref="VectorQuantizer.UsageOf"/>).</summary>
    public (double Perplexity, double Used) Usage(ReadOnlySpan<int> codes)
        => VectorQuantizer.UsageOf(codes, Config.Codes);
}
