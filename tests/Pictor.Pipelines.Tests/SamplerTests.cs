using Pictor.Engine;
using Pictor.Models.Diffusion;
using Pictor.Models.Diffusion.Samplers;

namespace Pictor.Pipelines.Tests;

/// <summary>
/// Samplers against an exact oracle. For Gaussian data x0 ~ N(mu, s^2) the ideal denoiser is known in closed form,
/// E[x0 | x_t] = mu + a s^2 / (a^2 s^2 + sigma^2) (x_t - a mu), and the probability-flow ODE maps x_T to
/// x0 = mu + s z with z = (x_T - a_T mu) / sqrt(a_T^2 s^2 + sigma_T^2). Deterministic samplers must land there; DDPM
/// must produce the right distribution.
/// </summary>
public class SamplerTests
{
    private const double Mu = 0.3, S = 0.5;
    private static readonly NoiseSchedule Schedule = new(1000);

    /// <summary>The ideal v-prediction for the Gaussian data.</summary>
    private static float[] Oracle(float[] x, int t)
    {
        double a = Schedule.Alpha(t), sg = Schedule.Sigma(t);
        var v = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double x0 = Mu + a * S * S / (a * a * S * S + sg * sg) * (x[i] - a * Mu);
            double eps = (x[i] - a * x0) / sg;
            v[i] = (float)(a * eps - sg * x0);
        }
        return v;
    }

    private static (float[] XT, double[] Want) Noise(int n)
    {
        var xT = new float[n]; new Rng(5).FillNormal(xT);
        int T = Schedule.Steps - 1;
        double a = Schedule.Alpha(T), sg = Schedule.Sigma(T);
        return (xT, xT.Select(x => Mu + S * (x - a * Mu) / Math.Sqrt(a * a * S * S + sg * sg)).ToArray());
    }

    private static double MaxError(Sampler s, int steps)
    {
        var (xT, want) = Noise(2000);
        var got = s.Sample(Schedule, Prediction.V, Oracle, xT, steps, new Rng(1), clip: false);
        return got.Select((g, i) => Math.Abs(g - want[i])).Max();
    }

    [Fact]
    public void Deterministic_samplers_follow_the_probability_flow_ode()
    {
        double dpm20 = MaxError(new DpmSolverPP(), 20), ddim50 = MaxError(new Ddim(0), 50);
        Assert.True(dpm20 < 0.02 * S, $"DPM-Solver++ 20 steps: max error {dpm20}");
        Assert.True(ddim50 < 0.15 * S, $"DDIM 50 steps: max error {ddim50}");
        Assert.True(MaxError(new Ddim(0), 500) < 0.02 * S, "DDIM converges with many steps");
        // Second order beats first order at the same number of model calls.
        double dpm10 = MaxError(new DpmSolverPP(), 10), ddim10 = MaxError(new Ddim(0), 10);
        Assert.True(dpm10 < ddim10, $"DPM-Solver++ 10 steps {dpm10} should beat DDIM 10 steps {ddim10}");
        // More steps converge.
        Assert.True(MaxError(new DpmSolverPP(), 50) < dpm20);
    }

    [Theory]
    // With the exact posterior mean but not its x0 uncertainty, ancestral steps under-disperse when they are large
    // (the reason for learned or upper-bound variances); with all 1000 steps the process is the exact one.
    [InlineData("ddpm", 1000, 0f)]
    [InlineData("ddim", 1000, 1f)]
    public void Stochastic_samplers_produce_the_data_distribution(string name, int steps, float eta)
    {
        var (xT, _) = Noise(20000);
        var got = Sampler.ByName(name, eta).Sample(Schedule, Prediction.V, Oracle, xT, steps, new Rng(2), clip: false);
        double mean = got.Average(), std = Math.Sqrt(got.Select(g => (g - mean) * (g - mean)).Average());
        Assert.True(Math.Abs(mean - Mu) < 0.02, $"{name}: mean {mean}, want {Mu}");
        Assert.True(Math.Abs(std - S) < 0.03 * S, $"{name}: std {std}, want {S}");
    }

    [Fact]
    public void Ddim_with_eta_zero_is_deterministic_and_eta_one_is_not()
    {
        var (xT, _) = Noise(100);
        var a = new Ddim(0).Sample(Schedule, Prediction.V, Oracle, xT, 10, new Rng(1));
        var b = new Ddim(0).Sample(Schedule, Prediction.V, Oracle, xT, 10, new Rng(2));
        Assert.Equal(a, b);
        var c = new Ddim(1).Sample(Schedule, Prediction.V, Oracle, xT, 10, new Rng(1));
        var d = new Ddim(1).Sample(Schedule, Prediction.V, Oracle, xT, 10, new Rng(2));
        Assert.NotEqual(c, d);
    }

    [Fact]
    public void Cosine_schedule_and_parameterisations_are_consistent()
    {
        Assert.InRange(Schedule.AlphaBar(0), 0.999, 1.0);
        Assert.True(Schedule.AlphaBar(999) < 1e-4);
        for (int t = 1; t < 1000; t++) Assert.True(Schedule.AlphaBar(t) < Schedule.AlphaBar(t - 1));
        // Nichol and Dhariwal's abar at the midpoint: f(0.5) / f(0) with s = 0.008.
        double f(double u) => Math.Pow(Math.Cos((u + 0.008) / 1.008 * Math.PI / 2), 2);
        Assert.Equal(f(500.0 / 1000) / f(0), Schedule.AlphaBar(499), 6);
        var rng = new Rng(3);
        var x0 = new float[8]; var eps = new float[8]; rng.FillUniform(x0, -1, 1); rng.FillNormal(eps);
        int[] ts = [10, 600];
        foreach (var p in new[] { Prediction.Epsilon, Prediction.V })
        {
            var xt = new float[8]; var target = new float[8];
            Schedule.AddNoise(x0, eps, ts, xt);
            Schedule.Target(p, x0, eps, ts, target);
            for (int b = 0; b < 2; b++)
            {
                var (rx0, reps) = Schedule.Split(p, xt.AsSpan(b * 4, 4), target.AsSpan(b * 4, 4), ts[b], clip: false);
                for (int i = 0; i < 4; i++) { Assert.Equal(x0[b * 4 + i], rx0[i], 3); Assert.Equal(eps[b * 4 + i], reps[i], 3); }
            }
        }
    }

    [Fact]
    public void Timesteps_are_trailing_and_unknown_samplers_are_refused()
    {
        Assert.Equal([999, 749, 499, 249], Sampler.Timesteps(1000, 4));
        Assert.Equal(999, Sampler.Timesteps(1000, 1)[0]);
        Assert.Equal(Enumerable.Range(0, 1000).Reverse(), Sampler.Timesteps(1000, 1000));
        Assert.Contains("unknown sampler 'euler'", Assert.Throws<ArgumentException>(() => Sampler.ByName("euler")).Message);
    }
}
