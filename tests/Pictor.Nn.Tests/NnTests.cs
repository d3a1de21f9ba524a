using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Nn;
using Pictor.Nn.Optim;
using Pictor.TestSupport;

namespace Pictor.Nn.Tests;

public class TinyNet : Module
{
    public Linear A { get; }
    public LayerNorm Norm { get; }
    public Mlp Head { get; }

    public TinyNet(Rng rng, int d = 8)
    {
        A = Child("a", new Linear(rng, 4, d));
        Norm = Child("norm", new LayerNorm(d));
        Head = Child("head", new Mlp(rng, d, 16, Activation.Silu, outDim: 3));
    }

    public Tensor Forward(Tensor x) => Head.Forward(Norm.Forward(Ops.Gelu(A.Forward(x))));
}

public class ModuleTests
{
    [Fact]
    public void Parameters_have_dotted_pytorch_style_names()
    {
        var net = new TinyNet(new Rng(1));
        Assert.Equal(new[] { "a.weight", "a.bias", "norm.weight", "norm.bias", "head.fc1.weight", "head.fc1.bias", "head.fc2.weight", "head.fc2.bias" },
                     net.NamedParameters().Select(p => p.Name).ToArray());
        Assert.Equal(4 * 8 + 8 + 8 + 8 + 8 * 16 + 16 + 16 * 3 + 3, net.ParameterCount());
    }

    [Fact]
    public void State_dict_round_trips_through_safetensors_and_mismatches_are_named()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-nn").FullName;
        var a = new TinyNet(new Rng(1)); var b = new TinyNet(new Rng(2));
        a.Save(Path.Combine(dir, "a.safetensors"));
        b.LoadStateDict(SafeTensorsFile.Read(Path.Combine(dir, "a.safetensors")));
        foreach (var ((n1, p1), (_, p2)) in a.NamedParameters().Zip(b.NamedParameters())) Assert.Equal(p1.ToArray(), p2.ToArray());

        var wide = new TinyNet(new Rng(1), d: 10);
        var e = Assert.Throws<ArgumentException>(() => wide.LoadStateDict(SafeTensorsFile.Read(Path.Combine(dir, "a.safetensors"))));
        Assert.Contains("parameter 'a.weight': file has shape [8, 4], the model expects [10, 4]", e.Message);

        new SafeTensorsWriter().Add("a.weight", new float[32], [8, 4]).Write(Path.Combine(dir, "partial.safetensors"));
        e = Assert.Throws<ArgumentException>(() => a.LoadStateDict(SafeTensorsFile.Read(Path.Combine(dir, "partial.safetensors"))));
        Assert.Contains("has no parameter 'a.bias'", e.Message);

        // bf16 storage: within bf16 rounding (8 bits of mantissa)
        a.Save(Path.Combine(dir, "a16.safetensors"), DType.BF16);
        b.LoadStateDict(SafeTensorsFile.Read(Path.Combine(dir, "a16.safetensors")));
        OpCheck.AssertClose("bf16 weights", b.A.Weight.ToArray(), a.A.Weight.ToArray(), 1.0 / 128);
    }

    [Fact]
    public void Frozen_parameters_get_no_gradient_and_no_update()
    {
        var net = new TinyNet(new Rng(3));
        net.A.SetFrozen(true);
        var before = net.A.Weight.ToArray();
        var opt = new AdamW(net.NamedParameters(), new AdamWConfig(LearningRate: 0.1f));
        var x = new Rng(4).Randn(5, 4);
        Ops.Mean(Ops.Square(net.Forward(x))).Backward();
        Assert.Null(net.A.Weight.Grad);
        Assert.NotNull(net.Head.Fc1.Weight.Grad);
        var headBefore = net.Head.Fc1.Weight.ToArray();
        opt.StepOnce();
        Assert.Equal(before, net.A.Weight.ToArray());
        Assert.NotEqual(headBefore, net.Head.Fc1.Weight.ToArray());
    }

    [Fact]
    public void Multi_head_attention_self_and_cross_shapes_and_gradients()
    {
        var rng = new Rng(5);
        var mha = new MultiHeadAttention(rng, 16, 4, contextDim: 12);
        var x = OpCheck.Randn(6, true, 2, 5, 16);
        var ctx = OpCheck.Randn(7, true, 2, 3, 12);
        var y = mha.Forward(x, ctx);
        Assert.Equal(new[] { 2, 5, 16 }, y.Shape);
        Ops.Sum(y).Backward();
        Assert.NotNull(ctx.Grad); Assert.NotNull(mha.K.Weight.Grad);
        // Causal self-attention: the first output does not depend on later inputs.
        var self = new MultiHeadAttention(rng, 16, 4);
        var a = new Rng(8).Randn(1, 4, 16);
        var b = Tensor.FromArray(a.ToArray(), 1, 4, 16);
        b[0, 3, 0] += 5f;
        var ya = self.Forward(a, causal: true).ToArray(); var yb = self.Forward(b, causal: true).ToArray();
        Assert.Equal(ya.Take(3 * 16), yb.Take(3 * 16));
        Assert.NotEqual(ya.Skip(3 * 16), yb.Skip(3 * 16));
    }

    [Fact]
    public void Attention_with_kept_probabilities_equals_the_fused_kernel_and_passes_gradients_through_them()
    {
        // The recorded-ops path (for a loss on where queries look) against the fused kernel: same output and input
        // gradients for a loss on the output; and the kept probabilities are the softmax rows, with their own gradient.
        var mha = new MultiHeadAttention(new Rng(5), 16, 4, contextDim: 12);
        var xv = new Rng(6).Randn(2, 7, 16).ToArray(); var cv = new Rng(7).Randn(2, 3, 12).ToArray();
        var w = new Rng(8).Randn(2, 7, 16);
        (float[] Y, float[] Dx, float[] Dc, float[] Dq) Run(List<Tensor>? probs)
        {
            foreach (var (_, p) in mha.NamedParameters()) p.Grad = null;
            var x = Tensor.FromArray((float[])xv.Clone(), 2, 7, 16); x.RequiresGrad = true;
            var c = Tensor.FromArray((float[])cv.Clone(), 2, 3, 12); c.RequiresGrad = true;
            var y = mha.Forward(x, c, probabilities: probs);
            Ops.Sum(Ops.Mul(y, w)).Backward();
            return (y.ToArray(), x.Grad!.ToArray(), c.Grad!.ToArray(), mha.Q.Weight.Grad!.ToArray());
        }
        var fused = Run(null);
        var probs = new List<Tensor>();
        var kept = Run(probs);
        OpCheck.AssertClose("output", kept.Y, fused.Y, 1e-5);
        OpCheck.AssertClose("dx", kept.Dx, fused.Dx, 1e-5);
        OpCheck.AssertClose("dcontext", kept.Dc, fused.Dc, 1e-5);
        OpCheck.AssertClose("dWq", kept.Dq, fused.Dq, 1e-5);
        var p = Assert.Single(probs);
        Assert.Equal(new[] { 2, 4, 7, 3 }, p.Shape);
        var pv = p.ToArray();
        for (int row = 0; row < 2 * 4 * 7; row++) Assert.Equal(1.0, pv[(row * 3)..(row * 3 + 3)].Sum(), 5);

        // A loss on the probabilities alone reaches the query and key weights, not the value weights.
        foreach (var (_, prm) in mha.NamedParameters()) prm.Grad = null;
        var probs2 = new List<Tensor>();
        mha.Forward(Tensor.FromArray((float[])xv.Clone(), 2, 7, 16), Tensor.FromArray((float[])cv.Clone(), 2, 3, 12), probabilities: probs2);
        Ops.Sum(Ops.Square(Ops.Narrow(probs2[0], 3, 0, 1))).Backward();
        Assert.Contains(mha.Q.Weight.Grad!.ToArray(), g => g != 0);
        Assert.Contains(mha.K.Weight.Grad!.ToArray(), g => g != 0);
        Assert.True(mha.V.Weight.Grad == null || mha.V.Weight.Grad.ToArray().All(g => g == 0));
        Assert.Throws<ArgumentException>(() => mha.Forward(Tensor.FromArray((float[])xv.Clone(), 2, 7, 16), causal: true, probabilities: new List<Tensor>()));
    }
}

public class OptimTests
{
    [Fact]
    public void AdamW_first_steps_match_the_formula()
    {
        // One scalar parameter w = 1 with gradient g = 0.5 each step; PyTorch's AdamW algorithm written out.
        var w = Tensor.FromArray([1f], 1); w.RequiresGrad = true;
        var cfg = new AdamWConfig(LearningRate: 0.1f, WeightDecay: 0.1f);
        var opt = new AdamW([("w", w)], cfg);
        double p = 1, m = 0, v = 0;
        for (int t = 1; t <= 3; t++)
        {
            w.Grad = Tensor.FromArray([0.5f], 1);
            opt.StepOnce();
            p -= 0.1 * 0.1 * p;
            m = 0.9 * m + 0.1 * 0.5; v = 0.999 * v + 0.001 * 0.25;
            p -= 0.1 / (1 - Math.Pow(0.9, t)) * m / (Math.Sqrt(v) / Math.Sqrt(1 - Math.Pow(0.999, t)) + 1e-8);
            Assert.Equal(p, w.Item(), 6);
        }
    }

    [Fact]
    public void AdamW_state_round_trip_resumes_exactly()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-opt").FullName;
        var x = new Rng(9).Randn(6, 4);
        void Step(TinyNet n, AdamW o) { o.ZeroGrad(); Ops.Mean(Ops.Square(n.Forward(x))).Backward(); o.StepOnce(); }

        var straight = new TinyNet(new Rng(1)); var o1 = new AdamW(straight.NamedParameters(), new AdamWConfig());
        for (int i = 0; i < 4; i++) Step(straight, o1);

        var first = new TinyNet(new Rng(1)); var o2 = new AdamW(first.NamedParameters(), new AdamWConfig());
        Step(first, o2); Step(first, o2);
        var w = new SafeTensorsWriter(); var meta = new Dictionary<string, string>();
        foreach (var (n, p) in first.NamedParameters()) w.Add(n, p);
        o2.SaveState(w, meta);
        w.Write(Path.Combine(dir, "ckpt.safetensors"), meta);

        var resumed = new TinyNet(new Rng(77));
        var f = SafeTensorsFile.Read(Path.Combine(dir, "ckpt.safetensors"));
        resumed.LoadStateDict(f, strict: false);
        var o3 = new AdamW(resumed.NamedParameters(), new AdamWConfig());
        o3.LoadState(f);
        Step(resumed, o3); Step(resumed, o3);
        foreach (var ((n, p1), (_, p2)) in straight.NamedParameters().Zip(resumed.NamedParameters()))
            Assert.True(p1.ToArray().AsSpan().SequenceEqual(p2.ToArray()), $"{n} differs after resume");
    }

    [Fact]
    public void Warmup_cosine_schedule()
    {
        var s = new WarmupCosine(MaxLr: 1f, MinLr: 0.1f, WarmupSteps: 10, TotalSteps: 110);
        Assert.Equal(0.1f, s.At(0), 6);
        Assert.Equal(1f, s.At(9), 6);
        Assert.Equal(1f, s.At(10), 6);
        Assert.Equal(0.55f, s.At(60), 5);   // halfway: min + (max - min) / 2
        Assert.Equal(0.1f, s.At(110), 6);
        Assert.Equal(0.1f, s.At(1000), 6);
        for (int i = 11; i < 110; i++) Assert.True(s.At(i) <= s.At(i - 1));
    }

    [Fact]
    public void Clip_by_global_norm()
    {
        var a = Tensor.FromArray([0f], 1); a.Grad = Tensor.FromArray([3f], 1);
        var b = Tensor.FromArray([0f, 0f], 2); b.Grad = Tensor.FromArray([0f, 4f], 2);
        float norm = GradClip.ClipByGlobalNorm([a, b], 1f);
        Assert.Equal(5f, norm, 5);
        Assert.Equal(0.6f, a.Grad.Item(), 5);
        Assert.Equal(0.8f, b.Grad.ToArray()[1], 5);
        Assert.Equal(1f, GradClip.ClipByGlobalNorm([a, b], 10f), 4);   // under the limit: unchanged
        Assert.Equal(0.6f, a.Grad.Item(), 5);
    }

    [Fact]
    public void Ema_tracks_weights()
    {
        var net = new TinyNet(new Rng(1));
        var ema = new Ema(net, decay: 0.5f);
        var w0 = net.A.Weight.ToArray();
        net.A.Weight.Span.Fill(2f);
        ema.Update();
        var copy = new TinyNet(new Rng(9));
        ema.CopyTo(copy);
        Assert.Equal(w0.Select(v => 0.5f * v + 1f).ToArray(), copy.A.Weight.ToArray());
        Assert.Throws<ArgumentException>(() => new Ema(net, 1.5f));
    }
}
