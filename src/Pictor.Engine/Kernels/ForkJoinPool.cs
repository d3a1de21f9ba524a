using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Pictor.Engine.Kernels;

/// <summary>
/// Fork-join for kernels: a fixed set of worker threads (one per core beyond the caller's) that, after each job, watch
/// for the next one for a short while (<see cref="SpinMicroseconds"/>) before they sleep. The .NET thread pool workers
/// behind Parallel.For sleep at once (UnfairSemaphoreSpinLimit = 0, set because their spinning starved OpenBLAS: bench/
/// RESULTS.md, "Spinning threads"), so every fork woke a sleeping thread through the kernel: tens of microseconds, paid
/// thousands of times per call when a sampler multiplies 16 rows per token (bench/RESULTS.md, "AR-S sampling: a fork
/// that does not wait for the kernel"). The caller takes indices too and waits for the last one to finish.
/// One job at a time: a second thread that forks while a job runs (two requests on the server, tests in parallel)
/// gets false from <see cref="TryRun"/> and its caller falls back to Parallel.For; a fork from inside a job (nested)
/// also gets false and its caller runs the indices itself. Which thread runs an index never changes a result: each
/// index is a fixed unit of work that writes its own outputs.
/// </summary>
internal sealed class ForkJoinPool : IDisposable
{
    /// <summary>How long an idle worker watches for the next job before it sleeps (PICTOR_SPIN_US, default 50; 0 sleeps
    /// at once, like the thread pool).</summary>
    public static readonly int SpinMicroseconds = int.TryParse(Environment.GetEnvironmentVariable("PICTOR_SPIN_US"),
        out int us) && us >= 0 ? us : 50;

    private sealed class Job(Action<int> body, int count)
    {
        public readonly Action<int> Body = body;
        public readonly int Count = count;
        public int Next;          // the next index to claim
        public int Pending = count;   // indices not yet finished
        public Exception? Error;  // the first exception a body threw
    }

    [ThreadStatic] private static bool inJob;

    /// <summary>True on a thread that is running an index of a job (a worker, or the caller inside its own
    /// job).</summary>
    public static bool InJob => inJob;
    private readonly object gate = new();        // held by the caller for the length of a job
    private readonly object sleepLock = new();   // workers sleep on it
    private readonly Thread[] workers;
    private readonly long spinTicks;
    private Job? current;
    private int generation;   // bumped for every job; a worker waits for it to change
    private int sleepers;     // workers inside the sleep lock's wait loop
    private volatile bool disposed;
    private volatile bool hushed;   // set by Hush: idle workers stop watching and sleep; the next job clears it

    public ForkJoinPool(int threads)
    {
        Threads = threads;
        spinTicks = Stopwatch.Frequency * SpinMicroseconds / 1_000_000;
        workers = new Thread[threads - 1];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"pictor-kernel-{i + 1}" };
            workers[i].Start();
        }
    }

    /// <summary>Threads that run a job: the workers and the caller.</summary>
    public int Threads { get; }

    /// <summary>Runs body(i) for i in [0, count) on the workers and the calling thread and returns true when all are
    /// done (rethrowing the first exception a body threw); false, having run nothing, when the pool is busy with
    /// another job or the caller is itself inside a job.</summary>
    public bool TryRun(int count, Action<int> body)
    {
        if (inJob || disposed || !Monitor.TryEnter(gate)) return false;
        try
        {
            hushed = false;
            var job = new Job(body, count);
            Volatile.Write(ref current, job);
            Interlocked.Increment(ref generation);   // full fence: the job is visible before the new generation
            // Dekker pairing with the worker's Interlocked.Increment(ref sleepers) then read of generation: at least
            // one of the two sees the other's write, so a worker never sleeps through a job it has not seen.
            if (Volatile.Read(ref sleepers) > 0) lock (sleepLock) Monitor.PulseAll(sleepLock);
            Work(job);
            var spin = new SpinWait();
            // never Sleep(1): a millisecond
            while (Volatile.Read(ref job.Pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
            if (job.Error != null) ExceptionDispatchInfo.Throw(job.Error);
            return true;
        }
        finally { Monitor.Exit(gate); }
    }

    private static void Work(Job job)
    {
        inJob = true;
        try
        {
            int i;
            while ((i = Interlocked.Increment(ref job.Next) - 1) < job.Count)
            {
                try { job.Body(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref job.Error, e, null); }
                Interlocked.Decrement(ref job.Pending);
            }
        }
        finally { inJob = false; }
    }

    private void WorkerLoop()
    {
        int seen = Volatile.Read(ref generation);
        while (true)
        {
            long until = Stopwatch.GetTimestamp() + spinTicks;
            int g;
            while ((g = Volatile.Read(ref generation)) == seen && !disposed)
            {
                if (!hushed && Stopwatch.GetTimestamp() < until) { Thread.SpinWait(16); continue; }
                lock (sleepLock)
                {
                    Interlocked.Increment(ref sleepers);
                    while (Volatile.Read(ref generation) == seen && !disposed) Monitor.Wait(sleepLock);
                    Interlocked.Decrement(ref sleepers);
                }
            }
            if (disposed) return;
            seen = g;
            // A worker that wakes late may find a later job here, or a finished one: it claims what is left, if
            // anything.
            var job = Volatile.Read(ref current);
            if (job != null) Work(job);
        }
    }

    /// <summary>Idle workers stop watching for a job and sleep until the next one: called before a threaded OpenBLAS
    /// product, whose own threads need the cores (a watching worker cost the UNet-S training step about 3 %).</summary>
    public void Hush() => hushed = true;

    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
            lock (sleepLock) Monitor.PulseAll(sleepLock);
        }
    }
}
