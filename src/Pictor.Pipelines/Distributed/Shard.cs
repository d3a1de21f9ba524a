namespace Pictor.Pipelines.Distributed;

/// <summary>
/// The part of each global batch that one rank computes: images [Offset, Offset + Count) of the Global images the
/// single-process trainer would use. Every rank still draws the random numbers of the whole batch (captions, steps,
/// noise), so the run's random stream, its data order and its checkpoints do not depend on the number of ranks.
/// </summary>
public readonly record struct Shard(int Offset, int Count, int Global)
{
    /// <summary>This rank's share of a mean over the global batch: Count / Global.</summary>
    public float Fraction => (float)Count / Global;

    public bool Contains(int i) => i >= Offset && i < Offset + Count;

    /// <summary>Rank <paramref name="rank"/> of <paramref name="size"/> over a global batch of
    /// <paramref name="global"/>, which must split evenly (the CLI checks it; the error names the fix).</summary>
    public static Shard Of(int global, int rank, int size)
    {
        if (global % size != 0)
            throw new ArgumentException($"--batch {global} does not split over {size} processes; use a multiple of "
                + $"{size} (--batch is the global batch, each process computes --batch / {size})");
        int per = global / size;
        return new Shard(rank * per, per, global);
    }
}
