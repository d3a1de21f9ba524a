using Pictor.Engine;

namespace Pictor.Models.Diffusion;

/// <summary>What the denoiser predicts: the noise (Ho et al. 2020), the velocity v = alpha eps - sigma x0
/// (Salimans and Ho 2022, "Progressive distillation", section 4), or the clean sample x0 itself (unCLIP's prior,
/// Ramesh et al. 2022, section 2.2: "we find it better to predict the unnoised z_i directly").</summary>
public enum Prediction { Epsilon, V, X0 }

/// <summary>
/// Discrete forward process q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I), alpha_t = sqrt(abar_t), sigma_t = sqrt(1 -
/// abar_t), t = 0 .. T-1. The cosine schedule (Nichol and Dhariwal 2021, eq. 17): abar(t) = f(t) / f(0),
/// f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2), s = 0.008, with each beta_t = 1 - abar_t / abar_{t-1} clipped to
/// 0.999. Index t here is their step t + 1, so abar_0 &lt; 1 and the last step is (almost) pure noise.
///
/// Shift k (Hoogeboom et al. 2023, "simple diffusion", section 3.1: shifting the schedule's log-SNR): every step's
/// signal-to-noise ratio abar / (1 - abar) is divided by k^2, i.e. abar'_t = abar_t / (abar_t + k^2 (1 - abar_t)).
/// Small, flat, high-contrast objects stay visible in x_t to high noise levels; with k = 1 the model then reads an
/// object's place from x_t on almost every training step and never learns it from the caption
/// (docs/derivations/noise-shift.md). k > 1 spends more of training and sampling at the noise levels where only the
/// caption can decide the layout. All schedule arithmetic is in double.
/// </summary>
public sealed class NoiseSchedule
{
    public int Steps { get; }
    /// <summary>k of the log-SNR shift (1 = Nichol and Dhariwal's schedule unchanged).</summary>
    public double Shift { get; }
    private readonly double[] abar;

    public NoiseSchedule(int steps = 1000, double shift = 1)
    {
        if (steps < 2) Throw.Argument($"a noise schedule needs at least 2 steps, got {steps}");
        if (!(shift >= 1 && shift <= 64)) Throw.Argument($"the schedule shift must be between 1 and 64, got {shift}");
        Steps = steps; Shift = shift;
        abar = new double[steps];
        const double s = 0.008;
        static double F(double u) { double c = Math.Cos((u + s) / (1 + s) * Math.PI / 2); return c * c; }
        double prev = 1.0;
        for (int t = 0; t < steps; t++)
        {
            double beta = Math.Min(1 - F((t + 1.0) / steps) / F((double)t / steps), 0.999);
            prev *= 1 - beta;
            // SNR / k^2 (k = 1 bit-for-bit unchanged)
            abar[t] = shift == 1 ? prev : prev / (prev + shift * shift * (1 - prev));
        }
    }

    /// <summary>abar_t; t = -1 means the clean image (abar = 1).</summary>
    public double AlphaBar(int t) => t < 0 ? 1.0 : abar[t];
    public double Alpha(int t) => Math.Sqrt(AlphaBar(t));
    public double Sigma(int t) => Math.Sqrt(1 - AlphaBar(t));
    /// <summary>Half the log-SNR, lambda_t = log(alpha_t / sigma_t) (DPM-Solver's time variable).</summary>
    public double Lambda(int t) => Math.Log(Alpha(t) / Sigma(t));

    /// <summary>x_t = alpha_t x0 + sigma_t eps, per batch row b with its own t[b]. x0, eps, result: [B, ...].</summary>
    public void AddNoise(ReadOnlySpan<float> x0, ReadOnlySpan<float> eps, ReadOnlySpan<int> t, Span<float> xt)
    {
        int per = x0.Length / t.Length;
        for (int b = 0; b < t.Length; b++)
        {
            float a = (float)Alpha(t[b]), sg = (float)Sigma(t[b]);
            for (int i = b * per; i < (b + 1) * per; i++) xt[i] = a * x0[i] + sg * eps[i];
        }
    }

    /// <summary>The training target for <paramref name="p"/>: eps, v = alpha_t eps - sigma_t x0, or x0.</summary>
    public void Target(Prediction p, ReadOnlySpan<float> x0, ReadOnlySpan<float> eps,
        ReadOnlySpan<int> t, Span<float> target)
    {
        if (p == Prediction.Epsilon) { eps.CopyTo(target); return; }
        if (p == Prediction.X0) { x0.CopyTo(target); return; }
        int per = x0.Length / t.Length;
        for (int b = 0; b < t.Length; b++)
        {
            float a = (float)Alpha(t[b]), sg = (float)Sigma(t[b]);
            for (int i = b * per; i < (b + 1) * per; i++) target[i] = a * eps[i] - sg * x0[i];
        }
    }

    /// <summary>
    /// From a model output at step t (all rows share t) to the clean-image estimate x0 and the noise estimate eps.
    /// eps-prediction: x0 = (x - sigma eps) / alpha. v-prediction: x0 = alpha x - sigma v, eps = sigma x + alpha v.
    /// x0-prediction: eps = (x - alpha x0) / sigma.
    /// With <paramref name="clip"/>, x0 is clamped to [-1, 1] and eps recomputed from it, so both stay consistent.
    /// </summary>
    public (float[] X0, float[] Eps) Split(Prediction p, ReadOnlySpan<float> x, ReadOnlySpan<float> output, int t,
        bool clip)
    {
        double a = Alpha(t), sg = Sigma(t);
        var x0 = new float[x.Length]; var eps = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double e, c;
            if (p == Prediction.Epsilon) { e = output[i]; c = (x[i] - sg * e) / a; }
            else if (p == Prediction.X0) { c = output[i]; e = (x[i] - a * c) / sg; }
            else { c = a * x[i] - sg * output[i]; e = sg * x[i] + a * output[i]; }
            if (clip && (c > 1 || c < -1)) { c = Math.Clamp(c, -1, 1); e = (x[i] - a * c) / sg; }
            x0[i] = (float)c; eps[i] = (float)e;
        }
        return (x0, eps);
    }
}
