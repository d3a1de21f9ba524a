using Pictor.Models.Diffusion;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Diffusion;

/// <summary>
/// Min-SNR-gamma loss weighting (`train diffusion --min-snr G`; Hang et al. 2023, "Efficient Diffusion Training via
/// Min-SNR Weighting Strategy", ICCV, equation 7 and section 3.4). The steps of a diffusion loss pull the shared
/// weights in conflicting directions, and the low-noise steps (high SNR), whose targets are easy, dominate the x0
/// loss. Min-SNR weighs each image's x0 error by min(SNR_t, gamma), SNR_t = alpha_t^2 / sigma_t^2, so no step counts
/// for more than gamma (the paper's default is 5). In the prediction actually trained, with x0 = alpha x_t - sigma v
/// and x0 = (x_t - sigma eps) / alpha:
///
///     |x0 - x0^|^2 = sigma_t^2 |v - v^|^2 = |v - v^|^2 / (SNR_t + 1)      =>  w_v(t)   = min(SNR_t, gamma) / (SNR_t +
///     1) |x0 - x0^|^2 = |eps - eps^|^2 / SNR_t                                =>  w_eps(t) = min(SNR_t, gamma) / SNR_t
///
/// SNR_t is the schedule's own, so with --noise-shift it is the shifted one. Off (gamma = 0) the loss is the plain
/// mean squared error, unchanged.
/// </summary>
public static class MinSnrWeighting
{
    /// <summary>The weight of the squared <paramref name="p"/>-error of an image noised to step <paramref
    /// name="t"/>.</summary>
    public static float Weight(NoiseSchedule s, Prediction p, int t, double gamma)
    {
        if (!(gamma > 0)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma,
            "min-SNR gamma must be positive (0 means the option is off: do not weigh)");
        double abar = s.AlphaBar(t), snr = abar / (1 - abar);
        double w = p == Prediction.V ? Math.Min(snr, gamma) / (snr + 1) : Math.Min(snr, gamma) / snr;
        return (float)w;
    }

    /// <summary>Weights for a batch of steps, shaped [B, 1, 1, 1] to broadcast over images [B, C, H, W].</summary>
    public static float[] Weights(NoiseSchedule s, Prediction p, ReadOnlySpan<int> t, double gamma)
    {
        var w = new float[t.Length];
        for (int i = 0; i < t.Length; i++) w[i] = Weight(s, p, t[i], gamma);
        return w;
    }
}
