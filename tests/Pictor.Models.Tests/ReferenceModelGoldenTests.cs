using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models;
using Pictor.Models.Transformer;
using Pictor.Models.Unet;
using Pictor.Nn;
using Pictor.Nn.Optim;
using Pictor.TestSupport;
using Xunit.Abstractions;

namespace Pictor.Models.Tests;

/// <summary>
/// UNet-S and AR-S against PyTorch 1.13 in float64 (tests/fixtures/models_golden.safetensors, made by
/// tools/reference/make_model_goldens.py), both built with HashInit: the loss, every parameter's gradient (its L2 norm
/// and 32 sampled entries) and the weights after one AdamW step must agree to a relative error of 1e-4.
/// One exception, by mathematics: a parameter whose true gradient is zero (attention key biases: adding q.b to every
/// score of a row cancels in the softmax) has float32 rounding noise for a gradient, and Adam turns any nonzero noise
/// into a step of up to lr per entry. Such parameters (PyTorch gradient norm below 1e-6 of the largest) are checked
/// for an absolute gradient error below 1e-4 of the largest norm and for an update no larger than Adam's bound.
/// </summary>
public class ReferenceModelGoldenTests(ITestOutputHelper output)
{
    private const double Tol = 1e-4;
    private static readonly SafeTensorsFile G = Fixtures.Load("models_golden.safetensors");

    [Fact]
    public void UnetS_loss_gradients_and_adamw_step_match_pytorch()
    {
        var model = new UnetModel(UnetConfig.S, new Rng(0));
        Assert.Equal(8_251_139, model.ParameterCount());
        HashInit.Apply(model);
        var x = G.GetTensor("unet.x"); var ctx = G.GetTensor("unet.ctx"); var eps = G.GetTensor("unet.eps");
        var t = G.ReadInt32("unet.t").Select(v => (float)v).ToArray();
        Check("unet", model, () => Ops.MseLoss(model.Forward(x, t, ctx), eps));
    }

    [Fact]
    public void ArS_loss_gradients_and_adamw_step_match_pytorch()
    {
        var model = new ArTransformer(ArConfig.S, new Rng(0));
        Assert.Equal(8_698_368, model.ParameterCount());
        HashInit.Apply(model);
        var ids = G.GetIntTensor("ars.ids");
        Check("ars", model, () => model.Loss(ids));
    }

    private void Check(string prefix, Module model, Func<Tensor> lossFn)
    {
        var loss = lossFn();
        double want = G.ReadFloat32($"{prefix}.loss")[0];
        output.WriteLine($"{prefix}: loss {loss.Item():G9} vs PyTorch {want:G9}");
        Assert.True(Math.Abs(loss.Item() - want) <= Tol * Math.Abs(want), $"{prefix} loss {loss.Item()} vs PyTorch {want}");
        loss.Backward();

        var opt = new AdamW(model.NamedParameters(), new AdamWConfig(LearningRate: 1e-3f, WeightDecay: 0.01f));
        var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Param.Grad!.ToArray());
        opt.StepOnce();

        double worstGrad = 0, worstAfter = 0; string worstName = "";
        int checkedParams = 0;
        var zeroGrad = new List<string>();
        double maxNorm = model.NamedParameters().Max(np => (double)G.ReadFloat32($"{prefix}.p.{np.Name}.grad_norm")[0]);
        foreach (var (name, p) in model.NamedParameters())
        {
            var idx = G.ReadInt32($"{prefix}.p.{name}.idx");
            var g = grads[name];
            double gn = Math.Sqrt(g.Sum(v => (double)v * v));
            double gnWant = G.ReadFloat32($"{prefix}.p.{name}.grad_norm")[0];
            double relNorm = Math.Abs(gn - gnWant) / Math.Max(gnWant, 1e-30);
            double relSample = RelErr(idx.Select(i => (double)g[i]).ToArray(), G.ReadFloat32($"{prefix}.p.{name}.grad"));
            var w = p.ToArray();
            if (gnWant < 1e-6 * maxNorm)
            {
                zeroGrad.Add(name);
                Assert.True(gn <= 1e-4 * maxNorm, $"{prefix} '{name}' should have a zero gradient, norm is {gn:G3} (largest parameter gradient norm {maxNorm:G3})");
                var afterWant = G.ReadFloat32($"{prefix}.p.{name}.after");
                for (int i = 0; i < idx.Length; i++)
                    // Each implementation moves an entry by at most lr (1e-3) on the first step, possibly in opposite directions.
                    Assert.True(Math.Abs(w[idx[i]] - afterWant[i]) <= 1.01 * 1e-3 * 2, $"{prefix} '{name}' moved more than an AdamW step can");
                checkedParams++;
                continue;
            }
            double relAfter = RelErr(idx.Select(i => (double)w[i]).ToArray(), G.ReadFloat32($"{prefix}.p.{name}.after"));
            double rg = Math.Max(relNorm, relSample);
            if (rg > worstGrad) { worstGrad = rg; worstName = name; }
            worstAfter = Math.Max(worstAfter, relAfter);
            Assert.True(rg <= Tol, $"{prefix} gradient of '{name}': relative error {rg:G3} (norm {gn:G6} vs PyTorch {gnWant:G6})");
            Assert.True(relAfter <= Tol, $"{prefix} '{name}' after AdamW: relative error {relAfter:G3}");
            checkedParams++;
        }
        output.WriteLine($"{prefix}: zero-gradient parameters checked by bound: {string.Join(", ", zeroGrad)}");
        output.WriteLine($"{prefix}: {checkedParams} parameters; worst gradient relative error {worstGrad:G3} ({worstName}); worst after-step {worstAfter:G3}");
        Assert.Equal(G.Tensors.Count(ti => ti.Name.StartsWith($"{prefix}.p.", StringComparison.Ordinal) && ti.Name.EndsWith(".idx", StringComparison.Ordinal)), checkedParams);
    }

    private static double RelErr(double[] got, float[] want)
    {
        double d = 0, n = 0;
        for (int i = 0; i < got.Length; i++) { d += (got[i] - want[i]) * (got[i] - want[i]); n += (double)want[i] * want[i]; }
        return n == 0 ? Math.Sqrt(d) : Math.Sqrt(d / n);
    }
}
