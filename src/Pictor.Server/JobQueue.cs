using System.Collections.Concurrent;
using System.Diagnostics;
using Pictor.Pipelines;

namespace Pictor.Server;

/// <summary>
/// Bounded work: <see cref="ServerOptions.Workers"/> threads take jobs in order from a queue of at most
/// <see cref="ServerOptions.Queue"/> waiting jobs. A job that does not fit is refused at once (the caller answers
/// 429) with a wait estimated from the work admitted: a running job's remaining share at its own measured pace, a
/// waiting job's units at its model's measured seconds per unit (<see cref="WorkRate"/>: a one-step calibration at
/// start, then finished jobs). Stopping refuses new work and cancels the jobs still waiting; running jobs finish.
/// </summary>
public sealed class JobQueue : IDisposable
{
    private readonly BlockingCollection<Job> waiting = new(new ConcurrentQueue<Job>());
    private readonly ConcurrentDictionary<string, Job> jobs = new(StringComparer.Ordinal);
    private readonly Thread[] threads;
    private readonly object gate = new();
    private readonly int capacity;
    private readonly List<Job> active = [];   // admitted and not ended, in order
    private int admitted, running;
    private bool accepting = true;

    public JobQueue(ServerOptions options, ModelCatalog models)
    {
        ArgumentNullException.ThrowIfNull(options);
        Rate = new WorkRate(models);
        Workers = options.Workers;
        capacity = options.Workers + options.Queue;
        threads = new Thread[Workers];
        for (int i = 0; i < Workers; i++)
        {
            threads[i] = new Thread(Work) { IsBackground = true, Name = $"pictor-worker-{i}" };
            threads[i].Start();
        }
    }

    public int Workers { get; }
    /// <summary>Running plus waiting jobs the queue holds at most.</summary>
    public int Capacity => capacity;
    public int Running => Volatile.Read(ref running);
    public int Waiting => Math.Max(0, Volatile.Read(ref admitted) - Running);
    public bool Accepting => Volatile.Read(ref accepting);
    /// <summary>Each model's measured seconds per unit (an image's denoising step or token).</summary>
    public WorkRate Rate { get; }

    /// <summary>A job by id while it waits or runs, and for a minute after it ended (late listeners).</summary>
    public Job? Find(string id) => jobs.GetValueOrDefault(id);

    /// <summary>Admits a job when there is room; otherwise returns false and the seconds after which a retry is
    /// likely to fit. Throws <see cref="ApiError"/> (503) while stopping and (400) for a job id in use.</summary>
    public bool TryAdmit(Job job, out int retryAfterSeconds)
    {
        ArgumentNullException.ThrowIfNull(job);
        Prune();
        lock (gate)
        {
            retryAfterSeconds = 0;
            if (!accepting)
                throw new ApiError(503, "the server is shutting down and takes no new work; retry on another "
                    + "instance or after it restarts", code: "shutting_down") { RetryAfter = 5 };
            if (admitted >= capacity)
            {
                retryAfterSeconds = EstimateWait();
                return false;
            }
            if (!jobs.TryAdd(job.Id, job))
                throw ApiError.BadRequest($"job id '{job.Id}' is already in use; send a new one (or none: the "
                    + "server makes one)", "X-Pictor-Job-Id", "job_id_in_use");
            admitted++; active.Add(job);
        }
        job.Publish(new JobEvent("queued", new { position = Waiting }));
        waiting.Add(job);
        return true;
    }

    /// <summary>Seconds until the admitted work is done, shared by the workers; at least 1. A running job that has
    /// reported a step goes on at its own pace (time so far x (1 - f) / f for a share f done); the others take their
    /// units x their model's seconds per unit.</summary>
    private int EstimateWait()
    {
        double seconds = 0;
        foreach (var j in active)
        {
            var (f, ran) = j.Pace();
            seconds += f > 0 && ran > TimeSpan.Zero ? ran.TotalSeconds * (1 - f) / f
                : j.Units * (1 - f) * Rate.SecondsPerUnit(j.Model);
        }
        return (int)Math.Clamp(Math.Ceiling(seconds / Workers), 1, 3600);
    }

    /// <summary>The estimate a refused request would get now (the Retry-After of a 429), for /health and
    /// tests.</summary>
    public int EstimatedWait()
    {
        lock (gate) return EstimateWait();
    }

    /// <summary>Refuses new jobs and cancels the waiting ones (their callers answer 503); running jobs go on.</summary>
    public void StopAccepting()
    {
        lock (gate) accepting = false;
        foreach (var j in waiting.ToArray()) j.Cancel("the server is shutting down; the job was not started");
    }

    private void Work()
    {
        foreach (var job in waiting.GetConsumingEnumerable())
        {
            Interlocked.Increment(ref running);
            job.MarkStarted();
            var clock = Stopwatch.StartNew();
            try
            {
                var token = job.Cancellation.Token;
                token.ThrowIfCancellationRequested();
                job.Publish(new JobEvent("started", new { }));
                var progress = new Reporter(p =>
                {
                    job.MarkProgress(p.Step, p.Total);
                    job.Publish(Progress(p));
                });
                var result = job.Work(progress, token);
                Rate.Record(job.Model, job.Units, clock.Elapsed);
                job.Succeed(result, clock.Elapsed);
            }
            catch (Exception e)
            {
                job.Fail(e);
            }
            finally
            {
                lock (gate) { admitted--; active.Remove(job); }
                Interlocked.Decrement(ref running);
            }
        }
    }

    private static JobEvent Progress(GenerationProgress p) => new("progress", new
    {
        step = p.Step, total = p.Total,
        preview = p.Preview == null ? null : Convert.ToBase64String(p.Preview.ToPng()),
    });

    private void Prune()
    {
        var old = DateTime.UtcNow.AddMinutes(-1);
        foreach (var (id, j) in jobs)
            if (j.EndedUtc is { } t && t < old) jobs.TryRemove(id, out _);
    }

    /// <summary>Stops the workers after the jobs they hold (call <see cref="StopAccepting"/> first).</summary>
    public void Dispose()
    {
        StopAccepting();
        waiting.CompleteAdding();
        foreach (var t in threads) t.Join();
        waiting.Dispose();
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports on the worker's thread at once, in order.</summary>
    private sealed class Reporter(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
