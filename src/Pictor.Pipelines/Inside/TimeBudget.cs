using System.Diagnostics;
using System.Globalization;

namespace Pictor.Pipelines.Inside;

/// <summary>What <see cref="TimeBudget.Fit"/> measured and chose: seconds per denoising step and the fixed cost of a
/// request on this machine, the step count that fits, and what the calibration itself took.</summary>
public sealed record StepsForBudget(int Steps, double SecondsPerStep, double FixedSeconds, double CalibrationSeconds,
    TimeSpan Budget)
{
    /// <summary>The generation's expected time at <see cref="Steps"/>.</summary>
    public double ExpectedSeconds => FixedSeconds + Steps * SecondsPerStep;

    /// <summary>Whether calibration plus generation fit the budget (false when even one step does not).</summary>
    public bool Fits => CalibrationSeconds + ExpectedSeconds <= Budget.TotalSeconds;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{(Fits ? $"{Steps} steps fit" : $"even {Steps} step does not fit")} the {Budget.TotalSeconds:G4} s budget: "
        + $"{1000 * SecondsPerStep:F0} ms per step + {FixedSeconds:F2} s fixed, measured in {CalibrationSeconds:F2} s "
        + $"(counted in the budget); the generation should take {ExpectedSeconds:F2} s");
}

/// <summary>
/// `pictor generate --time-budget 5s`: the denoising step count whose generation fits a wall-clock budget on this
/// machine, from a measured calibration of the same request: one step to warm up, then five steps timed one by one
/// (per step = the median time between step reports, fixed = the rest), the calibration's own time taken off the budget
/// first; at most <see cref="MaxSteps"/>. Diffusion models only: DALL-E draws one token
/// per image position and takes no other step count.
/// </summary>
public static class TimeBudget
{
    /// <summary>The most steps a budget picks: past it a DPM-Solver++ image no longer changes visibly, and the time
    /// is better left unspent.</summary>
    public const int MaxSteps = 100;

    /// <summary>Steps the calibration times after its warm-up step.</summary>
    private const int Timed = 5;

    /// <summary>Parses "5s", "1.5s", "2m", "500ms" or a plain number of seconds.</summary>
    public static TimeSpan Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToLowerInvariant();
        (string num, double scale) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 0.001)
            : t.EndsWith('s') ? (t[..^1], 1.0) : t.EndsWith('m') ? (t[..^1], 60.0) : (t, 1.0);
        if (!double.TryParse(num, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
            || !double.IsFinite(v) || v <= 0 || v * scale > 86_400)
            throw new ArgumentException($"time budget must be a positive duration such as 5s, 1.5s, 2m or 500ms (at "
                + $"most a day), got '{text}'");
        return TimeSpan.FromSeconds(v * scale);
    }

    /// <summary>Why <paramref name="model"/> takes no time budget (one line naming the fix), or null.</summary>
    public static string? Refuse(TextToImage model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Family == "diffusion" ? null
            : $"a time budget picks a diffusion model's step count, but '{model.Name}' is a {model.Family} model, "
                + "whose step count is fixed (one per image token); leave out --time-budget";
    }

    /// <summary>Measures <paramref name="request"/> at 1 and 3 steps and returns the most steps (1 to the model's
    /// schedule length) whose generation fits what is left of <paramref name="budget"/>.</summary>
    public static StepsForBudget Fit(TextToImage model, GenerationRequest request, TimeSpan budget,
        CancellationToken cancel = default)
    {
        if (Refuse(model) is { } why) throw new ArgumentException(why);
        ArgumentNullException.ThrowIfNull(request);
        var calibration = Stopwatch.StartNew();
        model.Generate(request with { Steps = 1, PreviewEvery = 0 }, null, cancel);   // warm-up: JIT, buffer pools
        var at = new List<double>();
        var clock = Stopwatch.StartNew();
        model.Generate(request with { Steps = Timed, PreviewEvery = 0 },
            new Listener(_ => at.Add(clock.Elapsed.TotalSeconds)), cancel);
        double total = clock.Elapsed.TotalSeconds;
        // the median time between step reports: one slow step (another process on the cores) does not set the pace
        var gaps = at.Zip(at.Skip(1), (a, b) => b - a).Order().ToList();
        double per = Math.Max(gaps[gaps.Count / 2], 1e-6), fixedCost = Math.Max(0, total - Timed * per);
        int max = Math.Min(MaxSteps, ((Diffusion.DiffusionPipeline)model.Pipeline).Config.ScheduleSteps);
        return Choose(per, fixedCost, calibration.Elapsed.TotalSeconds, budget, max);
    }

    /// <summary>The most steps, 1 to <paramref name="max"/>, with spent + fixed + steps * per within the budget (1
    /// when none fits).</summary>
    public static StepsForBudget Choose(double perStep, double fixedSeconds, double spent, TimeSpan budget, int max)
    {
        double left = budget.TotalSeconds - spent - fixedSeconds;
        int steps = left <= 0 ? 1 : (int)Math.Clamp(Math.Floor(left / perStep + 1e-9), 1, max);
        return new StepsForBudget(steps, perStep, fixedSeconds, spent, budget);
    }
}

/// <summary>Reports on the calling thread, at once.</summary>
internal sealed class Listener(Action<GenerationProgress> report) : IProgress<GenerationProgress>
{
    public void Report(GenerationProgress value) => report(value);
}
