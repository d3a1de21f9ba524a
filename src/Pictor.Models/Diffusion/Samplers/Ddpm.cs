using Pictor.Engine;

namespace Pictor.Models.Diffusion.Samplers;

/// <summary>
/// Ancestral DDPM (Ho, Jain and Abbeel 2020, eqs. 6-7) on the chosen sub-sequence of steps: with
/// beta = 1 - abar_t / abar_prev, the posterior q(x_prev | x_t, x0) has
///   mean = sqrt(abar_prev) beta / (1 - abar_t) x0_hat + sqrt(1 - beta) (1 - abar_prev) / (1 - abar_t) x_t,
///   variance = beta (1 - abar_prev) / (1 - abar_t),
/// and x_prev = mean + sqrt(variance) z. With all T steps this is the original sampler; with fewer it is the
/// respaced process of Nichol and Dhariwal 2021 (section 4).
/// </summary>
public sealed class Ddpm : Sampler
{
    public override string Name => "ddpm";

    protected override void Step(NoiseSchedule s, float[] x, float[] x0, float[] eps, int t, int next, Rng rng)
    {
        double ab = s.AlphaBar(t), abPrev = s.AlphaBar(next);
        double beta = 1 - ab / abPrev;
        double c0 = Math.Sqrt(abPrev) * beta / (1 - ab), ct = Math.Sqrt(1 - beta) * (1 - abPrev) / (1 - ab);
        double sd = Math.Sqrt(beta * (1 - abPrev) / (1 - ab));
        for (int j = 0; j < x.Length; j++)
            x[j] = (float)(c0 * x0[j] + ct * x[j] + (sd > 0 ? sd * rng.Normal() : 0));
    }
}
