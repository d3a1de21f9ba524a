using Pictor.Engine;
using Pictor.Models.Text;
using Pictor.Models.Unet;
using Pictor.Nn;

namespace Pictor.Models.Gan;

// Dimension legend: B batch, Z noise width, D text width, E = Z + D the conditioning width, C channels, H = W image
// side.

/// <summary>Conditional GAN configuration (the generator, the discriminator and the discriminator's augmentation).
/// </summary>
public sealed record GanConfig(
    TextEncoderConfig Text,          // the generator's text encoder
    TextEncoderConfig CriticText,    // the discriminator's own text encoder (the projection's y)
    int[] Channels,                  // generator channels at 4x4 and each doubling after it: 4 * 2^(n-1) = image side
    int[] CriticChannels,            // discriminator channels at the image side and each halving after it
    int Latent = 128,                // Z: the noise vector's width
    int Groups = 8,
    float Translation = 0.125f,      // DiffAugment: shift by up to this share of the side (zero-padded)
    float Cutout = 0.5f)             // DiffAugment: a zeroed square of this share of the side (0 = none)
{
    /// <summary>The side the generator draws: 4 doubled once per level after the first.</summary>
    public int ImageSize => 4 << (Channels.Length - 1);
}

/// <summary>
/// The generator of the conditional GAN (DCGAN's shape, Radford et al. 2016, built from the UNet's ResBlocks): noise
/// z [B, Z] and the caption's pooled text vector [B, D] are joined into e [B, E]; a linear layer maps e to a 4x4 grid;
/// each level doubles the side (nearest) and runs a ResBlock that adds a projection of e to its channels (where the
/// UNet adds its timestep), so the caption and the noise steer every resolution; GroupNorm, SiLU, a 3x3 convolution
/// and tanh give the image in [-1, 1].
/// </summary>
public sealed class GanGenerator : Module
{
    public GanConfig Config { get; }
    public TextEncoder Text { get; }
    private readonly Linear input;
    private readonly List<ResBlock> blocks = new();
    private readonly GroupNorm norm;
    private readonly Conv2d output;

    public GanGenerator(GanConfig cfg, Rng rng)
    {
        if (cfg.Channels.Length < 2) Throw.Argument("a GAN generator needs at least two channel levels (4x4 and 8x8)");
        Config = cfg;
        Text = Child("text", new TextEncoder(cfg.Text, rng));
        int e = cfg.Latent + cfg.Text.OutDim, c = cfg.Channels[0];
        input = Child("input", new Linear(rng, e, c * 16));
        for (int i = 1; i < cfg.Channels.Length; i++)
        {
            blocks.Add(Child($"blocks.{i - 1}", new ResBlock(rng, c, cfg.Channels[i], e, cfg.Groups)));
            c = cfg.Channels[i];
        }
        norm = Child("norm", new GroupNorm(cfg.Groups, c));
        output = Child("output", new Conv2d(rng, c, 3, 3, padding: 1));
    }

    /// <summary>Caption ids [B, S] -> the pooled text vector [B, D].</summary>
    public Tensor EncodeText(IntTensor ids) => Text.Forward(ids).Pooled;

    /// <summary>Noise [B, Z] and text [B, D] -> images [B, 3, H, W] in [-1, 1].</summary>
    public Tensor Forward(Tensor z, Tensor text)
    {
        int b = z.Shape[0];
        if (z.Rank != 2 || z.Shape[1] != Config.Latent)
            Throw.Argument($"GAN noise must be [B, {Config.Latent}], got {Shape.Format(z.Shape)}");
        var e = Ops.Concat([z, text], 1);                                                 // (B, E)
        var h = Ops.Reshape(input.Forward(e), b, Config.Channels[0], 4, 4);               // (B, C0, 4, 4)
        foreach (var block in blocks) h = block.Forward(Ops.UpsampleNearest(h, 2), e);    // side doubles each level
        return Ops.Tanh(output.Forward(norm.ForwardSilu(h)));                             // (B, 3, H, W)
    }

    /// <summary>Images for captions <paramref name="ids"/> [B, S] and noise z [B, Z], without gradients.</summary>
    public Tensor Generate(IntTensor ids, Tensor z)
    {
        using var _ = Autograd.NoGrad();
        return Forward(z, EncodeText(ids));
    }
}
