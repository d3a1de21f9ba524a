using System.Diagnostics;
using Pictor.Pipelines;

namespace Pictor.Server;

/// <summary>
/// Seconds per work unit (one image's model call: a denoising step, or a DALL-E token) for each model, the rate the
/// queue's Retry-After rests on. Measured before any job: at start each model draws one image for two steps, twice
/// (the first call pays for JIT compilation), and the second call's second step is kept (the first step also pays for
/// encoding the prompt). Then each finished job of the model moves it (an
/// exponential moving average, weight 0.3 on the newest), so batched and concurrent jobs correct the one-image
/// calibration.
/// </summary>
public sealed class WorkRate
{
    private readonly object gate = new();
    private readonly Dictionary<TextToImage, double> perUnit = [];
    private readonly Dictionary<TextToImage, double> calibrated = [];
    private readonly Dictionary<TextToImage, int> finished = [];

    /// <summary>Calibrates every model of <paramref name="models"/> (two two-step draws each).</summary>
    public WorkRate(ModelCatalog models)
    {
        ArgumentNullException.ThrowIfNull(models);
        foreach (var m in models.Models)
        {
            Calibrate(m);
            double s = Calibrate(m);
            calibrated[m] = perUnit[m] = s;
        }
    }

    /// <summary>The time of the second step of a one-image generation of the empty prompt with the model's defaults:
    /// the progress report of step 2 stops it (a cancellation, as a client's disconnect does).</summary>
    private static double Calibrate(TextToImage model)
    {
        var clock = Stopwatch.StartNew();
        double first = double.NaN, seconds = double.NaN;
        var steps = new Steps(step =>
        {
            if (step == 1) first = clock.Elapsed.TotalSeconds;
            if (step < 2) return;
            seconds = clock.Elapsed.TotalSeconds - first;
            throw new OperationCanceledException("calibrated");
        });
        try { model.Generate(new GenerationRequest("") { Count = 1 }, steps); }
        catch (OperationCanceledException) when (!double.IsNaN(seconds)) { }
        // A model of one step in all: that step, prompt included.
        return !double.IsNaN(seconds) ? seconds : !double.IsNaN(first) ? first : clock.Elapsed.TotalSeconds;
    }

    /// <summary>The model's seconds per unit: the calibration until a job of it finishes, then the moving
    /// average.</summary>
    public double SecondsPerUnit(TextToImage model)
    {
        lock (gate) return perUnit[model];
    }

    /// <summary>The one-step calibration at start, kept for /health.</summary>
    public double Calibrated(TextToImage model)
    {
        lock (gate) return calibrated[model];
    }

    /// <summary>Jobs of the model that have finished (and moved its rate).</summary>
    public int Finished(TextToImage model)
    {
        lock (gate) return finished.GetValueOrDefault(model);
    }

    /// <summary>Moves the model's rate by a finished job: <paramref name="units"/> in
    /// <paramref name="took"/>.</summary>
    public void Record(TextToImage model, double units, TimeSpan took)
    {
        double s = took.TotalSeconds / Math.Max(1, units);
        lock (gate)
        {
            int n = finished.GetValueOrDefault(model);
            perUnit[model] = n == 0 ? s : 0.7 * perUnit[model] + 0.3 * s;
            finished[model] = n + 1;
        }
    }

    private sealed class Steps(Action<int> onStep) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => onStep(value.Step);
    }
}
