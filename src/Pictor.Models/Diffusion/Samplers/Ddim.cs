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
    public float Eta { get; } = eta is >= 0f and <= 1f ? eta : Throw.Argument<float>($"DDIM eta must be in [0, 1], got {eta}");
    public override string Name => "ddim";

    public override float[] Sample(NoiseSchedule schedule, Prediction prediction, Denoise model, float[] xT, int steps, Rng rng, bool clip = true)
    {
        var ts = Timesteps(schedule.Steps, steps);
        var x = (float[])xT.Clone();
        for (int i = 0; i < ts.Length; i++)
        {
            int t = ts[i], prev = i + 1 < ts.Length ? ts[i + 1] : -1;
            var (x0, eps) = schedule.Split(prediction, x, model(x, t), t, clip);
            double ab = schedule.AlphaBar(t), abPrev = schedule.AlphaBar(prev);
            double s = Eta * Math.Sqrt((1 - abPrev) / (1 - ab)) * Math.Sqrt(1 - ab / abPrev);
            double cx0 = Math.Sqrt(abPrev), ceps = Math.Sqrt(Math.Max(0, 1 - abPrev - s * s));
            for (int j = 0; j < x.Length; j++)
                x[j] = (float)(cx0 * x0[j] + ceps * eps[j] + (s > 0 ? s * rng.Normal() : 0));
        }
        return x;
    }
}
