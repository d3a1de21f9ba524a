using Pictor.Engine;
using Pictor.Models.Transformer;
using Pictor.Nn;

namespace Pictor.Pipelines.Export;

// Dimension legend: B batch, T query tokens, S key/value tokens, D width, H heads, Dh head width, C channels, G groups.

/// <summary>
/// The Pictor.Nn layers written as ONNX nodes, each mirroring its module's forward: Linear (MatMul or Gemm), Conv2d,
/// GroupNorm (decomposed: opset 17 has no GroupNormalization), LayerNorm (LayerNormalization), activations (GELU from
/// Erf), multi-head attention (MatMul, Softmax, an additive causal mask) and the transformer block. Parameters become
/// initialisers under their dotted Pictor names; <paramref name="path"/> arguments are those names' prefixes.
/// </summary>
internal static class LayerExport
{
    /// <summary>The children of <paramref name="m"/> by name; any child outside <paramref name="known"/> is refused
    /// with one line naming it, so a module variant the writer does not map is never silently dropped.</summary>
    public static Dictionary<string, Module> Children(Module m, string path, params string[] known)
    {
        var d = new Dictionary<string, Module>(StringComparer.Ordinal);
        foreach (var (name, child) in m.NamedChildren)
        {
            if (Array.IndexOf(known, name) < 0)
                Refuse(Join(path, name), child.GetType().Name, $"{m.GetType().Name} parts other than "
                    + $"{string.Join(", ", known)} are not mapped yet");
            d[name] = child;
        }
        return d;
    }

    /// <summary>Throws the one-line refusal for a module the writer has no ONNX mapping for.</summary>
    public static void Refuse(string path, string op, string why) =>
        throw new NotSupportedException($"ONNX export: {op} in module '{path}' has no ONNX mapping ({why}); export "
            + "a model without it, or add its mapping in src/Pictor.Pipelines/Export");

    public static string Join(string path, string name) => path.Length == 0 ? name : path + "." + name;

    /// <summary>y = x W^T + b; Gemm for a rank-2 input, MatMul with the weight transposed otherwise.</summary>
    public static string Linear(OnnxGraph g, Linear l, string path, string x, int rank)   // (.., In) -> (.., Out)
    {
        var w = g.Weight(path + ".weight", l.Weight);                          // (Out, In)
        var b = l.Bias == null ? null : g.Weight(path + ".bias", l.Bias);
        if (rank == 2) return g.GemmTransB(x, w, b);
        var y = g.MatMul(x, g.Transpose(w, 1, 0));
        return b == null ? y : g.Add(y, b);
    }

    public static string Conv(OnnxGraph g, Conv2d c, string path, string x)   // (B, C, H, W) -> (B, O, OH, OW)
    {
        var w = g.Weight(path + ".weight", c.Weight);                          // (O, C/groups, K, K)
        var b = c.Bias == null ? null : g.Weight(path + ".bias", c.Bias);
        return g.Conv(x, w, b, c.Weight.Shape[3], c.Stride, c.Padding, c.Groups);
    }

    /// <summary>GroupNorm over (B, C, H, W), decomposed (docs/onnx.md): reshape to (B, G, C/G*H*W), subtract the mean,
    /// divide by sqrt(biased variance + eps), reshape back, scale and shift per channel; SiLU after when asked (the
    /// fused GroupNormSilu).</summary>
    public static string GroupNorm(OnnxGraph g, GroupNorm n, string path, string x, bool silu)
    {
        int c = n.Weight.Numel;
        var r = g.Reshape(x, 0, n.Groups, -1);                                 // (B, G, C/G*H*W)
        var d = g.Sub(r, g.ReduceMean(r, true, 2));
        var variance = g.ReduceMean(g.Mul(d, d), true, 2);                     // (B, G, 1)
        var y = g.Div(d, g.Sqrt(g.Add(variance, g.Scalar(n.Eps))));
        y = g.ReshapeLike(y, g.Shape(x));                                      // (B, C, H, W)
        var gamma = g.Reshape(g.Weight(path + ".weight", n.Weight), c, 1, 1);
        var beta = g.Reshape(g.Weight(path + ".bias", n.Bias), c, 1, 1);
        y = g.Add(g.Mul(y, gamma), beta);
        return silu ? Silu(g, y) : y;
    }

    public static string LayerNorm(OnnxGraph g, LayerNorm n, string path, string x) =>   // (.., D) -> (.., D)
        g.LayerNormalization(x, g.Weight(path + ".weight", n.Weight), g.Weight(path + ".bias", n.Bias), n.Eps);

    /// <summary>SiLU: x * sigmoid(x).</summary>
    public static string Silu(OnnxGraph g, string x) => g.Mul(x, g.Sigmoid(x));

    public static string Activate(OnnxGraph g, Activation a, string x) => a switch
    {
        // 0.5 x (1 + erf(x / sqrt 2))
        Activation.Gelu => g.Mul(g.Mul(x, g.Add(g.Erf(g.Mul(x, g.Scalar(1f / MathF.Sqrt(2f)))), g.Scalar(1f))),
            g.Scalar(0.5f)),
        // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        Activation.GeluTanh => g.Mul(g.Mul(x, g.Add(g.Tanh(g.Mul(g.Add(x, g.Mul(g.Mul(g.Mul(x, x), x),
            g.Scalar(0.044715f))), g.Scalar(MathF.Sqrt(2f / MathF.PI)))), g.Scalar(1f))), g.Scalar(0.5f)),
        Activation.Silu => Silu(g, x),
        _ => g.Relu(x),
    };

    public static string Mlp(OnnxGraph g, Mlp m, string path, string x, int rank) =>
        Linear(g, m.Fc2, path + ".fc2", Activate(g, m.Act, Linear(g, m.Fc1, path + ".fc1", x, rank)), rank);

    /// <summary>Multi-head attention: x (B, T, D), context (B, S, Dc) or null for self-attention, an additive mask
    /// (T, S) or null -> (B, T, D). softmax(q k^T / sqrt(Dh) + mask) v, heads merged, output projection.</summary>
    public static string Attention(OnnxGraph g, MultiHeadAttention a, string path, string x, string? context,
        string? mask)
    {
        var ctx = context ?? x;
        int h = a.Heads, dh = a.HeadDim;
        var q = g.Transpose(g.Reshape(Linear(g, a.Q, path + ".q", x, 3), 0, 0, h, dh), 0, 2, 1, 3);   // (B, H, T, Dh)
        var k = g.Transpose(g.Reshape(Linear(g, a.K, path + ".k", ctx, 3), 0, 0, h, dh), 0, 2, 3, 1); // (B, H, Dh, S)
        var v = g.Transpose(g.Reshape(Linear(g, a.V, path + ".v", ctx, 3), 0, 0, h, dh), 0, 2, 1, 3); // (B, H, S, Dh)
        var logits = g.Mul(g.MatMul(q, k), g.Scalar(1f / MathF.Sqrt(dh)));                          // (B, H, T, S)
        if (mask != null) logits = g.Add(logits, mask);
        var o = g.MatMul(g.Softmax(logits, -1), v);                                                   // (B, H, T, Dh)
        var merged = g.Reshape(g.Transpose(o, 0, 2, 1, 3), 0, 0, h * dh);                            // (B, T, H*Dh)
        return Linear(g, a.Out, path + ".out", merged, 3);
    }

    /// <summary>The additive causal mask (T, T): 0 where key s &lt;= query t, -1e9 above the diagonal (exp gives 0, as
    /// the fused kernel's skipped keys).</summary>
    public static string CausalMask(OnnxGraph g, int t)
    {
        var m = new float[t * t];
        for (int i = 0; i < t; i++)
            for (int j = i + 1; j < t; j++) m[i * t + j] = -1e9f;
        return g.Floats(m, t, t);
    }

    /// <summary>The pre-LN transformer block (<see cref="ArBlock"/>): x + attn(LN(x)), then x + MLP(LN(x)). A null
    /// mask is bidirectional (the text encoder).</summary>
    public static string Block(OnnxGraph g, ArBlock block, string path, string x, string? mask)   // (B, T, D)
    {
        var c = Children(block, path, "ln1", "attn", "ln2", "mlp");
        var a = Attention(g, (MultiHeadAttention)c["attn"], path + ".attn",
            LayerNorm(g, (LayerNorm)c["ln1"], path + ".ln1", x), null, mask);
        x = g.Add(a, x);
        return g.Add(Mlp(g, (Mlp)c["mlp"], path + ".mlp", LayerNorm(g, (LayerNorm)c["ln2"], path + ".ln2", x), 3), x);
    }
}
