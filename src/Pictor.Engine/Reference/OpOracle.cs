using System.Globalization;
using System.Text;
using static System.FormattableString;

namespace Pictor.Engine.Reference;

/// <summary>How close a fast kernel's values came to the reference's (llm.c's "TENSOR OK maxdiff").</summary>
/// <param name="What">What was compared ("conv2d forward", "layernorm d(input 0)").</param>
/// <param name="MaxDiff">The largest |got - want| over the values (NaNs skipped).</param>
/// <param name="Tolerance">The bound each difference had to meet: tol * max(1, max |want|).</param>
/// <param name="Message">"TENSOR MISMATCH ..." with the first mismatches when not <paramref name="Ok"/>, else a
/// one-line summary.</param>
public sealed record Closeness(string What, bool Ok, double MaxDiff, double Tolerance, string Message);

/// <summary>What <see cref="OpOracle.Check"/> found for one op.</summary>
/// <param name="Name">The op case's name.</param>
/// <param name="ForwardMaxDiff">Max |fast - reference| of the forward values.</param>
/// <param name="GradientMaxDiff">Max |analytic - numeric| over the probed gradient entries of every input; NaN when
/// no gradient was checked (no input requires one, or the forward failed first).</param>
/// <param name="Failures">The failed comparisons' messages, in the order they were checked (forward first, then each
/// input's gradient); empty when <see cref="Ok"/>.</param>
public sealed record OpCheckResult(string Name, double ForwardMaxDiff, double ForwardTolerance, double GradientMaxDiff,
                                   double GradientTolerance, IReadOnlyList<string> Failures)
{
    public bool Ok => Failures.Count == 0;

    /// <summary>One line when it passed ("forward maxdiff 1.19e-07 (tol 1e-05), gradient maxdiff 3.3e-06 (tol
    /// 0.001)"), else every failure message (each starts on its own line).</summary>
    public string Detail => Ok
        ? Invariant($"forward maxdiff {ForwardMaxDiff:G3} (tol {ForwardTolerance:G3})")
          + (double.IsNaN(GradientMaxDiff) ? ", no gradient"
             : Invariant($", gradient maxdiff {GradientMaxDiff:G3} (tol {GradientTolerance:G3})"))
        : string.Join("\n", Failures);
}

/// <summary>
/// Checks one differentiable op against its oracles (STYLE habit 7): (1) its forward against the double-precision
/// reference kernel, (2) its analytic gradient (backward of sum(y * w) for fixed random w) against central finite
/// differences of the reference kernel in double precision. It reports rather than throws: the test suite's
/// OpCheck.Check turns a failure into a test failure, and 'pictor doctor' into a row of its table.
/// </summary>
public static class OpOracle
{
    /// <param name="name">Names the op in the messages.</param>
    /// <param name="inputs">The fast op's inputs; those with RequiresGrad get their gradient checked (their Grad is
    /// reset first and holds the analytic gradient afterwards).</param>
    /// <param name="fast">The float32 op under test.</param>
    /// <param name="reference">The same op on double-precision copies of the inputs (RefOps).</param>
    /// <param name="fwdTol">Forward bound, relative to max(1, max |reference|).</param>
    /// <param name="gradTol">Gradient bound, relative to max(1, max |numeric gradient|) of each input.</param>
    /// <param name="maxProbe">Gradient entries probed per input (all of them when it has fewer; else the first, the
    /// last and random ones).</param>
    /// <param name="h">Central-difference step, in double.</param>
    public static OpCheckResult Check(string name, Tensor[] inputs, Func<Tensor[], Tensor> fast, Func<D[], D> reference,
                                      double fwdTol = 1e-5, double gradTol = 1e-3, int maxProbe = 40, double h = 1e-6)
    {
        foreach (var t in inputs) t.Grad = null;
        var y = fast(inputs);
        var dIn = inputs.Select(D.Of).ToArray();
        var yr = reference(dIn);
        if (!y.Shape.SequenceEqual(yr.S))
            return Failed($"{name}: forward shape {Shape.Format(y.Shape)}, reference {Shape.Format(yr.S)}");
        var fwd = Compare($"{name} forward", y.ToArray().Select(v => (double)v).ToArray(), yr.V, fwdTol);
        if (!fwd.Ok) return new(name, fwd.MaxDiff, fwdTol, double.NaN, gradTol, [fwd.Message]);

        var rng = new Rng(1234);
        var w = rng.Randn(y.Shape);
        var wd = w.ToArray().Select(v => (double)v).ToArray();
        if (!inputs.Any(t => t.RequiresGrad)) return new(name, fwd.MaxDiff, fwdTol, double.NaN, gradTol, []);
        Ops.Sum(Ops.Mul(y, w)).Backward();

        var failures = new List<string>();
        double gradMax = 0;
        for (int k = 0; k < inputs.Length; k++)
        {
            if (!inputs[k].RequiresGrad) continue;
            if (inputs[k].Grad is not { } grad)
            {
                failures.Add($"{name}: input {k} has no gradient after backward");
                continue;
            }
            var ga = grad.ToArray();
            var probes = Probes(ga.Length, maxProbe, rng);
            var num = new double[probes.Length]; var ana = new double[probes.Length];
            for (int p = 0; p < probes.Length; p++)
            {
                int i = probes[p];
                double orig = dIn[k].V[i];
                dIn[k].V[i] = orig + h; double lp = Dot(reference(dIn).V, wd);
                dIn[k].V[i] = orig - h; double lm = Dot(reference(dIn).V, wd);
                dIn[k].V[i] = orig;
                num[p] = (lp - lm) / (2 * h); ana[p] = ga[i];   // d/dx_i sum(y * w), numerically and by autograd
            }
            var g = Compare($"{name} d(input {k})", ana, num, gradTol, probes);
            gradMax = Math.Max(gradMax, g.MaxDiff);
            if (!g.Ok) failures.Add(g.Message);
        }
        return new(name, fwd.MaxDiff, fwdTol, gradMax, gradTol, failures);

        OpCheckResult Failed(string message) => new(name, double.NaN, fwdTol, double.NaN, gradTol, [message]);
    }

    /// <summary>|got - want| &lt;= tol * max(1, max |want|) elementwise (NaN matches NaN, equal infinities match);
    /// on failure the message gives the max abs diff and the first five mismatches, at their indices
    /// <paramref name="at"/>[i] when given.</summary>
    public static Closeness Compare(string what, double[] got, double[] want, double tol, int[]? at = null)
    {
        if (got.Length != want.Length)
            return new(what, false, double.NaN, tol, $"{what}: {got.Length} values vs {want.Length} expected");
        double scale = Math.Max(1, want.Select(Math.Abs).DefaultIfEmpty(0).Max());
        double maxDiff = 0; var bad = new StringBuilder(); int nBad = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double d = Math.Abs(got[i] - want[i]);
            bool ok = d <= tol * scale || (double.IsNaN(got[i]) && double.IsNaN(want[i])) || got[i].Equals(want[i]);
            if (!double.IsNaN(d)) maxDiff = Math.Max(maxDiff, d);
            if (!ok && nBad++ < 5)
                bad.Append(CultureInfo.InvariantCulture, $"\n  [{at?[i] ?? i}] got {got[i]:G9} want {want[i]:G9}");
        }
        return nBad > 0
            ? new(what, false, maxDiff, tol * scale,
                  Invariant($"TENSOR MISMATCH {what}: maxdiff {maxDiff:G4} (tolerance {tol * scale:G4}), ")
                  + Invariant($"{nBad} of {got.Length} off:{bad}"))
            : new(what, true, maxDiff, tol * scale, Invariant($"TENSOR OK {what}: maxdiff {maxDiff:G4}"));
    }

    /// <summary><see cref="Compare(string, double[], double[], double, int[])"/> on float values.</summary>
    public static Closeness Compare(string what, float[] got, float[] want, double tol) =>
        Compare(what, got.Select(v => (double)v).ToArray(), want.Select(v => (double)v).ToArray(), tol);

    private static int[] Probes(int n, int max, Rng rng)
    {
        if (n <= max) return Enumerable.Range(0, n).ToArray();
        var set = new SortedSet<int> { 0, n - 1 };
        while (set.Count < max) set.Add(rng.NextInt(n));
        return set.ToArray();
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
