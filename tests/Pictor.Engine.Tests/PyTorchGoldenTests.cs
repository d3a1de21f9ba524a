using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.TestSupport;

namespace Pictor.Engine.Tests;

/// <summary>
/// Forward and gradients against PyTorch 1.13 (tests/fixtures/ops_golden.safetensors, made by
/// tools/reference/make_op_goldens.py in float64). Each case: y = op(inputs), gradients of sum(y * w).
/// </summary>
public class PyTorchGoldenTests
{
    private static readonly SafeTensorsFile G = Fixtures.Load("ops_golden.safetensors");

    private static Tensor In(string c, string n) { var t = G.GetTensor($"{c}.{n}"); t.RequiresGrad = true; return t; }
    private static IntTensor Ints(string c, string n) => G.GetIntTensor($"{c}.{n}");

    private static void Golden(string c, string[] inputs, Func<Dictionary<string, Tensor>, Tensor> op, double tol = 1e-5)
    {
        var ts = inputs.ToDictionary(n => n, n => In(c, n));
        var y = op(ts);
        OpCheck.AssertClose($"{c} forward vs PyTorch", y.ToArray(), G.ReadFloat32($"{c}.y"), tol);
        Ops.Sum(Ops.Mul(y, G.GetTensor($"{c}.proj"))).Backward();
        foreach (var n in inputs)
            OpCheck.AssertClose($"{c} grad {n} vs PyTorch", ts[n].Grad!.ToArray(), G.ReadFloat32($"{c}.grad.{n}"), tol);
    }

    [Fact] public void Conv2d_stride2_pad1_groups2() => Golden("conv2d_s2_p1_g2", ["x", "w", "b"], t => Ops.Conv2d(t["x"], t["w"], t["b"], 2, 1, 2));
    [Fact] public void Conv2d_1x1() => Golden("conv2d_1x1", ["x", "w", "b"], t => Ops.Conv2d(t["x"], t["w"], t["b"]));
    [Fact] public void Linear() => Golden("linear", ["x", "w", "b"], t => Ops.Linear(t["x"], t["w"], t["b"]));
    [Fact] public void MatMul_batched() => Golden("matmul_batched", ["a", "b"], t => Ops.MatMul(t["a"], t["b"]));
    [Fact] public void GroupNorm() => Golden("groupnorm", ["x", "g", "b"], t => Ops.GroupNorm(t["x"], 4, t["g"], t["b"], 1e-5f), 2e-5);
    [Fact] public void LayerNorm() => Golden("layernorm", ["x", "g", "b"], t => Ops.LayerNorm(t["x"], t["g"], t["b"], 1e-5f), 2e-5);
    [Fact] public void Softmax() => Golden("softmax", ["x"], t => Ops.Softmax(t["x"]));
    [Fact] public void LogSoftmax() => Golden("log_softmax", ["x"], t => Ops.LogSoftmax(t["x"]));
    [Fact] public void CrossEntropy_ignore_index_and_label_smoothing() =>
        Golden("cross_entropy", ["x"], t => Ops.CrossEntropy(t["x"], Ints("cross_entropy", "t"), -100, 0.1f));
    [Fact] public void Attention_causal_with_key_padding() =>
        Golden("attention_causal_pad", ["q", "k", "v"], t => Ops.ScaledDotProductAttention(t["q"], t["k"], t["v"], causal: true,
            keyPaddingMask: Ints("attention_causal_pad", "pad").Data.Select(v => v != 0).ToArray()));
    [Fact] public void Attention_cross() => Golden("attention_cross", ["q", "k", "v"], t => Ops.ScaledDotProductAttention(t["q"], t["k"], t["v"]));
    [Fact] public void Gelu() => Golden("gelu", ["x"], t => Ops.Gelu(t["x"]));
    [Fact] public void Gelu_tanh() => Golden("gelu_tanh", ["x"], t => Ops.Gelu(t["x"], tanhApproximation: true));
    [Fact] public void Silu() => Golden("silu", ["x"], t => Ops.Silu(t["x"]));
    [Fact] public void Upsample_nearest() => Golden("upsample", ["x"], t => Ops.UpsampleNearest(t["x"], 2));
    [Fact] public void AvgPool() => Golden("avgpool", ["x"], t => Ops.AvgPool2d(t["x"], 2));
    [Fact] public void Embedding() => Golden("embedding", ["w"], t => Ops.Embedding(Ints("embedding", "ids"), t["w"]));
    [Fact] public void Gather() => Golden("gather", ["x"], t => Ops.Gather(t["x"], 2, Ints("gather", "i")));
    [Fact] public void Mse() => Golden("mse", ["a", "b"], t => Ops.MseLoss(t["a"], t["b"]));
    [Fact] public void Spectral_norm_with_three_power_steps() => Golden("spectral_norm", ["w"], t =>
        Ops.SpectralNorm(t["w"], G.GetTensor("spectral_norm.u0"), G.GetTensor("spectral_norm.v0"), 3));
    [Fact] public void Leaky_relu() => Golden("leaky_relu", ["x"], t => Ops.LeakyRelu(t["x"], 0.1f));
    [Fact] public void Sum_mean_max() => Golden("sum_mean_max", ["x"], t => Ops.Add(Ops.Add(Ops.Sum(t["x"], [1]), Ops.Mean(t["x"], [1])), Ops.Max(t["x"], 1)));

    [Fact] public void Add_broadcast() => Golden("add_broadcast", ["a", "b"], t => Ops.Add(t["a"], t["b"]));
    [Fact] public void Sub_broadcast() => Golden("sub_broadcast", ["a", "b"], t => Ops.Sub(t["a"], t["b"]));
    [Fact] public void Mul_broadcast() => Golden("mul_broadcast", ["a", "b"], t => Ops.Mul(t["a"], t["b"]));
    [Fact] public void Div_broadcast() => Golden("div_broadcast", ["a", "b"], t => Ops.Div(t["a"], t["b"]));
    [Fact] public void Exp_log_sqrt_square_tanh_sigmoid_relu() => Golden("unary_chain", ["x"], t =>
    {
        var x = t["x"];
        var y = Ops.Add(Ops.Exp(Ops.Neg(x)), Ops.Log(x));
        y = Ops.Add(y, Ops.Sqrt(x)); y = Ops.Add(y, Ops.Square(x)); y = Ops.Add(y, Ops.Tanh(x)); y = Ops.Add(y, Ops.Sigmoid(x));
        return Ops.Add(y, Ops.Relu(Ops.AddScalar(x, -1f)));
    });
    [Fact] public void Concat_and_narrow() => Golden("concat_narrow", ["a", "b"], t => Ops.Narrow(Ops.Concat([t["a"], t["b"]], 1), 2, 1, 2));
    [Fact] public void Permute_and_expand() => Golden("permute_expand", ["x"], t => Ops.Contiguous(Ops.Permute(Ops.Expand(t["x"], 2, 3, 5), 2, 0, 1)));
    [Fact] public void Dropout_with_a_given_mask() => Golden("dropout_mask", ["x"], t =>
        Ops.Mul(t["x"], Tensor.FromArray(Ints("dropout_mask", "m").Data.Select(v => v / 0.75f).ToArray(), 4, 6)));
}
