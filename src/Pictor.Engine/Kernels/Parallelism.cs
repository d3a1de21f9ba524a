namespace Pictor.Engine.Kernels;

/// <summary>The number of threads kernels use (PICTOR_THREADS, default: all cores), and their fork-join.</summary>
public static class Parallelism
{
    private static int threads = Initial();
    private static ForkJoinPool? pool;
    private static readonly object poolLock = new();

    private static int Initial()
    {
        var env = Environment.GetEnvironmentVariable("PICTOR_THREADS");
        if (int.TryParse(env, out int t) && t > 0) return t;
        return Environment.ProcessorCount;
    }

    public static int Threads
    {
        get => threads;
        set
        {
            if (value < 1) Throw.Argument($"thread count must be >= 1, got {value}");
            threads = value;
            OpenBlas.SetThreads(value);
        }
    }

    /// <summary>Off with PICTOR_FORKJOIN=threadpool: every fork then goes through Parallel.For (the A/B switch of
    /// bench/RESULTS.md, "AR-S sampling: a fork that does not wait for the kernel").</summary>
    internal static readonly bool UsePool = Environment.GetEnvironmentVariable("PICTOR_FORKJOIN") != "threadpool";

    [ThreadStatic] private static int denseScopes;

    /// <summary>While the returned scope is open on this thread, its forks go to workers that watch for the next one
    /// (<see cref="ForkJoinPool"/>) instead of the thread pool's sleeping ones: for decoding, which forks thousands of
    /// small products per call (KV-cached AR-S sampling: about 530 -> 410 ms a batch). Outside such scopes (training,
    /// UNet sampling: fewer, larger forks, with OpenBLAS's own threads between them) the watching measured no gain and
    /// possibly a few per cent of loss, so the thread pool keeps them. Scopes nest.</summary>
    public static IDisposable DenseForks() => new DenseScope();

    private sealed class DenseScope : IDisposable
    {
        private bool open = true;
        public DenseScope() => denseScopes++;
        public void Dispose() { if (open) { open = false; denseScopes--; } }
    }

    /// <summary>Runs body(i) for i in [0, count) on up to <see cref="Threads"/> threads. Each index is one fixed
    /// unit of work, so which thread runs it never changes the result. Inside <see cref="DenseForks"/>, our own
    /// workers take the fork (Parallel.For when they are busy with another thread's job; this thread alone when it
    /// is one of theirs); elsewhere Parallel.For.</summary>
    public static void For(int count, Action<int> body)
    {
        if (count <= 0) return;
        int t = threads;
        if (t == 1 || count == 1) { for (int i = 0; i < count; i++) body(i); return; }
        if (ForkJoinPool.InJob) { for (int i = 0; i < count; i++) body(i); return; }   // nested in a job of ours
        if (UsePool && denseScopes > 0)
        {
            var p = Pool(t);
            if (p.TryRun(count, body)) return;
        }
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = t }, body);
    }

    /// <summary>Before work that brings its own threads (a threaded OpenBLAS product): our idle workers sleep now
    /// instead of watching for the next fork on the cores that work needs.</summary>
    public static void Hush()
    {
        if (!ForkJoinPool.InJob) Volatile.Read(ref pool)?.Hush();
    }

    private static ForkJoinPool Pool(int t)
    {
        var p = Volatile.Read(ref pool);
        if (p != null && p.Threads == t) return p;
        lock (poolLock)
        {
            p = pool;
            if (p != null && p.Threads == t) return p;
            p?.Dispose();   // a new thread count (tests, Threads = n): the old workers finish their job and exit
            p = new ForkJoinPool(t);
            Volatile.Write(ref pool, p);
            return p;
        }
    }
}
