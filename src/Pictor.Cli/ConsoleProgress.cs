using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace Pictor.Cli;

/// <summary>
/// Progress of a long verb (train, generate, eval, data) on standard error: a Spectre.Console bar with rate, ETA and
/// the caller's status (the loss) when standard error is a terminal; plain lines otherwise, the first, one every
/// <see cref="PlainEvery"/> and the last, so CI logs and pipes stay readable. Log lines go above the bar.
/// </summary>
internal sealed class ConsoleProgress
{
    /// <summary>How often a plain (non-terminal) progress line is written.</summary>
    public static readonly TimeSpan PlainEvery = TimeSpan.FromSeconds(10);

    private readonly string title;
    private readonly ProgressTask? task;
    private readonly IAnsiConsole? console;
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private TimeSpan lastPlain = TimeSpan.MinValue;
    private long lastDone = -1;

    private ConsoleProgress(string title, ProgressTask? task, IAnsiConsole? console)
    {
        this.title = title; this.task = task; this.console = console;
    }

    /// <summary>Whether progress is drawn as a live bar: standard error is a terminal that is not "dumb".</summary>
    public static bool Interactive =>
        !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "" or "dumb");

    /// <summary>Runs <paramref name="work"/> with a progress display titled <paramref name="title"/>.</summary>
    public static T Run<T>(string title, Func<ConsoleProgress, T> work)
    {
        if (!Interactive) return work(new ConsoleProgress(title, null, null));
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        T result = default!;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(),
                new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => { result = work(new ConsoleProgress(title, ctx.AddTask(Markup.Escape(title), maxValue: 1),
                console)); });
        return result;
    }

    /// <summary><paramref name="done"/> of <paramref name="total"/>, with a short status such as the loss and
    /// rate.</summary>
    public void Update(long done, long total, string status = "")
    {
        if (task != null)
        {
            task.MaxValue = Math.Max(1, total);
            task.Value = done;
            task.Description = Markup.Escape(status.Length == 0 ? $"{title} {done}/{total}"
                : $"{title} {done}/{total}  {status}");
            return;
        }
        var now = clock.Elapsed;
        bool last = done >= total;
        if (done == lastDone || !(lastPlain == TimeSpan.MinValue || last || now - lastPlain >= PlainEvery)) return;
        lastPlain = now; lastDone = done;
        string rate = done > 0 && status.Length == 0
            ? string.Create(CultureInfo.InvariantCulture, $"  {done / Math.Max(1e-9, now.TotalSeconds):F1}/s") : "";
        Console.Error.WriteLine($"{title} {done}/{total}{(status.Length > 0 ? "  " + status : rate)}");
    }

    /// <summary>A message that stays (a validation result, a warning), above the live bar.</summary>
    public void Log(string message)
    {
        if (console != null) console.WriteLine(message);
        else Console.Error.WriteLine(message);
    }
}
