using Pictor.Engine;

namespace Pictor.Nn;

// Dimension legend: B batch, H heads, Tmax cache capacity, Dh head width.
/// <summary>
/// Keys and values of one attention layer for the tokens seen so far, so autoregressive decoding computes attention for
/// new tokens only (each step costs O(T) instead of re-running the whole prefix). Storage: K and V [B, H, Tmax, Dh].
/// Inference only (no gradients flow into the cache).
/// </summary>
public sealed class LayerKvCache
{
    public Tensor K { get; }
    public Tensor V { get; }
    public int Length { get; private set; }
    public int Capacity { get; }

    public LayerKvCache(int batch, int heads, int capacity, int headDim)
    {
        Capacity = capacity;
        K = TensorScope.Outside(() => Tensor.Zeros(batch, heads, capacity, headDim));
        V = TensorScope.Outside(() => Tensor.Zeros(batch, heads, capacity, headDim));
    }

    /// <summary>Appends k, v [B, H, T, Dh] and returns views of all cached keys and values [B, H, Length,
    /// Dh].</summary>
    public (Tensor K, Tensor V) Append(Tensor k, Tensor v)
    {
        int t = k.Shape[2];
        if (Length + t > Capacity)
            Throw.Argument($"KV cache holds {Capacity} tokens; appending {t} to {Length} overflows it. Create the "
                + $"cache with a larger capacity");
        Ops.Narrow(K, 2, Length, t).Detach().CopyFrom(k);
        Ops.Narrow(V, 2, Length, t).Detach().CopyFrom(v);
        Length += t;
        return (Ops.Narrow(K, 2, 0, Length), Ops.Narrow(V, 2, 0, Length));
    }

    public void Reset() => Length = 0;
}

/// <summary>One <see cref="LayerKvCache"/> per layer.</summary>
public sealed class KvCache(int layers, int batch, int heads, int capacity, int headDim)
{
    public LayerKvCache[] Layers { get; } = Enumerable.Range(0, layers).Select(_ => new LayerKvCache(batch, heads,
        capacity, headDim)).ToArray();
    public int Length => Layers[0].Length;
    public void Reset() { foreach (var l in Layers) l.Reset(); }
}
