using System.Globalization;
using System.Text;
using Pictor.Engine;

namespace Pictor.TestSupport;

/// <summary>
/// Checks one differentiable op against its oracles: (1) its forward against the double-precision reference kernel,
/// (2) its analytic gradient (backward of sum(y * w) for fixed random w) against central finite differences of the
/// reference kernel in double precision. On failure the message prints the max abs difference and the first
/// mismatches ("TENSOR OK maxdiff" style, as llm.c does).
/// </summary>
public static class OpCheck
{
    public static void Check(string name, Tensor[] inputs, Func<Tensor[], Tensor> fast, Func<D[], D> reference,
                             double fwdTol = 1e-5, double gradTol = 1e-3, int maxProbe = 40, double h = 1e-6)
    {
        foreach (var t in inputs) t.Grad = null;
        var y = fast(inputs);
        var dIn = inputs.Select(D.Of).ToArray();
        var yr = reference(dIn);
        if (!y.Shape.SequenceEqual(yr.S))
            throw new Xunit.Sdk.XunitException($"{name}: forward shape {Shape.Format(y.Shape)}, reference {Shape.Format(yr.S)}");
        AssertClose($"{name} forward", y.ToArray().Select(v => (double)v).ToArray(), yr.V, fwdTol);

        var rng = new Rng(1234);
        var w = rng.Randn(y.Shape);
        var wd = w.ToArray().Select(v => (double)v).ToArray();
        if (!inputs.Any(t => t.RequiresGrad)) return;
        Ops.Sum(Ops.Mul(y, w)).Backward();

        for (int k = 0; k < inputs.Length; k++)
        {
            if (!inputs[k].RequiresGrad) continue;
            var grad = inputs[k].Grad ?? throw new Xunit.Sdk.XunitException($"{name}: input {k} has no gradient after backward");
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
                num[p] = (lp - lm) / (2 * h); ana[p] = ga[i];
            }
            AssertClose($"{name} d(input {k})", ana, num, gradTol, probes);
        }
    }

    private static int[] Probes(int n, int max, Rng rng)
    {
        if (n <= max) return Enumerable.Range(0, n).ToArray();
        var set = new SortedSet<int> { 0, n - 1 };
        while (set.Count < max) set.Add(rng.NextInt(n));
        return set.ToArray();
    }

    private static double Dot(double[] a, double[] b) { double s = 0; for (int i = 0; i < a.Length; i++) s += a[i] * b[i]; return s; }

    /// <summary>|got - want| &lt;= tol * max(1, max |want|) elementwise; prints max abs diff and the first mismatches.</summary>
    public static void AssertClose(string what, double[] got, double[] want, double tol, int[]? at = null)
    {
        if (got.Length != want.Length) throw new Xunit.Sdk.XunitException($"{what}: {got.Length} values vs {want.Length} expected");
        double scale = Math.Max(1, want.Select(Math.Abs).DefaultIfEmpty(0).Max());
        double maxDiff = 0; var bad = new StringBuilder(); int nBad = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double d = Math.Abs(got[i] - want[i]);
            bool ok = d <= tol * scale || (double.IsNaN(got[i]) && double.IsNaN(want[i])) || got[i].Equals(want[i]);
            if (!double.IsNaN(d)) maxDiff = Math.Max(maxDiff, d);
            if (!ok && nBad++ < 5) bad.Append(CultureInfo.InvariantCulture, $"\n  [{at?[i] ?? i}] got {got[i]:G9} want {want[i]:G9}");
        }
        if (nBad > 0)
            throw new Xunit.Sdk.XunitException($"TENSOR MISMATCH {what}: maxdiff {maxDiff:G4} (tolerance {tol * scale:G4}), {nBad} of {got.Length} off:{bad}");
    }

    public static void AssertClose(string what, float[] got, float[] want, double tol) =>
        AssertClose(what, got.Select(v => (double)v).ToArray(), want.Select(v => (double)v).ToArray(), tol);

    /// <summary>Central differences of <paramref name="loss"/> (run without autograd) in the chosen entries of parameter
    /// <paramref name="p"/> against its autograd gradient <paramref name="grad"/>: each entry must have a nonzero gradient
    /// and agree within 2e-3 + 2% of it. Float32 with step 1e-2, for small modules.</summary>
    public static void AssertFiniteDifferences(Tensor p, float[] grad, Func<float> loss, IEnumerable<int> entries, float step = 1e-2f)
    {
        foreach (int i in entries)
        {
            if (grad[i] == 0) throw new Xunit.Sdk.XunitException($"entry {i}: autograd gives a zero gradient; it should be on the path");
            float keep = p.Span[i];
            p.Span[i] = keep + step; float up = loss();
            p.Span[i] = keep - step; float down = loss();
            p.Span[i] = keep;
            float numeric = (up - down) / (2 * step);
            if (MathF.Abs(numeric - grad[i]) > 2e-3f + 2e-2f * MathF.Abs(grad[i]))
                throw new Xunit.Sdk.XunitException($"entry {i}: numeric {numeric} vs autograd {grad[i]}");
        }
    }

    /// <summary>A leaf tensor of normal values (seeded), optionally requiring grad.</summary>
    public static Tensor Randn(ulong seed, bool grad, params int[] shape)
    {
        var t = new Rng(seed).Randn(shape);
        t.RequiresGrad = grad;
        return t;
    }
}
