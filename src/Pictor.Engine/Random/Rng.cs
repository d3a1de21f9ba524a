namespace Pictor.Engine;

/// <summary>
/// xoshiro256** (Blackman and Vigna, 2018) seeded through splitmix64. Its whole state is four words, so a run can be
/// checkpointed and resumed exactly (<see cref="GetState"/> / <see cref="SetState"/>). Normals use Box-Muller with no
/// cached second value, so the state alone determines the stream.
/// </summary>
public sealed class Rng
{
    private ulong s0, s1, s2, s3;

    public Rng(ulong seed)
    {
        ulong x = seed;
        s0 = SplitMix(ref x); s1 = SplitMix(ref x); s2 = SplitMix(ref x); s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t;
        s3 = ulong.RotateLeft(s3, 45);
        return result;
    }

    public ulong[] GetState() => [s0, s1, s2, s3];

    public void SetState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 4) Throw.Argument($"RNG state has {state.Length} words, expected 4");
        if ((state[0] | state[1] | state[2] | state[3]) == 0)
            Throw.Argument("RNG state is all zero, which xoshiro256** cannot leave; the checkpoint is corrupt");
        s0 = state[0]; s1 = state[1]; s2 = state[2]; s3 = state[3];
    }

    /// <summary>An independent generator derived from this one's next output (for per-worker streams).</summary>
    public Rng Fork() => new(NextUInt64());

    /// <summary>Uniform in [0, 1) with 24 random bits (every float32 multiple of 2^-24).</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1f / (1 << 24));

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n), unbiased (Lemire's multiply-shift with rejection).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) Throw.Argument($"NextInt needs n > 0, got {n}");
        ulong range = (ulong)n;
        while (true)
        {
            ulong x = NextUInt64() >> 32;
            ulong m = x * range;
            if ((uint)m >= (uint)((0x1_0000_0000UL - range) % range)) return (int)(m >> 32);
        }
    }

    public float Uniform(float lo, float hi) => lo + (hi - lo) * NextFloat();

    /// <summary>Standard normal by Box-Muller: sqrt(-2 ln u1) cos(2 pi u2), u1 in (0, 1].</summary>
    public float Normal()
    {
        double u1 = 1.0 - NextDouble();
        double u2 = NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }

    public void FillUniform(Span<float> x, float lo, float hi)
    {
        for (int i = 0; i < x.Length; i++) x[i] = Uniform(lo, hi);
    }

    public void FillNormal(Span<float> x, float mean = 0f, float std = 1f)
    {
        for (int i = 0; i < x.Length; i++) x[i] = mean + std * Normal();
    }

    /// <summary>Index drawn with probability proportional to <paramref name="weights"/> (non-negative, not all
    /// 0).</summary>
    public int Categorical(ReadOnlySpan<float> weights)
    {
        double total = 0;
        foreach (float w in weights)
        {
            if (!(w >= 0) || float.IsPositiveInfinity(w))
                Throw.Argument($"categorical weights must be finite and >= 0, found {w}");
            total += w;
        }
        if (total <= 0) Throw.Argument("categorical weights are all zero");
        double u = NextDouble() * total, acc = 0;
        for (int i = 0; i < weights.Length; i++)
        {
            acc += weights[i];
            if (u < acc) return i;
        }
        for (int i = weights.Length - 1; i >= 0; i--) if (weights[i] > 0) return i;
        return weights.Length - 1;
    }

    public Tensor Randn(params int[] shape)
    {
        var t = Tensor.Empty(shape);
        FillNormal(t.Span);
        return t;
    }

    public Tensor Rand(params int[] shape)
    {
        var t = Tensor.Empty(shape);
        FillUniform(t.Span, 0f, 1f);
        return t;
    }
}
