using Pictor.Engine;
using Pictor.Models.Text;
using Pictor.Nn;

namespace Pictor.Models.Gan;

// Dimension legend: B batch, C channels, H = W image side, F the final feature width, Dd the discriminator's text
// width.

/// <summary>
/// The conditional GAN's discriminator, with a projection head for the caption (Miyato and Koyama 2018, "cGANs with
/// Projection Discriminator", eq. 3): features phi(x) [B, F] from a stack of spectrally normalised convolutions
/// (SNGAN's "standard CNN", Miyato et al. 2018: at each level a 3x3 convolution and a 4x4 stride-2 one, leaky ReLU
/// 0.1), summed over the pixels; then
///     D(x, y) = psi(phi(x)) + y_proj^T phi(x),
/// psi a linear layer, y_proj = V t(y) for the caption's pooled vector t(y) from the discriminator's own text encoder
/// (the paper's class embedding, for a caption). Every weight but the text encoder's is spectrally normalised.
/// </summary>
public sealed class ProjectionDiscriminator : Module
{
    public GanConfig Config { get; }
    public TextEncoder Text { get; }
    private readonly List<SnConv2d> convs = new();
    private readonly SnLinear psi, project;
    private readonly List<SpectralWeight> normalised;

    public ProjectionDiscriminator(GanConfig cfg, Rng rng)
    {
        Config = cfg;
        Text = Child("text", new TextEncoder(cfg.CriticText, rng));
        int c = 3;
        for (int i = 0; i < cfg.CriticChannels.Length; i++)
        {
            int o = cfg.CriticChannels[i];
            convs.Add(Child($"convs.{convs.Count}", new SnConv2d(rng, c, o, 3, padding: 1)));
            c = o;
            if (i != cfg.CriticChannels.Length - 1)
                convs.Add(Child($"convs.{convs.Count}", new SnConv2d(rng, c, c, 4, stride: 2, padding: 1)));
        }
        psi = Child("psi", new SnLinear(rng, c, 1));
        project = Child("project", new SnLinear(rng, cfg.CriticText.OutDim, c, bias: false));
        normalised = convs.Select(v => v.Weight).Append(psi.Weight).Append(project.Weight).ToList();
    }

    /// <summary>The width F of phi(x).</summary>
    public int Features => Config.CriticChannels[^1];

    /// <summary>Arms one power step of every spectral norm for the next forward (once per discriminator step).
    /// </summary>
    public void ArmPowerSteps()
    {
        foreach (var w in normalised) w.ArmPowerStep();
    }

    /// <summary>Caption ids [B, S] -> the discriminator's pooled text vector [B, Dd].</summary>
    public Tensor EncodeText(IntTensor ids) => Text.Forward(ids).Pooled;

    /// <summary>Images [B, 3, H, W] and text [B, Dd] -> scores [B] (real high).</summary>
    public Tensor Forward(Tensor x, Tensor text)
    {
        var h = x;
        foreach (var conv in convs) h = Ops.LeakyRelu(conv.Forward(h), 0.1f);           // (B, C, ., .)
        var phi = Ops.Sum(h, [2, 3]);                                                   // (B, F)
        var proj = Ops.Sum(Ops.Mul(project.Forward(text), phi), [1]);                   // (B)
        return Ops.Add(Ops.Reshape(psi.Forward(phi), x.Shape[0]), proj);                // (B)
    }
}
