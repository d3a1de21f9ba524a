using System.Numerics.Tensors;

namespace Pictor.Engine.Kernels;

/// <summary>Small span helpers used by backward passes (all accumulate into the destination).</summary>
internal static class Elementwise
{
    /// <summary>dst += src.</summary>
    public static void AddInPlace(ReadOnlySpan<float> src, Span<float> dst) => TensorPrimitives.Add(dst, src, dst);
}
