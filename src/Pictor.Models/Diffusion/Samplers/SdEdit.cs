using Pictor.Engine;

namespace Pictor.Models.Diffusion.Samplers;

// Dimension legend: N = numel of the batch of images being denoised ([B, C, H, W] flattened).

/// <summary>
/// SDEdit (Meng et al. 2022, "SDEdit: Guided Image Synthesis and Editing with Stochastic Differential Equations",
/// algorithm 1), in the discrete form of image-to-image pipelines: with strength S in (0, 1] (the paper's t_0) and the
/// n steps t_0 &gt; ... &gt; t_{n-1} a plain generation would take,
///   1. keep the last k = clamp(round(S n), 1, n) of them: the trajectory starts at t_s = t_{n-k};
///   2. noise the source there: x_{t_s} = alpha_{t_s} x0 + sigma_{t_s} eps, eps ~ N(0, I) (the forward process,
///      NoiseSchedule.AddNoise);
///   3. run the sampler from x_{t_s} over the k steps.
/// S = 1 starts from eps itself, the pure noise of a plain generation, so strength 1 with the same seed is exactly
/// that generation (at t = T-1 alpha is almost 0, and the trailing and log-SNR spacings both start there).
/// </summary>
public static class SdEdit
{
    /// <summary>Step 1: the steps an edit of strength <paramref name="strength"/> runs, of the
    /// <paramref name="steps"/> a generation would.</summary>
    public static int[] Timesteps(NoiseSchedule schedule, int steps, float strength)
    {
        if (!(strength > 0 && strength <= 1)) Throw.Argument($"strength must be in (0, 1], got {strength}");
        var all = Sampler.Timesteps(schedule, steps);
        int k = Math.Clamp((int)Math.Round(strength * steps, MidpointRounding.AwayFromZero), 1, steps);
        return all[^k..];
    }

    /// <summary>Step 2: x_t (flattened [N]) from the source x0 and the noise eps at the edit's first step
    /// <paramref name="t"/>; <paramref name="pure"/> (strength 1) returns eps unchanged.</summary>
    public static float[] Start(NoiseSchedule schedule, float[] x0, float[] eps, int t, bool pure)
    {
        if (pure) return (float[])eps.Clone();
        var xt = new float[x0.Length];
        schedule.AddNoise(x0, eps, [t], xt);
        return xt;
    }
}
