using Pictor.Engine;

namespace Pictor.Nn;

/// <summary>
/// A weight under spectral normalisation (<see cref="Ops.SpectralNorm"/>; Miyato et al. 2018): the power iteration's
/// vectors u [O] and v [K] are buffers, saved with the weights so a resumed run continues the same estimate. Like
/// PyTorch's torch.nn.utils.parametrizations.spectral_norm (15 power steps at construction, then one per training
/// forward), except that a step happens only when armed (<see cref="ArmPowerStep"/>): a GAN's discriminator is called
/// several times per optimiser step (real, fake, the generator's step), and one estimate update per discriminator step
/// keeps every call of that step on the same normalised weight.
/// </summary>
public sealed class SpectralWeight : Module
{
    /// <summary>Power steps at construction (PyTorch's).</summary>
    public const int InitialSteps = 15;
    public Tensor Weight { get; }
    public Tensor U { get; }
    public Tensor V { get; }
    private bool armed;

    public SpectralWeight(Rng rng, Tensor weight)
    {
        Weight = Param("weight", weight);
        int o = weight.Shape[0];
        U = Buffer("u", rng.Randn(o));
        V = Buffer("v", rng.Randn(weight.Numel / o));
        using (Autograd.NoGrad()) Ops.SpectralNorm(Weight, U, V, InitialSteps);
    }

    /// <summary>The next <see cref="Normalized"/> call in training mode takes one power step.</summary>
    public void ArmPowerStep() => armed = true;

    /// <summary>W / sigma(W), differentiable in W; one power step first when armed and training.</summary>
    public Tensor Normalized()
    {
        int steps = armed && Training ? 1 : 0;
        armed = false;
        return Ops.SpectralNorm(Weight, U, V, steps);
    }
}

/// <summary>nn.Linear with a spectrally normalised weight [Out, In].</summary>
public sealed class SnLinear : Module
{
    public SpectralWeight Weight { get; }
    public Tensor? Bias { get; }

    public SnLinear(Rng rng, int inFeatures, int outFeatures, bool bias = true)
    {
        Weight = Child("sn", new SpectralWeight(rng, Init.DefaultUniform(rng, inFeatures, outFeatures, inFeatures)));
        if (bias) Bias = Param("bias", Init.DefaultUniform(rng, inFeatures, outFeatures));
    }

    public Tensor Forward(Tensor x) => Ops.Linear(x, Weight.Normalized(), Bias);   // (.., In) -> (.., Out)
}

/// <summary>nn.Conv2d with a spectrally normalised weight [O, C, K, K] (read as [O, C K K]).</summary>
public sealed class SnConv2d : Module
{
    public SpectralWeight Weight { get; }
    public Tensor? Bias { get; }
    public int Stride { get; }
    public int Padding { get; }

    public SnConv2d(Rng rng, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0)
    {
        Stride = stride; Padding = padding;
        int fanIn = inChannels * kernel * kernel;
        Weight = Child("sn", new SpectralWeight(rng,
            Init.DefaultUniform(rng, fanIn, outChannels, inChannels, kernel, kernel)));
        Bias = Param("bias", Init.DefaultUniform(rng, fanIn, outChannels));
    }

    // (B, C, H, W) -> (B, O, OH, OW)
    public Tensor Forward(Tensor x) => Ops.Conv2d(x, Weight.Normalized(), Bias, Stride, Padding);
}
