namespace Pictor.Pipelines.Distributed;

/// <summary>Which process and machine each rank is: mpiexec names a rank that died only by its process id (MPICH's
/// "BAD TERMINATION ... PID 12443 RUNNING AT host"), so rank 0 logs this map when a run starts.</summary>
public static class Processes
{
    private const int HostChars = 64;

    /// <summary>(process id, host name) of every rank, in rank order (a collective).</summary>
    public static (int Pid, string Host)[] Gather(ICollective world)
    {
        // one row of floats per rank: the pid (below 2^22 on Linux, exact in a float), then the host's characters
        var mine = new float[1 + HostChars];
        mine[0] = Environment.ProcessId;
        string host = Environment.MachineName;
        for (int i = 0; i < Math.Min(host.Length, HostChars); i++) mine[1 + i] = host[i];
        var all = new float[world.Size * mine.Length];
        world.Allgather(mine, all);
        return Enumerable.Range(0, world.Size).Select(r =>
        {
            var row = all.AsSpan(r * mine.Length, mine.Length);
            var chars = row[1..].ToArray().TakeWhile(c => c != 0).Select(c => (char)c).ToArray();
            return ((int)row[0], new string(chars));
        }).ToArray();
    }
}
