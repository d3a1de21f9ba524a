using Pictor.Engine.Kernels;

namespace Pictor.Engine.Tests;

/// <summary>The kernels' fork-join: every index runs exactly once, on more than one thread; a body's exception reaches
/// the caller as itself; a fork inside a fork and forks from several threads at once all finish; a pool that is busy
/// or disposed declines instead of blocking.</summary>
public class ForkJoinPoolTests
{
    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 7)]
    [InlineData(3, 1000)]
    public void Every_index_runs_exactly_once(int threads, int count)
    {
        using var pool = new ForkJoinPool(threads);
        for (int round = 0; round < 50; round++)   // back-to-back jobs: workers still spinning, or just asleep
        {
            var hits = new int[count];
            Assert.True(pool.TryRun(count, i => Interlocked.Increment(ref hits[i])));
            Assert.All(hits, h => Assert.Equal(1, h));
            if (round % 10 == 9) Thread.Sleep(2);   // past the spin: the workers sleep and must be woken
        }
    }

    [Fact]
    public void The_workers_take_part()
    {
        using var pool = new ForkJoinPool(2);
        var ids = new HashSet<int>();
        int caller = Environment.CurrentManagedThreadId;
        for (int round = 0; round < 200 && ids.Count < 2; round++)
            pool.TryRun(64, i => { Thread.SpinWait(2000); lock (ids) ids.Add(Environment.CurrentManagedThreadId); });
        Assert.Contains(caller, ids);
        Assert.Equal(2, ids.Count);
    }

    [Fact]
    public void A_body_exception_reaches_the_caller_unwrapped_and_the_pool_goes_on()
    {
        using var pool = new ForkJoinPool(2);
        var e = Assert.Throws<InvalidOperationException>(() => pool.TryRun(100, i => { if (i == 37) throw new InvalidOperationException("index 37"); }));
        Assert.Equal("index 37", e.Message);
        int sum = 0;
        Assert.True(pool.TryRun(100, i => Interlocked.Add(ref sum, i)));
        Assert.Equal(4950, sum);
    }

    [Fact]
    public void A_nested_or_disposed_fork_declines()
    {
        var pool = new ForkJoinPool(2);
        bool? nested = null;
        Assert.True(pool.TryRun(1, _ => nested = pool.TryRun(4, _ => { })));
        Assert.False(nested);
        pool.Dispose();
        Assert.False(pool.TryRun(4, _ => { }));
    }

    [Fact]
    public void Dense_forks_finish_nested_and_from_several_threads()
    {
        // Through the shared entry point inside DenseForks scopes: nested forks run inline, and callers on other threads
        // that find the pool busy go to Parallel.For. 4 threads x 20 outer forks x 8 x 16 inner indices, each once.
        var hits = new int[4 * 20 * 8 * 16];
        var callers = Enumerable.Range(0, 4).Select(c => new Thread(() =>
        {
            using var dense = Parallelism.DenseForks();
            for (int r = 0; r < 20; r++)
                Parallelism.For(8, o => Parallelism.For(16, i => Interlocked.Increment(ref hits[((c * 20 + r) * 8 + o) * 16 + i])));
        })).ToArray();
        foreach (var t in callers) t.Start();
        foreach (var t in callers) Assert.True(t.Join(TimeSpan.FromSeconds(60)), "a fork did not finish");
        Assert.All(hits, h => Assert.Equal(1, h));
    }
}
