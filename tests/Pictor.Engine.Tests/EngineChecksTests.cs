using System.Diagnostics;
using System.Reflection;
using Pictor.Engine.Diagnostics;
using Pictor.Engine.Kernels;
using Pictor.TestSupport;
using Xunit.Abstractions;

namespace Pictor.Engine.Tests;

/// <summary>The engine half of 'pictor doctor' (EngineChecks, OpCases, OpOracle): it passes here, and it reports a
/// broken op, gradient or kernel as a failed row with the max difference instead of passing it or throwing.</summary>
[Collection("BufferPool")]   // reads Parallelism.Threads and the convolution switches, which other tests set
public class EngineChecksTests(ITestOutputHelper output)
{
    [Fact]
    public void Every_op_check_passes_on_this_machine()
    {
        EngineChecks.OpChecks(OpCases.All.Take(3));   // JIT the oracle first, so the time below is the checks'
        var sw = Stopwatch.StartNew();
        var rows = EngineChecks.OpChecks();
        output.WriteLine($"{rows.Count} op checks in {sw.Elapsed.TotalSeconds:F2} s on {Parallelism.Threads} threads");
        foreach (var r in rows)
            output.WriteLine($"{r.Name,-42} {r.Duration!.Value.TotalMilliseconds,6:F1} ms {r.Detail}");
        Assert.Equal(OpCases.All.Count, rows.Count);
        Assert.All(rows, r => Assert.Equal(CheckSection.Ops, r.Section));
        var failed = rows.Where(r => !r.Ok).Select(r => $"{r.Name}: {r.Detail}").ToList();
        Assert.True(failed.Count == 0, string.Join("\n", failed));
    }

    [Fact]
    public void Every_gemm_backend_matches_the_double_product_and_the_facts_read()
    {
        var gemm = EngineChecks.GemmChecks();
        Assert.Equal(OpenBlasInfo.Available ? 3 : 2, gemm.Count);
        Assert.All(gemm, r => Assert.True(r.Ok, $"{r.Name}: {r.Detail}"));
        Assert.Contains("128x128x128 maxdiff", gemm[0].Detail);
        var facts = EngineChecks.Facts();
        foreach (var r in facts) output.WriteLine($"{r.Name,-14} {r.Detail}");
        Assert.All(facts, r => Assert.True(r.Ok, $"{r.Name}: {r.Detail}"));
        Assert.Equal(["runtime", "os", "simd", "gemm backend", "openblas", "threads", "conv kernels"],
                     facts.Select(r => r.Name));
        Assert.Contains($"{Gemm.Backend}", facts.Single(r => r.Name == "gemm backend").Detail);
        Assert.StartsWith($"{Parallelism.Threads} ", facts.Single(r => r.Name == "threads").Detail);
    }

    [Fact]
    public void A_wrong_reference_fails_with_the_max_diff_and_the_first_mismatches()
    {
        var x = OpCheck.Randn(7, true, 3, 17);
        static D Wrong(D[] d) => RefOps.Map(d[0], v => 1.01 * Math.Exp(v));
        var r = OpOracle.Check("exp vs 1.01 exp", [x], t => Ops.Exp(t[0]), Wrong);
        Assert.False(r.Ok);
        double want = x.ToArray().Max(v => 0.01 * Math.Exp(v));   // the largest |exp - 1.01 exp|
        Assert.InRange(r.ForwardMaxDiff, 0.99 * want, 1.01 * want);
        Assert.True(double.IsNaN(r.GradientMaxDiff));            // the forward failed: gradients not checked
        Assert.StartsWith("TENSOR MISMATCH exp vs 1.01 exp forward: maxdiff", r.Failures[0]);
        Assert.Contains("\n  [0] got", r.Failures[0]);

        var row = EngineChecks.OpChecks([new OpCase("exp vs 1.01 exp", [nameof(Ops.Exp)], () =>
            OpOracle.Check("exp vs 1.01 exp", [x], t => Ops.Exp(t[0]), Wrong))]).Single();
        Assert.False(row.Ok);
        Assert.Contains("maxdiff", row.Detail);

        // The tests' wrapper throws the same message.
        var e = Assert.Throws<Xunit.Sdk.XunitException>(() =>
            OpCheck.Check("exp vs 1.01 exp", [x], t => Ops.Exp(t[0]), Wrong));
        Assert.Equal(r.Failures[0], e.Message);
    }

    [Fact]
    public void A_wrong_gradient_fails_while_the_forward_passes()
    {
        // y = x * x computed as x * stop_gradient(x): right values, half the gradient (x instead of 2x).
        var x = OpCheck.Randn(9, true, 4, 5);
        var r = OpOracle.Check("square, detached", [x], t => Ops.Mul(t[0], t[0].Detach()),
                               d => RefOps.Map(d[0], v => v * v));
        Assert.False(r.Ok);
        Assert.True(r.ForwardMaxDiff < 1e-6, $"forward maxdiff {r.ForwardMaxDiff}");
        Assert.True(r.GradientMaxDiff > 0.1, $"gradient maxdiff {r.GradientMaxDiff}");
        Assert.StartsWith("TENSOR MISMATCH square, detached d(input 0): maxdiff", Assert.Single(r.Failures));
    }

    [Fact]
    public void An_op_that_throws_is_a_failed_row_of_one_line()
    {
        var row = EngineChecks.RunCase(new OpCase("conv2d bad shapes", [nameof(Ops.Conv2d)], () =>
            OpOracle.Check("conv2d bad shapes",
                [OpCheck.Randn(1, true, 1, 3, 4, 4), OpCheck.Randn(2, true, 2, 4, 3, 3)],
                t => Ops.Conv2d(t[0], t[1]), d => RefOps.Conv2d(d[0], d[1], null, 1, 0, 1))));   // 3 vs 4 channels
        Assert.False(row.Ok);
        Assert.Equal("conv2d bad shapes", row.Name);
        Assert.StartsWith("ArgumentException: conv2d: weight", row.Detail);
        Assert.DoesNotContain('\n', row.Detail);
    }

    [Fact]
    public void Every_public_op_is_in_the_case_list_or_says_why_not()
    {
        var ops = typeof(Ops).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.ReturnType == typeof(Tensor) || m.ReturnType == typeof(Tensor[]))
            .Select(m => m.Name).ToHashSet();
        var covered = OpCases.All.SelectMany(c => c.Covers).ToHashSet();
        Assert.Empty(ops.Except(covered).Except(OpCases.NotChecked.Keys));
        Assert.Empty(covered.Intersect(OpCases.NotChecked.Keys));
        Assert.Empty(covered.Except(ops));                           // no stale names
        Assert.Equal(OpCases.All.Count, OpCases.All.Select(c => c.Name).Distinct().Count());
    }

    [Fact]
    public void The_convolution_cases_reach_every_kernel_path_this_machine_has()
    {
        var convs = OpCases.All.Where(c => c.Covers.Contains(nameof(Ops.Conv2d)));
        var names = EngineChecks.OpChecks(convs).Select(r => r.Name).ToList();
        output.WriteLine(string.Join("\n", names));
        Assert.Contains(names, n => n.EndsWith("[direct]", StringComparison.Ordinal));
        if (Gemm.Backend == GemmBackend.Reference) return;   // the oracle backend keeps every convolution on im2col
        Assert.Contains(names, n => n.EndsWith("[implicit GEMM]", StringComparison.Ordinal));
        if (Parallelism.Threads > 1)
            Assert.Contains(names, n => n.EndsWith("[im2col + GEMM]", StringComparison.Ordinal));
        if (Winograd.Available) Assert.Contains(names, n => n.EndsWith("[winograd]", StringComparison.Ordinal));
    }
}
