using System.Diagnostics;
using Pictor.Pipelines.Inside;
using Pictor.TestSupport;

namespace Pictor.Pipelines.Tests;

/// <summary>`generate --time-budget`: the step count that fits, from a measured calibration on the emoji model.</summary>
public class TimeBudgetTests
{
    private static string ModelDir(string name) =>
        Path.GetFullPath(Path.Combine(Fixtures.Dir, "..", "..", "models", name));

    [Theory]
    [InlineData("5s", 5.0)]
    [InlineData("1.5s", 1.5)]
    [InlineData("2m", 120.0)]
    [InlineData("500ms", 0.5)]
    [InlineData("3", 3.0)]
    public void Budgets_parse(string text, double seconds) =>
        Assert.Equal(seconds, TimeBudget.Parse(text).TotalSeconds, 9);

    [Theory]
    [InlineData("0s")]
    [InlineData("-1s")]
    [InlineData("fast")]
    [InlineData("2h")]
    public void Bad_budgets_name_the_forms_that_work(string text) =>
        Assert.Contains("such as 5s", Assert.Throws<ArgumentException>(() => TimeBudget.Parse(text)).Message);

    [Theory]
    [InlineData(0.1, 0.5, 1.0, 5.0, 35)]     // 5 - 1 - 0.5 = 3.5 s left: 35 steps of 0.1 s
    [InlineData(0.1, 0.5, 1.0, 1.55, 1)]     // 0.05 s left: less than a step, still one
    [InlineData(0.1, 0.5, 6.0, 5.0, 1)]      // the calibration alone overran: one step, and it says so
    [InlineData(0.01, 0.0, 0.0, 60.0, 100)]  // capped at MaxSteps
    public void The_most_steps_that_fit_are_chosen(double per, double fixedCost, double spent, double budget,
        int steps)
    {
        var fit = TimeBudget.Choose(per, fixedCost, spent, TimeSpan.FromSeconds(budget), TimeBudget.MaxSteps);
        Assert.Equal(steps, fit.Steps);
        Assert.Equal(spent + fixedCost + steps * per <= budget, fit.Fits);
        if (steps > 1 && steps < TimeBudget.MaxSteps) Assert.True(spent + fixedCost + (steps + 1) * per > budget);
        Assert.Contains(fit.Fits ? "steps fit" : "does not fit", fit.ToString());
    }

    [Fact]
    public void A_measured_fit_on_the_emoji_model_generates_and_dalle_is_refused()
    {
        var model = TextToImage.Load(ModelDir("emoji"));
        var request = new GenerationRequest("grinning face, noto style") { Seed = 1 };
        var fit = TimeBudget.Fit(model, request, TimeSpan.FromSeconds(4));
        Assert.InRange(fit.Steps, 1, TimeBudget.MaxSteps);
        Assert.True(fit.SecondsPerStep > 0 && fit.CalibrationSeconds > 0, fit.ToString());
        // how close the expected time comes is not asserted: the machine is shared and a step's time varies with
        // the load (docs/inside.md)
        Assert.Single(model.Generate(request with { Steps = fit.Steps }).Images);
        Assert.Contains("a time budget picks a diffusion model's step count",
            TimeBudget.Refuse(TextToImage.Load(ModelDir("emoji-dalle"))));
    }
}
