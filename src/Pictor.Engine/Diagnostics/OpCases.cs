using Pictor.Engine.Kernels;
using Pictor.Engine.Reference;

namespace Pictor.Engine.Diagnostics;

// Dimension legend: B batch, C channels, H/W height and width, T tokens, Dh head width.

/// <summary>One small check of one or more ops against <see cref="RefOps"/> and finite differences.</summary>
/// <param name="Name">What is checked ("conv2d 3x3 s2"); the result's name may add the kernel path taken.</param>
/// <param name="Covers">The <see cref="Ops"/> methods it exercises (nameof), for the every-op coverage test.</param>
/// <param name="Run">Builds seeded inputs and runs <see cref="OpOracle.Check"/>.</param>
public sealed record OpCase(string Name, IReadOnlyList<string> Covers, Func<OpCheckResult> Run);

/// <summary>
/// The list of op checks 'pictor doctor' runs, in one place: one small case per differentiable op of
/// <see cref="Ops"/> (and one per convolution kernel path), with the tolerances tests/Pictor.Engine.Tests/
/// OpGradientTests.cs uses for the same op. Inputs are tiny (at most a few hundred values) and seeded, so the whole
/// list takes well under a second once JIT-compiled; OpGradientTests keeps the wider sweeps (more shapes, strides,
/// groups, masks). An op that is left out is listed in <see cref="NotChecked"/> with the reason.
/// </summary>
public static class OpCases
{
    /// <summary>Public <see cref="Ops"/> methods deliberately not in <see cref="All"/>, with where they are checked.
    /// </summary>
    public static IReadOnlyDictionary<string, string> NotChecked { get; } = new Dictionary<string, string>
    {
        [nameof(Ops.Dropout)] = "a random mask, no deterministic reference; "
                                + "OpGradientTests.Dropout_scales_survivors_and_is_reproducible checks it",
    };

    /// <summary>Every case, in table order.</summary>
    public static IReadOnlyList<OpCase> All { get; } = Build();

    private static List<OpCase> Build()
    {
        var cases = new List<OpCase>();
        void Add(string name, string[] covers, Func<OpCheckResult> run) => cases.Add(new(name, covers, run));
        void Unary(string name, string op, Func<Tensor, Tensor> fast, Func<double, double> reference,
                   float shift = 0) => Add(name, [op], () =>
            {
                var x = Randn(7, true, 3, 17);   // (3, 17): every vector remainder of a 16-wide loop
                if (shift != 0) x = Map(x, v => MathF.Abs(v) + shift);   // keeps log / sqrt inside their domain
                return OpOracle.Check(name, [x], t => fast(t[0]), d => RefOps.Map(d[0], reference), fwdTol: 2e-6);
            });
        void Binary(string name, string op, Func<Tensor, Tensor, Tensor> fast, Func<double, double, double> f) =>
            Add(name + " broadcast", [op], () =>
            {
                var a = Randn(1, true, 2, 3, 4);                                       // (2, 3, 4)
                var b = op == nameof(Ops.Div) ? Map(Randn(2, true, 3, 1), v => MathF.Abs(v) + 0.5f)
                                              : Randn(2, true, 3, 1);                    // (3, 1)
                return OpOracle.Check(name, [a, b], t => fast(t[0], t[1]), d => RefOps.Binary(d[0], d[1], f));
            });

        // ---------------------------------------------------------------------------------- elementwise
        Binary("add", nameof(Ops.Add), Ops.Add, (x, y) => x + y);
        Binary("sub", nameof(Ops.Sub), Ops.Sub, (x, y) => x - y);
        Binary("mul", nameof(Ops.Mul), Ops.Mul, (x, y) => x * y);
        Binary("div", nameof(Ops.Div), Ops.Div, (x, y) => x / y);
        Add("add in place", [nameof(Ops.AddInPlace)], () => OpOracle.Check("add in place",
            [Randn(3, true, 2, 3, 4, 5), Randn(4, true, 2, 3, 1, 1)],
            t => Ops.AddInPlace(Ops.MulScalar(t[0], 1f), t[1]),     // onto a fresh tensor: the leaf stays unchanged
            d => RefOps.Binary(d[0], d[1], (a, b) => a + b)));
        Unary("exp", nameof(Ops.Exp), Ops.Exp, Math.Exp);
        Unary("log", nameof(Ops.Log), Ops.Log, Math.Log, shift: 0.3f);
        Unary("sqrt", nameof(Ops.Sqrt), Ops.Sqrt, Math.Sqrt, shift: 0.3f);
        Unary("square", nameof(Ops.Square), Ops.Square, v => v * v);
        Unary("tanh", nameof(Ops.Tanh), Ops.Tanh, Math.Tanh);
        Unary("sigmoid", nameof(Ops.Sigmoid), Ops.Sigmoid, v => 1 / (1 + Math.Exp(-v)));
        Add("relu", [nameof(Ops.Relu)], () =>
        {
            var x = Map(Randn(7, true, 3, 17), v => MathF.Abs(v) < 0.05f ? v + 0.2f : v);   // no kink within h of 0
            return OpOracle.Check("relu", [x], t => Ops.Relu(t[0]), d => RefOps.Map(d[0], v => Math.Max(0, v)), 2e-6);
        });
        Add("leaky relu", [nameof(Ops.LeakyRelu)], () =>
        {
            var x = Map(Randn(8, true, 3, 17), v => MathF.Abs(v) < 0.05f ? v + 0.2f : v);   // no kink within h of 0
            return OpOracle.Check("leaky relu", [x], t => Ops.LeakyRelu(t[0], 0.1f),
                d => RefOps.Map(d[0], v => v > 0 ? v : 0.1 * v), 2e-6);
        });
        Unary("silu", nameof(Ops.Silu), Ops.Silu, RefOps.Silu);
        Unary("gelu", nameof(Ops.Gelu), t => Ops.Gelu(t), RefOps.Gelu);
        Unary("gelu tanh", nameof(Ops.Gelu), t => Ops.Gelu(t, tanhApproximation: true), RefOps.GeluTanh);
        Unary("neg", nameof(Ops.Neg), Ops.Neg, v => -v);
        Unary("mul scalar", nameof(Ops.MulScalar), t => Ops.MulScalar(t, 2.5f), v => 2.5 * v);
        Unary("add scalar", nameof(Ops.AddScalar), t => Ops.AddScalar(t, -0.75f), v => v - 0.75);

        // ---------------------------------------------------------------------------------- reductions
        Add("sum all", [nameof(Ops.Sum)], () => OpOracle.Check("sum all", [Randn(11, true, 2, 3, 5)],
            t => Ops.Sum(t[0]), d => RefOps.Sum(d[0], [0, 1, 2])));
        Add("sum axes 0,2", [nameof(Ops.Sum)], () => OpOracle.Check("sum axes 0,2", [Randn(11, true, 2, 3, 5)],
            t => Ops.Sum(t[0], [0, 2]), d => RefOps.Sum(d[0], [0, 2])));
        Add("mean", [nameof(Ops.Mean)], () => OpOracle.Check("mean", [Randn(11, true, 2, 3, 5)],
            t => Ops.Add(Ops.Mean(t[0], [-1]), Ops.Mean(t[0])),                          // (2, 3) + ()
            d => RefOps.Map(RefOps.Sum(d[0], [2]), v => v / 5 + d[0].V.Sum() / 30)));
        Add("max axis 1", [nameof(Ops.Max)], () => OpOracle.Check("max axis 1", [Randn(11, true, 2, 3, 5)],
            t => Ops.Max(t[0], 1), d => RefOps.Max(d[0], 1)));

        // ---------------------------------------------------------------------------------- products
        Add("matmul shared B", [nameof(Ops.MatMul)], () => OpOracle.Check("matmul shared B",
            [Randn(21, true, 2, 3, 4), Randn(22, true, 4, 5)],
            t => Ops.MatMul(t[0], t[1]), d => RefOps.MatMul(d[0], d[1])));               // (2, 3, 4) x (4, 5)
        Add("matmul batched", [nameof(Ops.MatMul)], () => OpOracle.Check("matmul batched",
            [Randn(21, true, 2, 3, 4), Randn(23, true, 2, 4, 5)],
            t => Ops.MatMul(t[0], t[1]), d => RefOps.MatMul(d[0], d[1])));               // (2, 3, 4) x (2, 4, 5)
        Add("matmul transposed B", [nameof(Ops.MatMul), nameof(Ops.Transpose)], () => OpOracle.Check(
            "matmul transposed B", [Randn(21, true, 2, 3, 4), Randn(26, true, 5, 4)],
            t => Ops.MatMul(t[0], Ops.Transpose(t[1], 0, 1)),                           // a view: GEMM transB
            d => RefOps.MatMul(d[0], Permute(d[1], [1, 0]))));
        Add("linear", [nameof(Ops.Linear)], () => OpOracle.Check("linear",
            [Randn(21, true, 2, 3, 4), Randn(24, true, 6, 4), Randn(25, true, 6)],
            t => Ops.Linear(t[0], t[1], t[2]), d => RefOps.Linear(d[0], d[1], d[2])));   // (2, 3, 4) -> (2, 3, 6)

        // ---------------------------------------------------------------------------------- convolution
        // One case per kernel path (Ops.Conv2dPath names the one taken): a batch of at least one image per thread
        // (wide: batch 0 here) takes the implicit GEMM (Winograd for 3x3 stride 1 at width 8), one image im2col + GEMM.
        const int wide = 0;
        Conv(cases, "conv2d 3x3 s1 (winograd)", wide, 8, 8, k: 3, stride: 1, pad: 1, groups: 1);
        Conv(cases, "conv2d 3x3 s1 (implicit GEMM)", wide, 6, 6, k: 3, stride: 1, pad: 1, groups: 1);
        Conv(cases, "conv2d 3x3 s2 (implicit GEMM)", wide, 7, 6, k: 3, stride: 2, pad: 1, groups: 1);
        Conv(cases, "conv2d 3x3 groups 2", wide, 6, 6, k: 3, stride: 1, pad: 1, groups: 2);
        Conv(cases, "conv2d 3x3 one image (im2col)", 1, 7, 6, k: 3, stride: 1, pad: 1, groups: 1);
        Conv(cases, "conv2d 1x1 (direct)", 2, 5, 5, k: 1, stride: 1, pad: 0, groups: 1);
        Add("upsample x2", [nameof(Ops.UpsampleNearest)], () => OpOracle.Check("upsample x2",
            [Randn(41, true, 2, 3, 4, 5)], t => Ops.UpsampleNearest(t[0], 2), d => RefOps.Upsample(d[0], 2)));
        Add("avgpool 2", [nameof(Ops.AvgPool2d)], () => OpOracle.Check("avgpool 2",
            [Randn(42, true, 2, 3, 6, 4)], t => Ops.AvgPool2d(t[0], 2), d => RefOps.AvgPool(d[0], 2)));

        // ---------------------------------------------------------------------------------- normalisation
        Add("group norm G=3", [nameof(Ops.GroupNorm)], () => OpOracle.Check("group norm G=3",
            [Randn(51, true, 2, 6, 3, 4), Randn(52, true, 6), Randn(53, true, 6)],
            t => Ops.GroupNorm(t[0], 3, t[1], t[2], 1e-5f), d => RefOps.GroupNorm(d[0], 3, d[1], d[2], 1e-5),
            fwdTol: 2e-5, gradTol: 2e-3));
        Add("group norm + silu G=3", [nameof(Ops.GroupNormSilu)], () => OpOracle.Check("group norm + silu G=3",
            [Randn(51, true, 2, 6, 3, 4), Randn(52, true, 6), Randn(53, true, 6)],
            t => Ops.GroupNormSilu(t[0], 3, t[1], t[2], 1e-5f),
            d => RefOps.Map(RefOps.GroupNorm(d[0], 3, d[1], d[2], 1e-5), RefOps.Silu), fwdTol: 2e-5, gradTol: 2e-3));
        Add("layer norm", [nameof(Ops.LayerNorm)], () => OpOracle.Check("layer norm",
            [Randn(54, true, 3, 4, 10), Randn(55, true, 10), Randn(56, true, 10)],
            t => Ops.LayerNorm(t[0], t[1], t[2]), d => RefOps.LayerNorm(d[0], d[1], d[2], 1e-5),
            fwdTol: 2e-5, gradTol: 2e-3));

        // ---------------------------------------------------------------------------------- softmax and losses
        Add("softmax", [nameof(Ops.Softmax)], () => OpOracle.Check("softmax", [Randn(61, true, 4, 7)],
            t => Ops.Softmax(t[0]), d => RefOps.Softmax(d[0], false)));
        Add("log softmax", [nameof(Ops.LogSoftmax)], () => OpOracle.Check("log softmax", [Randn(61, true, 4, 7)],
            t => Ops.LogSoftmax(t[0]), d => RefOps.Softmax(d[0], true)));
        int[] targets = [3, -100, 0, 6];   // row 1 ignored
        double[] rowWeights = [0.125, 1, 0.875, 0.875];
        Add("cross entropy", [nameof(Ops.CrossEntropy)], () => OpOracle.Check("cross entropy",
            [Randn(61, true, 4, 7)],
            t => Ops.CrossEntropy(t[0], new IntTensor(targets, 4), labelSmoothing: 0.1f,
                                  rowWeights: rowWeights.Select(v => (float)v).ToArray()),
            d => RefOps.CrossEntropy(d[0], targets, -100, 0.1, rowWeights)));
        float[] mseWeights = [0.25f, 2f, 0f, 1.5f];   // one per row of the (4, 7) inputs
        Add("mse", [nameof(Ops.MseLoss)], () => OpOracle.Check("mse", [Randn(61, true, 4, 7), Randn(63, true, 4, 7)],
            t => Ops.MseLoss(t[0], t[1], Tensor.FromArray(mseWeights, 4, 1)),
            d => new D([d[0].V.Zip(d[1].V, (p, q) => (p - q) * (p - q))
                            .Select((e, i) => mseWeights[i / 7] * e).Average()], [])));

        // ---------------------------------------------------------------------------------- views and indexing
        Add("permute + contiguous", [nameof(Ops.Permute), nameof(Ops.Contiguous)], () => OpOracle.Check(
            "permute + contiguous", [Randn(71, true, 2, 3, 4)],
            t => Ops.Contiguous(Ops.Permute(t[0], 2, 0, 1)), d => Permute(d[0], [2, 0, 1])));   // (4, 2, 3)
        Add("reshape of permute", [nameof(Ops.Reshape)], () => OpOracle.Check("reshape of permute",
            [Randn(71, true, 2, 3, 4)], t => Ops.Reshape(Ops.Permute(t[0], 1, 0, 2), 3, 8),
            d => Permute(d[0], [1, 0, 2]) with { S = [3, 8] }));
        Add("unsqueeze + squeeze", [nameof(Ops.Unsqueeze), nameof(Ops.Squeeze)], () => OpOracle.Check(
            "unsqueeze + squeeze", [Randn(71, true, 2, 3, 4)],
            t => Ops.Mul(Ops.Squeeze(Ops.Unsqueeze(t[0], 1), 1), t[0]),            // x * x through (2, 1, 3, 4)
            d => RefOps.Binary(d[0], d[0], (p, q) => p * q)));
        Add("narrow", [nameof(Ops.Narrow)], () => OpOracle.Check("narrow", [Randn(71, true, 2, 3, 4)],
            t => Ops.Narrow(t[0], 2, 1, 2), d => Slice(d[0], 1, 2)));
        Add("expand", [nameof(Ops.Expand)], () => OpOracle.Check("expand", [Randn(72, true, 3, 1)],
            t => Ops.Expand(t[0], 2, 3, 4), d => RefOps.Binary(d[0], new D(new double[24], [2, 3, 4]), (p, _) => p)));
        Add("concat axis 1", [nameof(Ops.Concat)], () => OpOracle.Check("concat axis 1",
            [Randn(71, true, 2, 3, 4), Randn(73, true, 2, 5, 4)],
            t => Ops.Concat([t[0], t[1]], 1), d => RefOps.Concat([d[0], d[1]], 1)));                // (2, 8, 4)
        Add("split", [nameof(Ops.Split)], () => OpOracle.Check("split", [Randn(73, true, 2, 5, 4)], t =>
            {
                var parts = Ops.Split(t[0], [1, 3], 2);
                return Ops.Add(Ops.Sum(parts[0], [2], true), Ops.Sum(parts[1], [2], true));          // (2, 5, 1)
            }, d => RefOps.Sum(d[0], [2]) with { S = [2, 5, 1] }));
        int[] gatherIndex = [0, 2, 1, 1, 0, 0, 2, 2];
        Add("gather axis 1", [nameof(Ops.Gather)], () => OpOracle.Check("gather axis 1", [Randn(71, true, 2, 3, 4)],
            t => Ops.Gather(t[0], 1, new IntTensor(gatherIndex, 2, 1, 4)),
            d => RefOps.Gather(d[0], 1, gatherIndex, [2, 1, 4])));
        int[] ids = [5, 0, 3, 3];
        Add("spectral norm", [nameof(Ops.SpectralNorm)], () =>
        {   // the gradient holds u and v constant (as PyTorch), so the check takes no power step; the steps are
            // checked against PyTorch (PyTorchGoldenTests) and by sigma -> 1 (NnTests)
            var w = Randn(75, true, 4, 2, 3, 3); var u = Randn(76, false, 4); var v = Randn(77, false, 18);
            using (Autograd.NoGrad()) Ops.SpectralNorm(w, u, v, 3);   // unit u and v near the top singular pair
            double[] ud = u.ToArray().Select(a => (double)a).ToArray(),
                vd = v.ToArray().Select(a => (double)a).ToArray();
            return OpOracle.Check("spectral norm", [w], t => Ops.SpectralNorm(t[0], u, v, 0),
                d => RefOps.SpectralNorm(d[0], ud, vd, 0));
        });
        Add("embedding", [nameof(Ops.Embedding)], () => OpOracle.Check("embedding", [Randn(74, true, 6, 5)],
            t => Ops.Embedding(new IntTensor(ids, 4), t[0]), d => RefOps.Embedding(ids, d[0])));

        // ---------------------------------------------------------------------------------- attention
        Add("attention causal", [nameof(Ops.ScaledDotProductAttention)], () => Attention("attention causal", 6, 6,
            causal: true, padded: false));
        Add("attention padded, Tq < Tk", [nameof(Ops.ScaledDotProductAttention)], () => Attention(
            "attention padded, Tq < Tk", 3, 6, causal: true, padded: true));
        return cases;
    }

    /// <summary>x [B, 4, H, W], weight [4, 4/G, k, k], bias [4], with B = <paramref name="batch"/> or, for 0, one
    /// image per thread (at least 2, read when the case runs); the result's name says which kernel ran.</summary>
    private static void Conv(List<OpCase> cases, string name, int batch, int h, int w, int k, int stride, int pad,
                             int groups) =>
        cases.Add(new(name, [nameof(Ops.Conv2d)], () =>
        {
            int b = batch > 0 ? batch : Math.Max(2, Parallelism.Threads);
            var x = Randn(31, true, b, 4, h, w);
            var weight = Randn(32, true, 4, 4 / groups, k, k);
            var path = Ops.Conv2dPath(x.Shape, weight.Shape, stride, pad, groups);
            string label = $"{name.Split(" (")[0]}, B={b} [{PathName(path)}]";
            return OpOracle.Check(label, [x, weight, Randn(33, true, 4)],
                t => Ops.Conv2d(t[0], t[1], t[2], stride, pad, groups),
                d => RefOps.Conv2d(d[0], d[1], d[2], stride, pad, groups));
        }));

    private static string PathName(ConvPath p) => p switch
    {
        ConvPath.Direct => "direct",
        ConvPath.Im2Col => "im2col + GEMM",
        ConvPath.ImplicitGemm => "implicit GEMM",
        _ => "winograd",
    };

    /// <summary>q [2, 2, Tq, 4], k [2, 2, Tk, 4], v [2, 2, Tk, 3]; padding hides the last two keys of image 1.
    /// </summary>
    private static OpCheckResult Attention(string name, int tq, int tk, bool causal, bool padded)
    {
        bool[]? pad = padded ? Enumerable.Range(0, 2 * tk).Select(i => i % tk >= tk - 2 && i >= tk).ToArray() : null;
        return OpOracle.Check(name,
            [Randn(81, true, 2, 2, tq, 4), Randn(82, true, 2, 2, tk, 4), Randn(83, true, 2, 2, tk, 3)],
            t => Ops.ScaledDotProductAttention(t[0], t[1], t[2], causal, pad),
            d => RefOps.Attention(d[0], d[1], d[2], causal, pad));
    }

    /// <summary>A leaf tensor of seeded normal values.</summary>
    private static Tensor Randn(ulong seed, bool grad, params int[] shape)
    {
        var t = new Rng(seed).Randn(shape);
        t.RequiresGrad = grad;
        return t;
    }

    /// <summary>f of every value, as a new leaf with the same shape and RequiresGrad.</summary>
    private static Tensor Map(Tensor t, Func<float, float> f)
    {
        var r = Tensor.FromArray(t.ToArray().Select(f).ToArray(), t.Shape);
        r.RequiresGrad = t.RequiresGrad;
        return r;
    }

    /// <summary>Axes permuted: result axis d is x's axis p[d].</summary>
    private static D Permute(D x, int[] p)
    {
        var s = p.Select(i => x.S[i]).ToArray(); var st = D.Strides(x.S); var r = new double[x.N];
        var idx = new int[s.Length];
        for (int n = 0; n < x.N; n++)
        {
            int rem = n;
            for (int d = s.Length - 1; d >= 0; d--) { idx[d] = rem % s[d]; rem /= s[d]; }
            int off = 0;
            for (int d = 0; d < s.Length; d++) off += idx[d] * st[p[d]];
            r[n] = x.V[off];
        }
        return new D(r, s);
    }

    /// <summary>[.., C] -> [.., len]: entries start .. start + len of the last axis.</summary>
    private static D Slice(D x, int start, int len)
    {
        int c = x.S[^1], rows = x.N / c; var r = new List<double>();
        for (int i = 0; i < rows; i++) r.AddRange(x.V.Skip(i * c + start).Take(len));
        var s = (int[])x.S.Clone(); s[^1] = len;
        return new D(r.ToArray(), s);
    }
}
