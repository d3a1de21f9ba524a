using System.Threading.Channels;
using Pictor.Pipelines;

namespace Pictor.Server;

/// <summary>One event of a job's progress stream: "queued", "started", "progress", "done" or "failed", with its
/// JSON data.</summary>
public sealed record JobEvent(string Kind, object Data);

/// <summary>What a job runs: the library call (a generation or an edit) with its progress and cancellation.</summary>
public delegate GenerationResult JobWork(IProgress<GenerationProgress> progress, CancellationToken cancel);

/// <summary>
/// One admitted images request: the model, the library call it runs (<see cref="JobWork"/>), its cancellation (the
/// client's disconnect, the deadline, shutdown) and the stream of progress events that any number of listeners
/// follow. Work units (images x model calls) and the share done so far size the Retry-After estimate.
/// </summary>
public sealed class Job
{
    private readonly object gate = new();
    private readonly List<Channel<JobEvent>> listeners = [];
    private readonly TaskCompletionSource<GenerationResult> done =
        new(TaskCreationOptions.RunContinuationsAsynchronously);
    private JobEvent? state;   // the latest "queued"/"started"/"progress" event, replayed to a new listener
    private JobEvent? final;   // "done" or "failed"

    private readonly Timer deadline;

    /// <param name="units">Images drawn x model calls each: the job's size for the wait estimate.</param>
    /// <param name="cancel">The client's disconnect (RequestAborted).</param>
    /// <param name="limit">The deadline from admission; past it the job is cancelled.</param>
    internal Job(string id, TextToImage model, double units, JobWork work, CancellationToken cancel, TimeSpan limit)
    {
        Id = id; Model = model; Work = work;
        Units = Math.Max(1, units);
        Cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline = new Timer(_ => Cancel($"the job passed its deadline of {limit.TotalSeconds:0.#} s (queueing "
            + "included); ask for fewer images or steps, or retry when the server is less busy"),
            null, limit, Timeout.InfiniteTimeSpan);
    }

    /// <summary>A generation's job: request.Count (or Candidates) images of <paramref name="steps"/> steps.</summary>
    internal static Job Generation(string id, TextToImage model, GenerationRequest request, int steps,
        CancellationToken cancel, TimeSpan limit) =>
        new(id, model, Math.Max(1, Math.Max(request.Count, request.Candidates)) * (double)Math.Max(1, steps),
            (progress, token) => model.Generate(request, progress, token), cancel, limit);

    public string Id { get; }
    public TextToImage Model { get; }
    internal JobWork Work { get; }
    /// <summary>Images drawn x model calls: how much work the job is, for the queue's wait estimate.</summary>
    public double Units { get; }
    internal CancellationTokenSource Cancellation { get; }
    /// <summary>Why the job was cancelled by the server (deadline, shutdown), when it was.</summary>
    internal string? CancelReason { get; private set; }
    /// <summary>When the job ended (done, failed or cancelled), for pruning finished jobs.</summary>
    internal DateTime? EndedUtc { get; private set; }

    public Task<GenerationResult> Completion => done.Task;

    private readonly long admitted = System.Diagnostics.Stopwatch.GetTimestamp();
    /// <summary>Time from admission to a worker taking the job, and the library call's own time (the
    /// Server-Timing header, and the benchmark's server overhead).</summary>
    public TimeSpan Waited { get; private set; }
    public TimeSpan Took { get; private set; }

    private long started;
    private double fraction;

    internal void MarkStarted()
    {
        Waited = System.Diagnostics.Stopwatch.GetElapsedTime(admitted);
        Volatile.Write(ref started, System.Diagnostics.Stopwatch.GetTimestamp());
    }

    /// <summary>The share of its work a running job has done (its last step / total), and for how long it has run:
    /// its own measured pace, for the wait estimate.</summary>
    internal (double Fraction, TimeSpan Running) Pace()
    {
        long t = Volatile.Read(ref started);
        return (Volatile.Read(ref fraction), t == 0 ? TimeSpan.Zero : System.Diagnostics.Stopwatch.GetElapsedTime(t));
    }

    internal void MarkProgress(int step, int total) =>
        Volatile.Write(ref fraction, total > 0 ? Math.Clamp((double)step / total, 0, 1) : 0);

    internal void Cancel(string reason)
    {
        lock (gate)
        {
            if (final != null) return;
            CancelReason ??= reason;
        }
        try { Cancellation.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>A stream of this job's events from now on, starting with its latest state (and its end, if it has
    /// ended: then the stream is complete).</summary>
    public ChannelReader<JobEvent> Listen()
    {
        var c = Channel.CreateUnbounded<JobEvent>(new UnboundedChannelOptions { SingleReader = true });
        lock (gate)
        {
            if (state != null) c.Writer.TryWrite(state);
            if (final != null) { c.Writer.TryWrite(final); c.Writer.TryComplete(); }
            else listeners.Add(c);
        }
        return c.Reader;
    }

    /// <summary>Stops sending to a listener that went away.</summary>
    public void Unlisten(ChannelReader<JobEvent> reader)
    {
        lock (gate) listeners.RemoveAll(c => c.Reader == reader);
    }

    internal void Publish(JobEvent e)
    {
        lock (gate)
        {
            if (final != null) return;
            state = e;
            foreach (var c in listeners) c.Writer.TryWrite(e);
        }
    }

    internal void Succeed(GenerationResult result, TimeSpan took)
    {
        Took = took;
        End(new JobEvent("done", new { images = result.Images.Count, seconds = took.TotalSeconds }));
        done.TrySetResult(result);
    }

    internal void Fail(Exception e)
    {
        End(new JobEvent("failed", new
        {
            message = CancelReason ?? (e is OperationCanceledException ? "cancelled: the client disconnected"
                : e.Message),
        }));
        if (e is OperationCanceledException) done.TrySetCanceled();
        else done.TrySetException(e);
    }

    private void End(JobEvent e)
    {
        lock (gate)
        {
            if (final != null) return;
            final = e; EndedUtc = DateTime.UtcNow;
            foreach (var c in listeners) { c.Writer.TryWrite(e); c.Writer.TryComplete(); }
            listeners.Clear();
        }
        deadline.Dispose();
        Cancellation.Dispose();
    }
}
