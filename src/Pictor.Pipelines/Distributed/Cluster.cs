using Pictor.Engine.Kernels;

namespace Pictor.Pipelines.Distributed;

/// <summary>
/// Which world this process is in, read from the launcher's environment: MPICH's mpiexec (Hydra) sets PMI_RANK and
/// PMI_SIZE, and MPI_LOCALNRANKS for the ranks on this machine; without them, one process. Under MPI the kernels'
/// thread count is set so that ranks x threads = cores on each machine (PICTOR_THREADS, when set, wins).
/// </summary>
public static class Cluster
{
    /// <summary>The environment's world: <see cref="MpiCollective"/> under mpiexec with more than one rank, else
    /// <see cref="SingleProcess"/>. Refuses Open MPI's launcher with the fix.</summary>
    public static ICollective FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    public static ICollective FromEnvironment(Func<string, string?> env)
    {
        if (env("OMPI_COMM_WORLD_SIZE") is { } ompi && ompi != "1")
            throw new InvalidOperationException("this job was started by Open MPI's mpirun, but Pictor binds MPICH; "
                + "start it with MPICH's launcher: mpiexec.mpich -n N ./pictor train ... (apt-get install mpich)");
        if (!int.TryParse(env("PMI_SIZE"), out int size) || size <= 1) return SingleProcess.Instance;
        if (env("PICTOR_THREADS") == null)
        {
            int local = int.TryParse(env("MPI_LOCALNRANKS"), out int l) && l > 0 ? l : size;
            Parallelism.Threads = Math.Max(1, Environment.ProcessorCount / local);
        }
        return new MpiCollective();
    }
}
