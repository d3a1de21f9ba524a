using Pictor.Engine;
using Pictor.Engine.Reference;

namespace Pictor.TestSupport;

/// <summary>
/// The tests' face of <see cref="OpOracle"/> (src/Pictor.Engine/Reference): the same checks, with a failure thrown as
/// a test failure whose message is the oracle's (max abs difference and the first mismatches, as llm.c prints them).
/// </summary>
public static class OpCheck
{
    /// <summary>Forward against the reference kernel, gradients against its central differences
    /// (<see cref="OpOracle.Check"/>); throws the first failure.</summary>
    public static void Check(string name, Tensor[] inputs, Func<Tensor[], Tensor> fast, Func<D[], D> reference,
                             double fwdTol = 1e-5, double gradTol = 1e-3, int maxProbe = 40, double h = 1e-6)
    {
        var r = OpOracle.Check(name, inputs, fast, reference, fwdTol, gradTol, maxProbe, h);
        if (!r.Ok) throw new Xunit.Sdk.XunitException(r.Failures[0]);
    }

    /// <summary>|got - want| &lt;= tol * max(1, max |want|) elementwise (<see cref="OpOracle.Compare"/>); throws with
    /// the max abs diff and the first mismatches.</summary>
    public static void AssertClose(string what, double[] got, double[] want, double tol, int[]? at = null)
    {
        var c = OpOracle.Compare(what, got, want, tol, at);
        if (!c.Ok) throw new Xunit.Sdk.XunitException(c.Message);
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
