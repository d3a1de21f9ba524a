using Pictor.Engine;

namespace Pictor.Models.Diffusion.Samplers;

/// <summary>
/// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
/// Models", algorithm 2), the multistep second-order solver in data prediction x0_hat. With lambda = log(alpha / sigma)
/// and h_i = lambda_{t_i} - lambda_{t_{i-1}}:
///   first step (and the last, "lower order final"):  x_i = (sigma_i / sigma_{i-1}) x_{i-1} - alpha_i (e^{-h_i} - 1)
///   x0_{i-1} later steps, r_i = h_{i-1} / h_i:  D_i = (1 + 1 / (2 r_i)) x0_{i-1} - 1 / (2 r_i) x0_{i-2},
///                                       x_i = (sigma_i / sigma_{i-1}) x_{i-1} - alpha_i (e^{-h_i} - 1) D_i.
/// The final step goes to sigma = 0, where the update reduces to x = x0_hat. Deterministic (no fresh noise).
/// </summary>
public sealed class DpmSolverPP : Sampler
{
    public override string Name => "dpm++";

    private float[]? prevX0;   // x0 prediction of the previous step (the multistep history)
    private double prevH;

    protected override void Begin() { prevX0 = null; prevH = 0; }
    protected override object? SaveHistory() => (prevX0, prevH);   // prevX0 is replaced each step, never written
    protected override void RestoreHistory(object? history) => (prevX0, prevH) = ((float[]?, double))history!;

    protected override void Step(NoiseSchedule s, float[] x, float[] x0, float[] eps, int t, int next, Rng rng)
    {
        if (next < 0) { x0.CopyTo(x, 0); return; }   // sigma_next = 0: the solution is the data prediction itself
        double h = s.Lambda(next) - s.Lambda(t);
        double ratio = s.Sigma(next) / s.Sigma(t), coef = -s.Alpha(next) * (Math.Exp(-h) - 1);
        bool second = prevX0 != null;
        double r = second ? prevH / h : 0;
        for (int j = 0; j < x.Length; j++)
        {
            double d = second ? (1 + 1 / (2 * r)) * x0[j] - 1 / (2 * r) * prevX0![j] : x0[j];
            x[j] = (float)(ratio * x[j] + coef * d);
        }
        prevX0 = x0; prevH = h;
    }

}
