using Pictor.Engine;
using Pictor.Nn;

namespace Pictor.Models;

/// <summary>
/// A deterministic initialisation from parameter names alone, shared with tools/reference/models.py, so PyTorch and
/// Pictor can build bit-identical weights without storing them. u_i in [-1, 1) is the murmur3 32-bit finaliser of
/// (i * 0x9E3779B1 + fnv1a(name)) mod 2^32, scaled. Rank-1 norm weights ("norm*", "ln*"): 1 + 0.1u; other rank-1
/// (biases): 0.1u; rank >= 2: u * sqrt(3 / fan_in), fan_in = numel / shape[0] (variance 1 / fan_in).
/// </summary>
public static class HashInit
{
    public static void Apply(Module model)
    {
        foreach (var (name, p) in model.NamedParameters())
        {
            var span = p.Span;
            var parts = name.Split('.');
            string leaf = parts.Length >= 2 ? parts[^2] : name;
            bool normWeight = p.Rank == 1 && name.EndsWith("weight", StringComparison.Ordinal)
                && (leaf.Contains("norm", StringComparison.Ordinal) || leaf.StartsWith("ln", StringComparison.Ordinal));
            double scale = p.Rank >= 2 ? Math.Sqrt(3.0 / (p.Numel / p.Shape[0])) : 0.1;
            uint seed = Fnv1a(name);
            for (int i = 0; i < span.Length; i++)
            {
                double u = Uniform(seed, (uint)i);
                span[i] = (float)(normWeight ? 1 + 0.1 * u : u * scale);
            }
        }
    }

    public static uint Fnv1a(string name)
    {
        uint h = 0x811C9DC5;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(name)) h = (h ^ b) * 0x01000193;
        return h;
    }

    public static double Uniform(uint seed, uint i)
    {
        uint x = unchecked(i * 0x9E3779B1u + seed);
        x ^= x >> 16; x = unchecked(x * 0x85EBCA6Bu);
        x ^= x >> 13; x = unchecked(x * 0xC2B2AE35u);
        x ^= x >> 16;
        return x / 2147483648.0 - 1.0;
    }
}
