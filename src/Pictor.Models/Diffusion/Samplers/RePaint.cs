using Pictor.Engine;

namespace Pictor.Models.Diffusion.Samplers;

// Dimension legend: N = numel of the batch of images being denoised ([B, C, H, W] flattened).

/// <summary>
/// RePaint (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion Probabilistic Models", algorithm 1),
/// run over any <see cref="Sampler"/>'s steps, so every sampler and the caller's guidance apply unchanged. Paper
/// symbols: m the known-region mask (here <c>repaint[j]</c> false), x0 the source, x_t the trajectory. For each step
/// t_i -> t_{i+1} (t_{i+1} = -1: the clean image), repeated U = 1 + resample times:
///   1. x^unknown_{t_{i+1}} = the sampler's step from x_{t_i} (eq. 7, with the model's eps or v and any guidance);
///   2. x^known_{t_{i+1}} = alpha_{t_{i+1}} x0 + sigma_{t_{i+1}} eps, eps ~ N(0, I) fresh (eq. 2; at -1 it is x0);
///   3. x_{t_{i+1}} = m x^known + (1 - m) x^unknown (eq. 8);
///   4. unless it is the last repeat, jump back: x_{t_i} = sqrt(abar_t / abar_next) x_{t_{i+1}}
///      + sqrt(1 - abar_t / abar_next) z, z ~ N(0, I) (line 9: the forward step q(x_t | x_{t-1}) of eq. 1 over the
///      respaced interval), restore the sampler's multistep history, and repeat from 1.
/// Jump length 1 (the paper's j = 1): each step is resampled on its own. Fresh noise for steps 2 and 4 comes from
/// <paramref name="noise"/>, never from the sampler's <c>rng</c>, so a mask that repaints everything with no
/// resampling gives exactly <see cref="Sampler.Sample(NoiseSchedule, Prediction, Denoise, float[], int[], Rng, bool,
/// SampleStep?)"/>.
/// </summary>
public static class RePaint
{
    /// <summary>Runs <paramref name="sampler"/> at steps <paramref name="ts"/> from <paramref name="xT"/> (flattened
    /// [N]) with the region where <paramref name="repaint"/> is false held to <paramref name="source"/> (flattened
    /// [N], in the model's data space); returns x_0. <paramref name="onStep"/> hears of every model call:
    /// ts.Length (1 + resample) in all.</summary>
    public static float[] Sample(Sampler sampler, NoiseSchedule schedule, Prediction prediction, Denoise model,
        float[] xT, int[] ts, Rng rng, float[] source, bool[] repaint, int resample, Rng noise, bool clip = true,
        SampleStep? onStep = null)
    {
        if (source.Length != xT.Length || repaint.Length != xT.Length)
            Throw.Argument(
                $"RePaint needs source and mask of {xT.Length} values, got {source.Length} and {repaint.Length}");
        if (resample < 0) Throw.Argument($"RePaint's resample count must be 0 or more, got {resample}");
        var x = (float[])xT.Clone();
        int total = ts.Length * (1 + resample), done = 0;
        sampler.BeginTrajectory();
        for (int i = 0; i < ts.Length; i++)
        {
            int t = ts[i], next = i + 1 < ts.Length ? ts[i + 1] : -1;
            var history = resample > 0 ? sampler.History() : null;
            for (int u = 0; u <= resample; u++)
            {
                if (u > 0) sampler.Restore(history);
                var (x0, eps) = schedule.Split(prediction, x, model(x, t), t, clip);      // 1. the model at x_t
                sampler.StepOnce(schedule, x, x0, eps, t, next, rng);                     //    x^unknown_next
                float a = (float)schedule.Alpha(next), sg = (float)schedule.Sigma(next);
                for (int j = 0; j < x.Length; j++)                                        // 2.-3. known region
                    if (!repaint[j]) x[j] = next < 0 ? source[j] : a * source[j] + sg * noise.Normal();
                onStep?.Invoke(++done, total, x0);
                if (u == resample) continue;
                double keep = schedule.AlphaBar(t) / schedule.AlphaBar(next);             // 4. jump back to t
                float ck = (float)Math.Sqrt(keep), cz = (float)Math.Sqrt(1 - keep);
                for (int j = 0; j < x.Length; j++) x[j] = ck * x[j] + cz * noise.Normal();
            }
        }
        return x;
    }
}
