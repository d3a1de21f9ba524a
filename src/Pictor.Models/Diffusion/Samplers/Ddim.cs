using Pictor.Engine;

namespace Pictor.Models.Diffusion.Samplers;

/// <summary>
/// DDIM (Song, Meng and Ermon 2021, "Denoising Diffusion Implicit Models", eq. 12):
///   x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - s^2) eps_hat + s z,
///   s = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)   (eq. 16).
/// eta = 0 is deterministic; eta = 1 is the DDPM posterior.
/// </summary>
public sealed class Ddim(float eta = 0f) : Sampler
{
    public float Eta { get; } = eta is >= 0f and <= 1f ? eta
        : Throw.Argument<float>($"DDIM eta must be in [0, 1], got {eta}");
    public override string Name => "ddim";

    protected override void Step(NoiseSchedule s, float[] x, float[] x0, float[] eps, int t, int next, Rng rng)
    {
        double ab = s.AlphaBar(t), abPrev = s.AlphaBar(next);
        double sd = Eta * Math.Sqrt((1 - abPrev) / (1 - ab)) * Math.Sqrt(1 - ab / abPrev);
        double cx0 = Math.Sqrt(abPrev), ceps = Math.Sqrt(Math.Max(0, 1 - abPrev - sd * sd));
        for (int j = 0; j < x.Length; j++)
            x[j] = (float)(cx0 * x0[j] + ceps * eps[j] + (sd > 0 ? sd * rng.Normal() : 0));
    }
}
