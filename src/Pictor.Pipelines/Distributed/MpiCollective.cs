namespace Pictor.Pipelines.Distributed;

/// <summary>
/// <see cref="ICollective"/> over MPI_COMM_WORLD of MPICH (<see cref="Mpich"/>). Made once per process by
/// <see cref="Cluster.FromEnvironment"/>; MPI_Finalize on dispose. Only the thread that made it calls MPI
/// (MPI_THREAD_FUNNELED): the kernels' worker threads never do. Errors return (MPI_ERRORS_RETURN) and throw with MPI's
/// text; a rank that dies is reported by mpiexec, which then ends the others.
/// </summary>
public sealed unsafe class MpiCollective : ICollective
{
    /// <summary>Larger collectives are split so each count fits MPI's int (and a bucket stays cache-friendly in
    /// shared memory).</summary>
    private const int MaxCount = 1 << 24;
    private bool open = true;

    public int Rank { get; }
    public int Size { get; }
    public string Describe { get; }

    public MpiCollective()
    {
        Mpich.Load();
        int done = 0;
        Mpich.Check(Mpich.Initialized(&done), "MPI_Initialized");
        if (done == 0)
        {
            int provided = 0;
            Mpich.Check(Mpich.InitThread(null, null, Mpich.ThreadFunneled, &provided), "MPI_Init_thread");
        }
        Mpich.Check(Mpich.CommSetErrhandler(Mpich.CommWorld, Mpich.ErrorsReturn), "MPI_Comm_set_errhandler");
        int r = 0, s = 0;
        Mpich.Check(Mpich.CommRank(Mpich.CommWorld, &r), "MPI_Comm_rank");
        Mpich.Check(Mpich.CommSize(Mpich.CommWorld, &s), "MPI_Comm_size");
        Rank = r; Size = s;
        var buf = new byte[8192]; int len = 0;
        fixed (byte* p = buf) Mpich.Check(Mpich.GetLibraryVersion(p, &len), "MPI_Get_library_version");
        string version = System.Text.RegularExpressions.Regex.Replace(   // "MPICH Version:\t4.0.2" -> "MPICH 4.0.2"
            System.Text.Encoding.ASCII.GetString(buf, 0, len).Split('\n')[0], @"\s*Version:\s*", " ").Trim();
        Describe = $"{version}, {Size} ranks";
    }

    public void AllreduceSum(Span<float> values)
    {
        for (int o = 0; o < values.Length; o += MaxCount)
        {
            int n = Math.Min(MaxCount, values.Length - o);
            fixed (float* p = values.Slice(o, n))
                Mpich.Check(Mpich.Allreduce((void*)Mpich.InPlace, p, n, Mpich.Float, Mpich.Sum, Mpich.CommWorld),
                    "MPI_Allreduce");
        }
    }

    public void AllreduceSum(Span<double> values)
    {
        for (int o = 0; o < values.Length; o += MaxCount)
        {
            int n = Math.Min(MaxCount, values.Length - o);
            fixed (double* p = values.Slice(o, n))
                Mpich.Check(Mpich.Allreduce((void*)Mpich.InPlace, p, n, Mpich.Double, Mpich.Sum, Mpich.CommWorld),
                    "MPI_Allreduce");
        }
    }

    public void Broadcast(Span<float> values, int root = 0)
    {
        for (int o = 0; o < values.Length; o += MaxCount)
        {
            int n = Math.Min(MaxCount, values.Length - o);
            fixed (float* p = values.Slice(o, n))
                Mpich.Check(Mpich.Bcast(p, n, Mpich.Float, root, Mpich.CommWorld), "MPI_Bcast");
        }
    }

    public void Allgather(ReadOnlySpan<float> local, Span<float> all)
    {
        if (all.Length != local.Length * Size)
            throw new ArgumentException($"allgather of {local.Length} values from {Size} ranks needs "
                + $"{local.Length * Size}, got a buffer of {all.Length}");
        if (local.Length > MaxCount)
            throw new ArgumentException($"allgather of {local.Length} values per rank is over {MaxCount}");
        fixed (float* s = local) fixed (float* d = all)
            Mpich.Check(Mpich.Allgather(s, local.Length, Mpich.Float, d, local.Length, Mpich.Float, Mpich.CommWorld),
                "MPI_Allgather");
    }

    public void Barrier() => Mpich.Check(Mpich.Barrier(Mpich.CommWorld), "MPI_Barrier");

    public void Abort(int code) => Mpich.Abort(Mpich.CommWorld, code);

    public void Dispose()
    {
        if (!open) return;
        open = false;
        Mpich.Finalize();
    }
}
