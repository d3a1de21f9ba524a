using System.Runtime.CompilerServices;

namespace Pictor.Engine;

/// <summary>Shape arithmetic shared by tensors and kernels: element counts, strides, broadcasting.</summary>
public static class Shape
{
    /// <summary>Largest element count a tensor may hold (its storage is one managed float array).</summary>
    public const long MaxElements = int.MaxValue - 64;

    public static int Numel(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) Throw.Argument($"shape {Format(shape)} has a negative dimension; every dimension must be >= 0");
            n *= d;
            if (n > MaxElements)
                Throw.Argument($"shape {Format(shape)} has more than {MaxElements} elements; use a smaller batch "
                    + $"or image size");
        }
        return (int)n;
    }

    public static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= Math.Max(shape[i], 1);
        }
        return s;
    }

    /// <summary>Normalises a possibly negative axis (-1 = last) and checks its range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Axis(int axis, int rank)
    {
        int a = axis < 0 ? axis + rank : axis;
        if ((uint)a >= (uint)rank)
            Throw.Argument($"axis {axis} is out of range for a tensor of rank {rank}; use -{rank}..{rank - 1}");
        return a;
    }

    /// <summary>NumPy/PyTorch broadcasting: align trailing dimensions; a dimension of 1 stretches.</summary>
    public static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                Throw.Argument($"shapes {Format(a)} and {Format(b)} cannot be broadcast: dimension {i} is {da} vs "
                    + $"{db}; make them equal or 1");
            r[i] = da == 1 ? db : da;
        }
        return r;
    }

    /// <summary>Strides of <paramref name="shape"/> (with <paramref name="strides"/>) viewed as <paramref
    /// name="target"/>; 0 where broadcast.</summary>
    public static int[] BroadcastStrides(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, ReadOnlySpan<int> target)
    {
        var r = new int[target.Length];
        int off = target.Length - shape.Length;
        for (int i = 0; i < target.Length; i++)
        {
            if (i < off) { r[i] = 0; continue; }
            int d = shape[i - off];
            r[i] = d == 1 && target[i] != 1 ? 0 : strides[i - off];
        }
        return r;
    }

    public static bool SameShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}
