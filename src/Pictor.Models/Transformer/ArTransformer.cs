using Pictor.Engine;
using Pictor.Nn;

namespace Pictor.Models.Transformer;

// Dimension legend: B batch, T tokens, D model width, V vocabulary (text + image).

/// <summary>Decoder-only transformer configuration. Defaults are AR-S (the engine issue's reference model).</summary>
public sealed record ArConfig(
    int Layers = 8,
    int Dim = 256,
    int Heads = 8,
    int TextVocab = 4096,
    int ImageVocab = 512,   // VQ codebook size; image token k has id TextVocab + k
    int TextLen = 16,
    int ImageLen = 64)      // 8 x 8 tokens for a 32 x 32 image
{
    public int Vocab => TextVocab + ImageVocab;
    public int SeqLen => TextLen + ImageLen;
    /// <summary>AR-S: 8 layers, d 256, 8 heads; 8,698,368 parameters.</summary>
    public static ArConfig S => new();
}

/// <summary>Pre-LayerNorm block: x + attn(LN(x)) (causal), then x + MLP(LN(x)) with GELU and 4x width.</summary>
public sealed class ArBlock : Module
{
    private readonly LayerNorm ln1, ln2;
    private readonly MultiHeadAttention attn;
    private readonly Mlp mlp;

    public ArBlock(Rng rng, int dim, int heads)
    {
        ln1 = Child("ln1", new LayerNorm(dim));
        attn = Child("attn", new MultiHeadAttention(rng, dim, heads));
        ln2 = Child("ln2", new LayerNorm(dim));
        mlp = Child("mlp", new Mlp(rng, dim, 4 * dim, Activation.Gelu));
    }

    /// <summary>As Forward, for new tokens only, attending through the layer's KV cache.</summary>
    public Tensor ForwardCached(Tensor x, LayerKvCache cache)   // (B, T, D) -> (B, T, D)
    {
        x = Ops.AddInPlace(attn.ForwardCached(ln1.Forward(x), cache), x);   // x + f(x), summed into f's fresh output
        return Ops.AddInPlace(mlp.Forward(ln2.Forward(x)), x);
    }

    /// <summary>Causal for the AR transformer; bidirectional (causal: false) for the text encoder. With a
    /// <paramref name="dropout"/> rng and probability p > 0, each branch's output is dropped out before its residual
    /// add (GPT-2's residual dropout; training only: samplers pass none).
    /// With <paramref name="probabilities"/>, the attention's probabilities [B, H, T, T] are added to it.</summary>
    public Tensor Forward(Tensor x, bool causal = true, float p = 0f, Rng? dropout = null,
        List<Tensor>? probabilities = null)   // (B, T, D) -> (B, T, D)
    {
        x = Ops.AddInPlace(Drop(attn.Forward(ln1.Forward(x), causal: causal, probabilities: probabilities), p,
            dropout), x);
        return Ops.AddInPlace(Drop(mlp.Forward(ln2.Forward(x)), p, dropout), x);
    }

    internal static Tensor Drop(Tensor x, float p, Rng? rng) => rng == null || p == 0f ? x : Ops.Dropout(x, p, rng);
}

/// <summary>
/// DALL-E-style autoregressive transformer over [text tokens; image tokens] in one vocabulary, with learned positions
/// (nanoGPT's shape). Parameter names match tools/reference/models.py (ArS).
/// </summary>
public sealed class ArTransformer : Module
{
    public ArConfig Config { get; }
    private readonly Embedding tokEmb;
    private readonly Tensor posEmb;
    private readonly List<ArBlock> blocks = new();
    private readonly LayerNorm lnF;
    private readonly Linear head;

    public ArTransformer(ArConfig cfg, Rng rng)
    {
        Config = cfg;
        tokEmb = Child("tok_emb", new Embedding(rng, cfg.Vocab, cfg.Dim, std: 0.02f));
        posEmb = Param("pos_emb", Init.Normal(rng, 0.02f, cfg.SeqLen, cfg.Dim));
        for (int i = 0; i < cfg.Layers; i++) blocks.Add(Child($"blocks.{i}", new ArBlock(rng, cfg.Dim, cfg.Heads)));
        lnF = Child("ln_f", new LayerNorm(cfg.Dim));
        head = Child("head", new Linear(rng, cfg.Dim, cfg.Vocab, bias: false));
    }

    /// <summary>ids [B, T] -> logits [B, T, V].</summary>
    public Tensor Forward(IntTensor ids)
    {
        if (ids.Shape.Length != 2) Throw.Argument($"token ids must be [B, T], got {Shape.Format(ids.Shape)}");
        int t = ids.Shape[1];
        if (t > Config.SeqLen)
            Throw.Argument($"sequence has {t} tokens, the model takes {Config.SeqLen}; shorten it or retrain with a "
                + $"longer context");
        var x = Ops.Add(tokEmb.Forward(ids), Ops.Narrow(posEmb, 0, 0, t));       // (B, T, D)
        foreach (var b in blocks) x = b.Forward(x);
        return head.Forward(lnF.Forward(x));                                       // (B, T, V)
    }

    /// <summary>A KV cache sized for this model's full sequence and <paramref name="batch"/> sequences.</summary>
    public KvCache NewCache(int batch) => new(Config.Layers, batch, Config.Heads, Config.SeqLen,
        Config.Dim / Config.Heads);

    /// <summary>Logits [B, T, V] for new tokens ids [B, T] placed after the cache's contents; appends to the
    /// cache.</summary>
    public Tensor ForwardCached(IntTensor ids, KvCache cache)
    {
        if (ids.Shape.Length != 2) Throw.Argument($"token ids must be [B, T], got {Shape.Format(ids.Shape)}");
        int t = ids.Shape[1], at = cache.Length;
        if (at + t > Config.SeqLen)
            Throw.Argument($"sequence would reach {at + t} tokens, the model takes {Config.SeqLen}");
        var x = Ops.Add(tokEmb.Forward(ids), Ops.Narrow(posEmb, 0, at, t));      // (B, T, D)
        for (int i = 0; i < blocks.Count; i++) x = blocks[i].ForwardCached(x, cache.Layers[i]);
        return head.Forward(lnF.Forward(x));                                       // (B, T, V)
    }

    /// <summary>Mean next-token cross-entropy: logits of ids[:, :-1] against ids[:, 1:].</summary>
    public Tensor Loss(IntTensor ids)
    {
        int b = ids.Shape[0], t = ids.Shape[1];
        var inp = new int[b * (t - 1)]; var tgt = new int[b * (t - 1)];
        for (int i = 0; i < b; i++)
        {
            Array.Copy(ids.Data, i * t, inp, i * (t - 1), t - 1);
            Array.Copy(ids.Data, i * t + 1, tgt, i * (t - 1), t - 1);
        }
        var logits = Forward(new IntTensor(inp, b, t - 1));
        return Ops.CrossEntropy(logits, new IntTensor(tgt, b * (t - 1)));
    }
}
