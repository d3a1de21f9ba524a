using Pictor.Engine;
using Pictor.Models.Diffusion;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

public class MinSnrWeightingTests
{
    [Theory]
    [InlineData(1.0), InlineData(4.0)]
    public void Weighted_prediction_error_is_the_clipped_snr_weighted_x0_error(double shift)
    {
        // The oracle is the paper's definition: min(SNR, gamma) |x0 - x0^|^2, with x0^ recovered from a perturbed
        // prediction by the schedule's own Split, for both parameterisations.
        var s = new NoiseSchedule(1000, shift);
        var rng = new Rng(3);
        const int n = 48;
        foreach (var p in new[] { Prediction.V, Prediction.Epsilon })
            foreach (int t in new[] { 5, 100, 400, 700, 990 })
            {
                var x0 = new float[n]; var eps = new float[n]; var xt = new float[n]; var target = new float[n];
                rng.FillNormal(x0); rng.FillNormal(eps);
                for (int i = 0; i < n; i++) x0[i] = Math.Clamp(x0[i] * 0.5f, -1, 1);
                s.AddNoise(x0, eps, [t], xt);
                s.Target(p, x0, eps, [t], target);
                var pred = new float[n]; rng.FillNormal(pred);
                for (int i = 0; i < n; i++) pred[i] = target[i] + 0.1f * pred[i];
                var (x0hat, _) = s.Split(p, xt, pred, t, clip: false);
                double predErr = 0, x0Err = 0;
                for (int i = 0; i < n; i++) { predErr += Math.Pow(pred[i] - target[i], 2); x0Err += Math.Pow(x0hat[i] - x0[i], 2); }
                double abar = s.AlphaBar(t), snr = abar / (1 - abar);
                const double gamma = 5;
                double expected = Math.Min(snr, gamma) * x0Err, got = MinSnrWeighting.Weight(s, p, t, gamma) * predErr;
                Assert.True(Math.Abs(got - expected) <= 1e-3 * expected + 1e-9, $"{p}, t {t}, shift {shift}: weighted {got} against min-SNR x0 error {expected}");
            }
    }

    [Fact]
    public void Weights_cap_the_easy_steps_and_leave_the_hard_ones()
    {
        var s = new NoiseSchedule();
        double snr0 = s.AlphaBar(0) / (1 - s.AlphaBar(0));   // SNR >> 5 (about 1e4): eps weight gamma / SNR, v weight gamma / (SNR + 1)
        Assert.Equal(1.0, MinSnrWeighting.Weight(s, Prediction.Epsilon, 0, 5) / (5 / snr0), 5);
        Assert.Equal(1.0, MinSnrWeighting.Weight(s, Prediction.V, 0, 5) / (5 / (snr0 + 1)), 5);
        Assert.Equal(1f, MinSnrWeighting.Weight(s, Prediction.Epsilon, 900, 5), 6);                                       // SNR < 5: eps weight 1
        double abar = s.AlphaBar(900), snr = abar / (1 - abar);
        Assert.Equal(snr / (snr + 1), MinSnrWeighting.Weight(s, Prediction.V, 900, 5), 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => MinSnrWeighting.Weight(s, Prediction.V, 10, 0));
        Assert.Equal(new[] { MinSnrWeighting.Weight(s, Prediction.V, 3, 5), MinSnrWeighting.Weight(s, Prediction.V, 800, 5) },
            MinSnrWeighting.Weights(s, Prediction.V, [3, 800], 5));
    }

    [Fact]
    public void Option_is_checked_stored_and_resumes_bit_exactly()
    {
        Assert.Contains("--min-snr", Assert.Throws<ArgumentException>(() => new TrainOptions { MinSnr = -1 }.Validate()).Message);
        Assert.Contains("'train diffusion' only", Assert.Throws<ArgumentException>(() => new TrainOptions { Model = "clip", MinSnr = 5 }.Validate()).Message);
        Assert.Equal(0f, TrainOptions.FromJson("{\"model\": \"diffusion\"}", "old").MinSnr);   // runs written before the option

        TrainerTests.AssertOptionStoredResumesExactlyAndMatters(o => o with { MinSnr = 5 }, o => o with { MinSnr = 0 }, "\"min_snr\": 5");
    }
}
