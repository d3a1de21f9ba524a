using Pictor.Engine;

namespace Pictor.Models.Diffusion.Samplers;

// Dimension legend: N = numel of the batch of images being denoised ([B, C, H, W] flattened).

/// <summary>The denoiser as the samplers see it: model output for x_t (flattened [N]) at integer step t. It includes
/// classifier-free guidance when the caller wants it; samplers never see text.</summary>
public delegate float[] Denoise(float[] x, int t);

/// <summary>Called after each step with how many of the steps are done, their total, and the model's current estimate
/// of the clean images x0 (flattened [N]; the sampler's own buffer, valid only during the call; null from a family
/// that has no such estimate). A caller stops the trajectory by throwing from it (OperationCanceledException), which
/// is how cancellation reaches every sampler.</summary>
public delegate void SampleStep(int done, int total, float[]? x0);

/// <summary>A reverse-process integrator: from pure noise x_T to an image, in a chosen number of model calls.</summary>
public abstract class Sampler
{
    public abstract string Name { get; }

    /// <summary>Runs the sampler from <paramref name="xT"/> (standard normal noise, flattened [N]) and returns x_0:
    /// one model call per step at t_i, then <see cref="Step"/> moves x from t_i to t_{i+1} (-1 after the last).
    /// <paramref name="rng"/> supplies any fresh noise (DDPM, DDIM with eta &gt; 0).</summary>
    public float[] Sample(NoiseSchedule schedule, Prediction prediction, Denoise model, float[] xT, int steps, Rng rng,
        bool clip = true, SampleStep? onStep = null) =>
        Sample(schedule, prediction, model, xT, Timesteps(schedule, steps), rng, clip, onStep);

    /// <summary>As above, at the given decreasing steps <paramref name="ts"/> (first call at ts[0]).</summary>
    public float[] Sample(NoiseSchedule schedule, Prediction prediction, Denoise model, float[] xT, int[] ts, Rng rng,
        bool clip = true, SampleStep? onStep = null)
    {
        var x = (float[])xT.Clone();
        Begin();
        for (int i = 0; i < ts.Length; i++)
        {
            int t = ts[i], next = i + 1 < ts.Length ? ts[i + 1] : -1;
            var (x0, eps) = schedule.Split(prediction, x, model(x, t), t, clip);
            Step(schedule, x, x0, eps, t, next, rng);
            onStep?.Invoke(i + 1, ts.Length, x0);
        }
        return x;
    }

    /// <summary>Resets any multistep history before a new trajectory.</summary>
    protected virtual void Begin() { }

    /// <summary>The sampler's multistep history (null when it keeps none), saved by <see cref="RePaint"/> before a
    /// step it will resample and restored before each repeat, so a repeated step sees the history of its first
    /// run.</summary>
    protected virtual object? SaveHistory() => null;
    protected virtual void RestoreHistory(object? history) { }

    // The hooks RePaint drives another sampler through, one step at a time (RePaint.cs).
    internal void BeginTrajectory() => Begin();
    internal void StepOnce(NoiseSchedule s, float[] x, float[] x0, float[] eps, int t, int next, Rng rng) =>
        Step(s, x, x0, eps, t, next, rng);
    internal object? History() => SaveHistory();
    internal void Restore(object? history) => RestoreHistory(history);

    /// <summary>Updates x (at step t) in place to step <paramref name="next"/> (-1 = clean) given the model's x0 and
    /// eps.</summary>
    protected abstract void Step(NoiseSchedule s, float[] x, float[] x0, float[] eps, int t, int next, Rng rng);

    /// <summary>
    /// The "trailing" spacing of Lin et al. 2024 ("Common diffusion noise schedules and sample steps are flawed",
    /// table 2): t_i = round(T - i T / n) - 1 for i = 0..n-1, so the first call is at T-1 (pure noise); each step then
    /// moves to the next t, and the last to t = -1 (abar = 1, the clean image).
    /// </summary>
    public static int[] Timesteps(int trainSteps, int n)
    {
        // Checked once, where a request enters (SamplingSettings.Resolve, through the model's Refuse).
        System.Diagnostics.Debug.Assert(n >= 1 && n <= trainSteps, $"steps {n} outside 1..{trainSteps}");
        var ts = new int[n];
        for (int i = 0; i < n; i++) ts[i] = (int)Math.Round(trainSteps - i * (double)trainSteps / n) - 1;
        return ts;
    }

    /// <summary>
    /// Steps uniform in log-SNR lambda = log(alpha / sigma) (Lu et al. 2022, DPM-Solver, section 3.3 and appendix D:
    /// the "logSNR" step type, which they recommend for low-resolution images), from lambda_max = -ln 80 (EDM's
    /// sigma_max = 80, Karras et al. 2022: noisier steps only repeat "pure noise") to lambda(0): lambda_i = lambda_max
    /// + i (lambda(0) - lambda_max) / (n - 1), each mapped to the step with the nearest lambda and kept strictly
    /// decreasing; the first call is then moved to t = T-1, so sampling starts from pure noise as training's last step
    /// does.
    /// </summary>
    public static int[] LogSnrTimesteps(NoiseSchedule s, int n)
    {
        int T = s.Steps;
        System.Diagnostics.Debug.Assert(n >= 1 && n <= T, $"steps {n} outside 1..{T}");   // checked at the request
        double hi = Math.Max(s.Lambda(T - 1), -Math.Log(80)), lo = s.Lambda(0);
        var ts = new int[n];
        ts[0] = T - 1;
        int t = T - 1;
        for (int i = 1; i < n; i++)
        {
            double want = hi + i * (lo - hi) / (n - 1);
            // lambda rises as t falls
            while (t > 0 && Math.Abs(s.Lambda(t - 1) - want) <= Math.Abs(s.Lambda(t) - want)) t--;
            // strictly decreasing, with room for the steps to come
            t = Math.Max(Math.Min(t, ts[i - 1] - 1), n - 1 - i);
            ts[i] = t;
        }
        return ts;
    }

    /// <summary>The steps a model with this schedule samples at: trailing for the plain cosine schedule (what every
    /// model before the shift used, so their images regenerate exactly), log-SNR uniform for a shifted one, whose last
    /// trailing step (t = T/n - 1) is still noisy enough that jumping from it to x0 would lose detail.</summary>
    public static int[] Timesteps(NoiseSchedule s, int n)
        => s.Shift == 1 ? Timesteps(s.Steps, n) : LogSnrTimesteps(s, n);

    /// <summary>Whether <see cref="ByName"/> knows <paramref name="name"/>.</summary>
    public static bool Knows(string name) =>
        name.ToLowerInvariant() is "ddim" or "ddpm" or "dpm++" or "dpmpp" or "dpm-solver++" or "dpmpp2m";

    /// <summary>Looks a sampler up by its CLI name: ddpm, ddim, dpm++ (aliases dpmpp, dpm-solver++).</summary>
    public static Sampler ByName(string name, float eta = 0f) => name.ToLowerInvariant() switch
    {
        "ddim" => new Ddim(eta),
        "ddpm" => new Ddpm(),
        // a new instance per call: it keeps multistep history
        "dpm++" or "dpmpp" or "dpm-solver++" or "dpmpp2m" => new DpmSolverPP(),
        _ => Throw.Argument<Sampler>($"unknown sampler '{name}'; use ddim, dpm++ or ddpm"),
    };
}
