namespace Pictor.Pipelines.Distributed;

/// <summary>
/// The few collective operations data-parallel training needs (Horovod's and PyTorch DDP's vocabulary): every rank
/// calls each one in the same order with buffers of the same length. <see cref="SingleProcess"/> is the world of one;
/// <see cref="MpiCollective"/> binds MPICH. Nothing else in the trainers knows about MPI.
/// </summary>
public interface ICollective : IDisposable
{
    /// <summary>This process's rank, 0 .. <see cref="Size"/> - 1; rank 0 writes the run's files.</summary>
    int Rank { get; }
    /// <summary>The number of processes.</summary>
    int Size { get; }
    /// <summary>What it runs on, for the log ("MPICH 4.0.2, 2 ranks"; "one process").</summary>
    string Describe { get; }
    /// <summary>In place: every rank's values become the element-wise sum over ranks.</summary>
    void AllreduceSum(Span<float> values);
    /// <summary>In place: every rank's values become the element-wise sum over ranks.</summary>
    void AllreduceSum(Span<double> values);
    /// <summary>In place: every rank's values become those of <paramref name="root"/>.</summary>
    void Broadcast(Span<float> values, int root = 0);
    /// <summary>Each rank's <paramref name="local"/> (the same length on every rank) into <paramref name="all"/>
    /// [Size * local.Length], in rank order.</summary>
    void Allgather(ReadOnlySpan<float> local, Span<float> all);
    /// <summary>Waits until every rank has called it.</summary>
    void Barrier();
    /// <summary>Ends every rank of the job with <paramref name="code"/> (a rank that cannot go on).</summary>
    void Abort(int code);
}

/// <summary>The world of one process: every collective is the identity.</summary>
public sealed class SingleProcess : ICollective
{
    public static readonly SingleProcess Instance = new();
    private SingleProcess() { }
    public int Rank => 0;
    public int Size => 1;
    public string Describe => "one process";
    public void AllreduceSum(Span<float> values) { }
    public void AllreduceSum(Span<double> values) { }
    public void Broadcast(Span<float> values, int root = 0) { }
    public void Allgather(ReadOnlySpan<float> local, Span<float> all) => local.CopyTo(all);
    public void Barrier() { }
    public void Abort(int code) => Environment.Exit(code);
    public void Dispose() { }
}
