using Pictor.Engine;

namespace Pictor.Engine.Tests;

public class RngTests
{
    [Fact]
    public void Same_seed_same_stream_and_state_round_trips()
    {
        var a = new Rng(42); var b = new Rng(42);
        for (int i = 0; i < 100; i++) Assert.Equal(a.NextUInt64(), b.NextUInt64());
        var state = a.GetState();
        var x = Enumerable.Range(0, 10).Select(_ => a.Normal()).ToArray();
        var c = new Rng(0); c.SetState(state);
        var y = Enumerable.Range(0, 10).Select(_ => c.Normal()).ToArray();
        Assert.Equal(x, y);
        Assert.NotEqual(new Rng(1).NextUInt64(), new Rng(2).NextUInt64());
    }

    [Fact]
    public void Normal_and_uniform_have_the_right_moments()
    {
        var r = new Rng(7); int n = 200_000;
        double s = 0, s2 = 0, u = 0;
        for (int i = 0; i < n; i++) { double v = r.Normal(); s += v; s2 += v * v; u += r.NextFloat(); }
        Assert.InRange(s / n, -0.01, 0.01);            // sd of mean = 1/sqrt(n) ~ 0.0022
        Assert.InRange(s2 / n, 0.98, 1.02);
        Assert.InRange(u / n, 0.497, 0.503);
    }

    [Fact]
    public void Categorical_follows_weights_and_rejects_bad_ones()
    {
        var r = new Rng(3); var counts = new int[3];
        for (int i = 0; i < 30_000; i++) counts[r.Categorical([1f, 0f, 3f])]++;
        Assert.Equal(0, counts[1]);
        Assert.InRange(counts[2] / 30000.0, 0.74, 0.76);
        Assert.Throws<ArgumentException>(() => r.Categorical([0f, 0f]));
        Assert.Throws<ArgumentException>(() => r.Categorical([1f, float.NaN]));
        Assert.Throws<ArgumentException>(() => r.SetState([0, 0, 0, 0]));
    }

    [Fact]
    public void NextInt_is_in_range_and_unbiased()
    {
        var r = new Rng(11); var counts = new int[7];
        for (int i = 0; i < 70_000; i++) counts[r.NextInt(7)]++;
        Assert.All(counts, c => Assert.InRange(c, 9_500, 10_500));
    }
}
