using Pictor.Engine;
using Pictor.Models.Text;
using Pictor.Models.Unet;
using Pictor.Nn;

namespace Pictor.Models.Vae;

// Dimension legend: B batch, H/W image size, h/w the innermost grid (H / 2^(levels-1)), C its channels, Z latent width,
// D text width.

/// <summary>Conditional VAE configuration: the image side halves at each level after the first; the innermost C x h x w
/// features map to one latent vector of Z numbers and back; the caption's pooled vector conditions every ResBlock of
/// the encoder and the decoder.</summary>
public sealed record VaeConfig(
    TextEncoderConfig Text,
    int[] Channels,              // per level; level i works at resolution / 2^i
    int Latent = 64,             // Z: the latent vector's width
    int Groups = 8,
    float Sigma = 0.1f,          // the decoder's fixed Gaussian standard deviation, in [-1, 1] pixel units
    float Beta = 1f,             // weight of the KL term once warmed up (beta-VAE; 1 = the ELBO)
    int KlWarmup = 1000)         // steps over which the KL weight rises linearly from 0 to Beta
{
    public int Downsample => 1 << (Channels.Length - 1);
}

/// <summary>
/// The conditional VAE of the source documents' first text-to-image model (Kingma and Welling 2014; conditional as in
/// Sohn et al. 2015): encoder q(z | x, text) = N(mu, diag sigma^2) over Z numbers, decoder p(x | z, text) =
/// N(x_hat, Sigma^2 I), prior p(z) = N(0, I). Both halves are the VQ-VAE's ResBlock stacks with the caption's pooled
/// embedding fed where the UNet feeds its timestep. The latent is one vector, not a grid: a grid of independent N(0, 1)
/// cells decodes to texture without a global shape (a spatial latent needs a learned prior, as latent diffusion has).
/// The negative ELBO of one image, in nats:
///     -ELBO = sum_pixels (x - x_hat)^2 / (2 Sigma^2) + N log(Sigma sqrt(2 pi)) + KL(q || p),
///     KL = 1/2 sum_z (mu^2 + sigma^2 - 1 - log sigma^2).
/// </summary>
public sealed class ConditionalVae : Module
{
    public VaeConfig Config { get; }
    public TextEncoder Text { get; }
    private readonly Conv2d encIn, decOut;
    private readonly Linear encOut, decIn;
    private readonly int grid, inner;
    private readonly List<ResBlock> encRes = new(), decRes = new();
    private readonly List<Conv2d> down = new(), up = new();
    private readonly GroupNorm encNorm, decNorm;

    public ConditionalVae(VaeConfig cfg, int imageSize, Rng rng)
    {
        Config = cfg;
        if (cfg.Channels.Length == 0) Throw.Argument("VAE config needs at least one channel level");
        if (imageSize % cfg.Downsample != 0)
            Throw.Argument($"image size {imageSize} is not divisible by the VAE's downsampling {cfg.Downsample}");
        grid = imageSize / cfg.Downsample; inner = cfg.Channels[^1];
        Text = Child("text", new TextEncoder(cfg.Text, rng));
        int levels = cfg.Channels.Length, c = cfg.Channels[0], d = cfg.Text.OutDim;
        encIn = Child("enc_in", new Conv2d(rng, 3, c, 3, padding: 1));
        for (int lvl = 0; lvl < levels; lvl++)
        {
            encRes.Add(Child($"enc_res.{lvl}", new ResBlock(rng, c, cfg.Channels[lvl], d, cfg.Groups)));
            c = cfg.Channels[lvl];
            if (lvl != levels - 1) down.Add(Child($"down.{lvl}", new Conv2d(rng, c, c, 3, stride: 2, padding: 1)));
        }
        encNorm = Child("enc_norm", new GroupNorm(cfg.Groups, c));
        encOut = Child("enc_out", new Linear(rng, c * grid * grid, 2 * cfg.Latent));        // mu and log sigma^2
        decIn = Child("dec_in", new Linear(rng, cfg.Latent, c * grid * grid));
        for (int lvl = levels - 1; lvl >= 0; lvl--)
        {
            decRes.Add(Child($"dec_res.{decRes.Count}", new ResBlock(rng, c, cfg.Channels[lvl], d, cfg.Groups)));
            c = cfg.Channels[lvl];
            if (lvl != 0) up.Add(Child($"up.{up.Count}", new Conv2d(rng, c, c, 3, padding: 1)));
        }
        decNorm = Child("dec_norm", new GroupNorm(cfg.Groups, c));
        decOut = Child("dec_out", new Conv2d(rng, c, 3, 3, padding: 1));
    }

    /// <summary>Caption ids [B, S] -> the pooled text embedding [B, D] that conditions both halves.</summary>
    public Tensor EncodeText(IntTensor ids) => Text.Forward(ids).Pooled;

    /// <summary>Images [B, 3, H, W] and text [B, D] -> (mu, log sigma^2), each [B, Z].</summary>
    public (Tensor Mu, Tensor LogVar) Encode(Tensor x, Tensor text)
    {
        var cfg = Config;
        int side = grid * cfg.Downsample;
        if (x.Rank != 4 || x.Shape[1] != 3 || x.Shape[2] != side || x.Shape[3] != side)
            Throw.Argument($"VAE input must be [B, 3, {side}, {side}], got {Shape.Format(x.Shape)}");
        var h = encIn.Forward(x);
        for (int lvl = 0; lvl < cfg.Channels.Length; lvl++)
        {
            h = encRes[lvl].Forward(h, text);
            if (lvl != cfg.Channels.Length - 1) h = down[lvl].Forward(h);
        }
        h = encNorm.ForwardSilu(h);                                                        // (B, C, h, w)
        var o = encOut.Forward(Ops.Reshape(h, x.Shape[0], inner * grid * grid));           // (B, 2Z)
        return (Ops.Narrow(o, 1, 0, cfg.Latent), Ops.Narrow(o, 1, cfg.Latent, cfg.Latent));
    }

    /// <summary>Latents [B, Z] and text [B, D] -> the decoder's mean image [B, 3, H, W].</summary>
    public Tensor Decode(Tensor z, Tensor text)
    {
        var h = Ops.Reshape(decIn.Forward(z), z.Shape[0], inner, grid, grid);            // (B, C, h, w)
        int ui = 0;
        for (int i = 0; i < decRes.Count; i++)
        {
            h = decRes[i].Forward(h, text);
            if (i != decRes.Count - 1) h = up[ui++].Forward(Ops.UpsampleNearest(h, 2));
        }
        return decOut.Forward(decNorm.ForwardSilu(h));                                    // (B, 3, H, W)
    }

    /// <summary>One training forward with the reparameterisation z = mu + sigma * eps (eps [B, Z] given, so
    /// the caller owns the random stream). Returns the per-dimension loss to backpropagate, (recon + klWeight KL) / N,
    /// and, per image (means over the batch, in nats), the reconstruction term and the KL.</summary>
    public (Tensor Loss, Tensor Recon, Tensor Kl) Loss(Tensor x, IntTensor ids, Tensor eps, float klWeight)
    {
        int b = x.Shape[0], n = x.Numel / b;
        var text = EncodeText(ids);
        var (mu, logVar) = Encode(x, text);
        var z = Ops.Add(mu, Ops.Mul(Ops.Exp(Ops.MulScalar(logVar, 0.5f)), eps));         // (B, Z)
        var xHat = Decode(z, text);
        float s2 = Config.Sigma * Config.Sigma;
        var recon = Ops.MulScalar(Ops.Sum(Ops.Square(Ops.Sub(xHat, x))), 1f / (2f * s2 * b));   // nats per image
        var kl = Ops.MulScalar(Ops.Sum(Ops.Sub(Ops.Add(Ops.Square(mu), Ops.Exp(logVar)), Ops.AddScalar(logVar, 1f))),
            0.5f / b);                                                                     // nats per image
        var loss = Ops.MulScalar(Ops.Add(recon, Ops.MulScalar(kl, klWeight)), 1f / n);
        return (loss, recon, kl);
    }

    /// <summary>Samples the decoder's mean image for latents drawn from the prior (z given, [B, Z]).</summary>
    public Tensor Generate(IntTensor ids, Tensor z)
    {
        using var _ = Autograd.NoGrad();
        return Decode(z, EncodeText(ids));
    }

    /// <summary>The constant of the Gaussian likelihood per image: N log(Sigma sqrt(2 pi)) nats.</summary>
    public double LikelihoodConstant(int pixelsTimesChannels) =>
        pixelsTimesChannels * Math.Log(Config.Sigma * Math.Sqrt(2 * Math.PI));
}
