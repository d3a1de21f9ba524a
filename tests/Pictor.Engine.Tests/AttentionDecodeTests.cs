using System.Runtime.Intrinsics;
using Pictor.Engine;
using Pictor.Engine.Kernels;

namespace Pictor.Engine.Tests;

/// <summary>The fused one-query attention (KV-cached decoding) gives the reference's bits: scores, probabilities and
/// output, with and without padded keys, at every head width it takes.</summary>
public class AttentionDecodeTests
{
    [Theory]
    [InlineData(16, 16, 1)]
    [InlineData(32, 32, 47)]
    [InlineData(64, 32, 80)]
    [InlineData(128, 128, 9)]
    public void Fused_decode_attention_is_bit_identical_to_the_reference(int d, int dv, int tk)
    {
        if (!Vector512.IsHardwareAccelerated) return;   // the fused kernel is Vector512 only
        var rng = new Rng((ulong)(d * 1000 + tk));
        var q = rng.Randn(d).ToArray(); var k = rng.Randn(tk, d).ToArray(); var v = rng.Randn(tk, dv).ToArray();
        foreach (bool padded in new[] { false, true })
        {
            var pad = padded ? Enumerable.Range(0, tk).Select(j => j % 3 == 1).ToArray() : [];
            var (p1, o1) = (new float[tk], new float[dv]);
            var (p2, o2) = (new float[tk], new float[dv]);
            Attention.ForwardOneQuery512(q, k, v, tk, d, dv, 0.17f, pad, p1, o1);
            Attention.ForwardOneQueryReference(q, k, v, tk, d, dv, 0.17f, pad, p2, o2);
            Assert.Equal(p2, p1);
            Assert.Equal(o2, o1);
            Assert.Contains(o1, x => x != 0f);
        }
    }
}
