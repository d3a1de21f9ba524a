namespace Pictor.Engine;

/// <summary>An integer tensor for indices (token ids, class targets, gather indices). Not differentiable.</summary>
public sealed class IntTensor
{
    public int[] Data { get; }
    public int[] Shape { get; }
    public int Numel => Data.Length;

    public IntTensor(int[] data, params int[] shape)
    {
        if (Engine.Shape.Numel(shape) != data.Length)
            Throw.Argument($"IntTensor: {data.Length} values do not fill shape {Engine.Shape.Format(shape)}");
        Data = data;
        Shape = (int[])shape.Clone();
    }

    public int this[int i] => Data[i];

    /// <summary>Throws a clear error when any value is outside [0, limit) (and not the ignore value).</summary>
    public void CheckRange(int limit, string what, int? ignore = null)
    {
        for (int i = 0; i < Data.Length; i++)
        {
            int v = Data[i];
            if (ignore == v) continue;
            if ((uint)v >= (uint)limit)
                Throw.Argument($"{what}: value {v} at position {i} is outside [0, {limit}); check the "
                    + $"tokenizer/vocabulary size or the targets");
        }
    }
}
