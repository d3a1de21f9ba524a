using Pictor.Engine;
using Pictor.Models.Transformer;
using Pictor.Nn;

namespace Pictor.Models.Dalle;

// Dimension legend: B batch, T positions, D model width, V = TextVocab + ImageVocab, L = TextLen, G image grid side.

/// <summary>The DALL-E transformer's shape. A sequence is L text tokens (bos, BPE ids, eos, padding) followed by G*G
/// image tokens in raster order; image code k has id TextVocab + k in the shared vocabulary.</summary>
public sealed record DalleConfig(
    int Layers, int Dim, int Heads,
    int TextVocab, int TextLen,
    int ImageVocab, int Grid,
    float TextLossWeight = 0.125f)   // Ramesh et al. 2021, section 2.2: text 1/8, image 7/8 of the loss
{
    public int Vocab => TextVocab + ImageVocab;
    public int ImageLen => Grid * Grid;
    public int SeqLen => TextLen + ImageLen;
}

/// <summary>
/// DALL-E (Ramesh et al. 2021, "Zero-Shot Text-to-Image Generation"): a decoder-only transformer over
/// [text tokens; image tokens] with causal attention. Positions are learned separately for the text (one vector per
/// slot) and for the image (a row vector plus a column vector, so the grid structure is explicit). The blocks are the
/// pre-LayerNorm <see cref="ArBlock"/> of AR-S. The caption is also predicted, with a small weight (1/8), so the model
/// learns the text distribution as the paper does; padding is not predicted.
/// </summary>
public sealed class DalleTransformer : Module
{
    public DalleConfig Config { get; }
    private readonly Embedding tokEmb;
    private readonly Tensor textPos, rowPos, colPos;
    private readonly List<ArBlock> blocks = new();
    private readonly LayerNorm lnF;
    private readonly Linear head;

    public DalleTransformer(DalleConfig cfg, Rng rng)
    {
        if (cfg.Dim % cfg.Heads != 0) Throw.Argument($"DALL-E width {cfg.Dim} does not divide into {cfg.Heads} heads");
        if (cfg.TextLen < 2 || cfg.Grid < 1)
            Throw.Argument($"DALL-E needs at least 2 text positions and a grid of 1, got {cfg.TextLen} and {cfg.Grid}");
        Config = cfg;
        tokEmb = Child("tok_emb", new Embedding(rng, cfg.Vocab, cfg.Dim, std: 0.02f));
        textPos = Param("text_pos", Init.Normal(rng, 0.02f, cfg.TextLen, cfg.Dim));
        rowPos = Param("row_pos", Init.Normal(rng, 0.02f, cfg.Grid, cfg.Dim));
        colPos = Param("col_pos", Init.Normal(rng, 0.02f, cfg.Grid, cfg.Dim));
        for (int i = 0; i < cfg.Layers; i++) blocks.Add(Child($"blocks.{i}", new ArBlock(rng, cfg.Dim, cfg.Heads)));
        lnF = Child("ln_f", new LayerNorm(cfg.Dim));
        head = Child("head", new Linear(rng, cfg.Dim, cfg.Vocab, bias: false));
    }

    /// <summary>Position vectors for positions [at, at + t): [t, D]. Text slot p: text_pos[p]; image token j:
    /// row_pos[j / G] + col_pos[j % G].</summary>
    public Tensor Positions(int at, int t)
    {
        var c = Config;
        // (G*G, D)
        var grid = Ops.Reshape(Ops.Add(Ops.Reshape(rowPos, c.Grid, 1, c.Dim), Ops.Reshape(colPos, 1, c.Grid, c.Dim)),
            c.ImageLen, c.Dim);
        // (L + G*G, D)
        var all = Ops.Concat([textPos, grid], 0);
        return Ops.Narrow(all, 0, at, t);
    }

    /// <summary>ids [B, T] (positions 0..T-1) -> logits [B, T, V]. Training may pass a dropout probability and the
    /// rng for its masks: embedding and residual dropout, as GPT-2 (none by default, and never when
    /// sampling). With <paramref name="attention"/>, each block's attention probabilities [B, H, T, T] are added to
    /// it, in block order (from recorded ops: the logits equal the fused kernel's up to rounding).</summary>
    public Tensor Forward(IntTensor ids, float dropout = 0f, Rng? rng = null, List<Tensor>? attention = null)
    {
        CheckIds(ids, 0);
        if (dropout is < 0f or >= 1f) Throw.Argument($"dropout must be in [0, 1), got {dropout}");
        var x = ArBlock.Drop(Ops.Add(tokEmb.Forward(ids), Positions(0, ids.Shape[1])), dropout, rng);   // (B, T, D)
        foreach (var b in blocks) x = b.Forward(x, p: dropout, dropout: rng, probabilities: attention);
        return head.Forward(lnF.Forward(x));                                    // (B, T, V)
    }

    public KvCache NewCache(int batch) => new(Config.Layers, batch, Config.Heads, Config.SeqLen,
        Config.Dim / Config.Heads);

    /// <summary>Logits [B, T, V] for new tokens ids [B, T] placed after the cache's contents; appends to the
    /// cache.</summary>
    public Tensor ForwardCached(IntTensor ids, KvCache cache)
    {
        int at = cache.Length;
        CheckIds(ids, at);
        var x = Ops.Add(tokEmb.Forward(ids), Positions(at, ids.Shape[1]));     // (B, T, D)
        for (int i = 0; i < blocks.Count; i++) x = blocks[i].ForwardCached(x, cache.Layers[i]);
        return head.Forward(lnF.Forward(x));                                    // (B, T, V)
    }

    private void CheckIds(IntTensor ids, int at)
    {
        if (ids.Shape.Length != 2) Throw.Argument($"token ids must be [B, T], got {Shape.Format(ids.Shape)}");
        if (at + ids.Shape[1] > Config.SeqLen)
            Throw.Argument($"sequence would reach {at + ids.Shape[1]} tokens; the model takes {Config.SeqLen} "
                + $"({Config.TextLen} text + {Config.ImageLen} image)");
        ids.CheckRange(Config.Vocab, "token id");
    }

    /// <summary>Full sequences [B, L + G*G] -> the weighted next-token loss: w_text (mean over non-padding text
    /// targets) + (1 - w_text) (mean over image targets), w_text = <see cref="DalleConfig.TextLossWeight"/>. Text
    /// slots are scored over the text vocabulary and image slots over the image codes (see <see cref="TargetMask"/>).
    /// With
    /// <paramref name="imageOnly"/>, the mean over image targets alone (the validation figure: nats per image
    /// token). <paramref name="whole"/>: when these sequences are one shard of a batch (data-parallel training), that
    /// batch's size and text-target count (<see cref="TextTargets"/> summed over the shards), so the means are over the
    /// whole batch and the shards' losses sum to its loss.</summary>
    public Tensor Loss(IntTensor seq, int padId, bool imageOnly = false, float dropout = 0f, Rng? rng = null,
        (int Batch, int TextTargets)? whole = null)
    {
        var c = Config;
        if (seq.Shape.Length != 2 || seq.Shape[1] != c.SeqLen)
            Throw.Argument($"DALL-E training sequences must be [B, {c.SeqLen}], got {Shape.Format(seq.Shape)}");
        int b = seq.Shape[0], t = c.SeqLen - 1;
        var inp = new int[b * t]; var tgt = new int[b * t]; var w = new float[b * t];
        for (int i = 0; i < b; i++)
        {
            Array.Copy(seq.Data, i * c.SeqLen, inp, i * t, t);
            Array.Copy(seq.Data, i * c.SeqLen + 1, tgt, i * t, t);
        }
        var (batch, textTargets) = whole ?? (b, TextTargets(seq, padId));
        float wText = imageOnly || textTargets == 0 ? 0f : c.TextLossWeight / textTargets;
        float wImage = (wText > 0 ? 1f - c.TextLossWeight : 1f) / (batch * c.ImageLen);
        for (int i = 0; i < b; i++)
            for (int j = 0; j < t; j++)
                w[i * t + j] = j >= c.TextLen - 1 ? wImage                         // target j + 1 is an image token
                    : tgt[i * t + j] != padId ? wText : 0f;
        var logits = Ops.Add(Forward(new IntTensor(inp, b, t), dropout, rng), TargetMask());   // (B, T-1, V)
        var loss = Ops.CrossEntropy(Ops.Reshape(logits, b * t, c.Vocab), new IntTensor(tgt, b * t), rowWeights: w);
        // CrossEntropy divides by the weights' sum: 1 for a whole batch, this shard's part of 1 for a shard
        return whole == null ? loss : Ops.MulScalar(loss, (float)w.Sum(x => (double)x));
    }

    /// <summary>How many next-token targets of <paramref name="seq"/> [B, L + G*G] are text, not padding (the count
    /// the text term of <see cref="Loss"/> averages over).</summary>
    public int TextTargets(IntTensor seq, int padId)
    {
        int b = seq.Shape[0], n = 0, len = Config.SeqLen;
        for (int i = 0; i < b; i++)
            for (int j = 1; j < Config.TextLen; j++) if (seq.Data[i * len + j] != padId) n++;
        return n;
    }

    private Tensor? targetMask;

    /// <summary>[1, T-1, V]: 0 where the next token may be, -1e9 where it cannot (text slots predict text ids, image
    /// slots image ids), so the softmax of each position runs over its own vocabulary, as sampling does.</summary>
    private Tensor TargetMask()
    {
        if (targetMask != null) return targetMask;
        var c = Config;
        int t = c.SeqLen - 1;
        var m = new float[t * c.Vocab];
        for (int j = 0; j < t; j++)
        {
            bool image = j >= c.TextLen - 1;
            for (int k = 0; k < c.Vocab; k++) if ((k >= c.TextVocab) != image) m[j * c.Vocab + k] = -1e9f;
        }
        return targetMask = TensorScope.Outside(() => Tensor.FromArray(m, 1, t, c.Vocab));
    }
}
