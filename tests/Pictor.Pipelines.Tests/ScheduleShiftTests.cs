using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Models.Diffusion;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Tests;

/// <summary>The log-SNR shift of the noise schedule (train diffusion --noise-shift K): what it does to the schedule,
/// that samplers still solve the shifted process, and that it travels with the model's config.</summary>
public class ScheduleShiftTests
{
    private static double Snr(NoiseSchedule s, int t) => s.AlphaBar(t) / (1 - s.AlphaBar(t));

    [Fact]
    public void Shift_divides_every_steps_snr_by_k_squared_and_one_changes_nothing()
    {
        var plain = new NoiseSchedule(1000);
        var one = new NoiseSchedule(1000, 1);
        var k4 = new NoiseSchedule(1000, 4);
        for (int t = 0; t < 1000; t++)
        {
            Assert.Equal(plain.AlphaBar(t), one.AlphaBar(t));   // bit for bit: old models sample exactly as before
            Assert.Equal(Snr(plain, t) / 16, Snr(k4, t), Snr(plain, t) / 16 * 1e-9);
            if (t > 0) Assert.True(k4.AlphaBar(t) < k4.AlphaBar(t - 1));
        }
        Assert.Equal(1.0, k4.AlphaBar(-1));   // the clean image stays clean
        // The point of it: more of the uniformly drawn training steps sit where x_t hides the layout (SNR below 0.01).
        int hidden1 = Enumerable.Range(0, 1000).Count(t => Snr(plain, t) < 0.01), hidden4 = Enumerable.Range(0, 1000).Count(t => Snr(k4, t) < 0.01);
        Assert.InRange(hidden1, 50, 80);
        Assert.InRange(hidden4, 220, 270);
        Assert.Contains("schedule shift must be between 1 and 64", Assert.Throws<ArgumentException>(() => new NoiseSchedule(1000, 0.5)).Message);
    }

    [Fact]
    public void Dpm_solver_follows_the_probability_flow_of_a_shifted_schedule()
    {
        // Gaussian data, whose ideal denoiser and ODE end point are known in closed form (as in SamplerTests).
        const double mu = 0.3, s = 0.5;
        var sched = new NoiseSchedule(1000, 4);
        float[] Oracle(float[] x, int t)
        {
            double a = sched.Alpha(t), sg = sched.Sigma(t);
            return x.Select(xi => { double x0 = mu + a * s * s / (a * a * s * s + sg * sg) * (xi - a * mu); return (float)(a * (xi - a * x0) / sg - sg * x0); }).ToArray();
        }
        var xT = new float[2000]; new Rng(5).FillNormal(xT);
        double aT = sched.Alpha(999), sT = sched.Sigma(999);
        double Error(float[] got) => got.Select((g, i) => Math.Abs(g - (mu + s * (xT[i] - aT * mu) / Math.Sqrt(aT * aT * s * s + sT * sT)))).Max();
        // A shifted schedule samples at log-SNR-uniform steps; the trailing steps of the plain schedule would end with a
        // jump to x0 from t = 49, where the shifted SNR is still about 8, and miss by far more.
        Assert.Equal(Sampler.LogSnrTimesteps(sched, 20), Sampler.Timesteps(sched, 20));
        double logSnr = Error(new DpmSolverPP().Sample(sched, Prediction.V, Oracle, xT, 20, new Rng(1), clip: false));
        double trailing = Error(new DpmSolverPP().Sample(sched, Prediction.V, Oracle, xT, Sampler.Timesteps(1000, 20), new Rng(1), clip: false));
        Assert.True(logSnr < 0.04 * s, $"DPM-Solver++ 20 steps on the shifted schedule: max error {logSnr}");
        Assert.True(trailing > 10 * logSnr, $"trailing steps {trailing} vs log-SNR steps {logSnr}");
        Assert.True(Error(new DpmSolverPP().Sample(sched, Prediction.V, Oracle, xT, 50, new Rng(1), clip: false)) < logSnr, "more steps converge");
    }

    [Fact]
    public void Log_snr_steps_start_from_pure_noise_end_at_zero_and_decrease()
    {
        var plain = new NoiseSchedule(1000);
        Assert.Equal(Sampler.Timesteps(1000, 20), Sampler.Timesteps(plain, 20));   // unshifted models keep trailing steps
        foreach (double k in new[] { 1.0, 4.0 })
        {
            var sched = new NoiseSchedule(1000, k);
            foreach (int n in new[] { 1, 2, 3, 10, 20, 50, 999, 1000 })
            {
                var ts = Sampler.LogSnrTimesteps(sched, n);
                Assert.Equal(n, ts.Length);
                Assert.Equal(999, ts[0]);
                if (n > 1) Assert.Equal(0, ts[^1]);
                for (int i = 1; i < n; i++) Assert.True(ts[i] < ts[i - 1], $"k={k} n={n}: step {i} is {ts[i]} after {ts[i - 1]}");
            }
            // The second call sits at EDM's sigma_max = 80 or later, not among the near-identical noise levels by T.
            var t20 = Sampler.LogSnrTimesteps(sched, 20);
            Assert.True(sched.AlphaBar(t20[1]) / (1 - sched.AlphaBar(t20[1])) > 1 / (80.0 * 80) * 0.9);
        }
    }

    [Fact]
    public void Shift_is_stored_in_the_config_and_old_configs_read_as_unshifted()
    {
        var tok = PipelineTests.Tokenizer();
        var cfg = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12) with { ScheduleShift = 4 };
        var back = DiffusionConfig.FromJson(cfg.ToJson(), "x");
        Assert.Equal(4, back.ScheduleShift);
        Assert.Equal(4, new DiffusionPipeline(back, tok, new Rng(1)).Schedule.Shift);
        Assert.Equal("schedule_shift: 1 vs 4", DiffusionConfig.FirstDifference(cfg with { ScheduleShift = 1 }, cfg));

        var old = JsonNode.Parse(cfg.ToJson())!.AsObject();
        old.Remove("schedule_shift");
        Assert.Equal(1, DiffusionConfig.FromJson(old.ToJsonString(), "old").ScheduleShift);
        old["schedule_shift"] = 0.5;
        Assert.Contains("schedule_shift 0.5 is outside 1..64", Assert.Throws<FormatException>(() => DiffusionConfig.FromJson(old.ToJsonString(), "bad")).Message);
    }

    [Fact]
    public void Noise_shift_is_a_diffusion_option_within_bounds()
    {
        new TrainOptions { NoiseShift = 4 }.Validate();
        Assert.Contains("--noise-shift must be between 1 and 64", Assert.Throws<ArgumentException>(() => new TrainOptions { NoiseShift = 0.5f }.Validate()).Message);
        Assert.Contains("--noise-shift is used by 'train diffusion' only",
            Assert.Throws<ArgumentException>(() => new TrainOptions { Model = "clip", Preset = "xs", NoiseShift = 2 }.Validate()).Message);
    }
}
