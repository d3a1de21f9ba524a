using Pictor.Engine;
using Pictor.Models.Transformer;
using Pictor.Models.Unet;
using Pictor.Nn;

namespace Pictor.Models.Unclip;

// Dimension legend: B batch, S CLIP text tokens, E CLIP embedding width, D transformer width, T = S + 4 positions.

/// <summary>The unCLIP prior's transformer: width D, its layers and heads, over S CLIP text tokens of width
/// E.</summary>
public sealed record PriorConfig(int EmbedDim, int TextContext, int Dim = 256, int Layers = 4, int Heads = 4,
    int TimeSinusoidDim = 64)
{
    /// <summary>Positions the transformer reads: the text tokens, the pooled text embedding, the timestep, the noised
    /// image embedding and the learned query whose output is the prediction.</summary>
    public int Positions => TextContext + 4;
}

/// <summary>
/// The diffusion prior of unCLIP (Ramesh et al. 2022, "Hierarchical Text-Conditional Image Generation with CLIP
/// Latents", section 2.1, "Diffusion prior"): a transformer over the sequence [CLIP text tokens; the CLIP text
/// embedding; the timestep embedding; the noised CLIP image embedding z_t; a final learned query], whose output at
/// the query is the prediction of the clean image embedding z (the paper predicts z directly, with the MSE on it).
/// The paper's decoder-only causal mask is replaced by full attention: the prediction is read at the last position,
/// which sees every other one either way. Caption dropout (empty caption) gives the unconditional prediction for
/// classifier-free guidance. The embeddings are unit vectors scaled by sqrt(E) (unit variance per entry), as the
/// public DALLE2-pytorch's DiffusionPrior does.
/// </summary>
public sealed class DiffusionPrior : Module
{
    public PriorConfig Config { get; }
    private readonly Linear textIn, pooledIn, timeFc1, timeFc2, xIn, outProj;
    private readonly Tensor query, posEmb;
    private readonly List<ArBlock> blocks = new();
    private readonly LayerNorm lnF;

    public DiffusionPrior(PriorConfig cfg, Rng rng)
    {
        Config = cfg;
        textIn = Child("text_in", new Linear(rng, cfg.EmbedDim, cfg.Dim));
        pooledIn = Child("pooled_in", new Linear(rng, cfg.EmbedDim, cfg.Dim));
        timeFc1 = Child("time.fc1", new Linear(rng, cfg.TimeSinusoidDim, cfg.Dim));
        timeFc2 = Child("time.fc2", new Linear(rng, cfg.Dim, cfg.Dim));
        xIn = Child("x_in", new Linear(rng, cfg.EmbedDim, cfg.Dim));
        query = Param("query", Init.Normal(rng, 0.02f, 1, 1, cfg.Dim));
        posEmb = Param("pos_emb", Init.Normal(rng, 0.02f, cfg.Positions, cfg.Dim));
        for (int i = 0; i < cfg.Layers; i++) blocks.Add(Child($"blocks.{i}", new ArBlock(rng, cfg.Dim, cfg.Heads)));
        lnF = Child("ln_f", new LayerNorm(cfg.Dim));
        outProj = Child("out", new Linear(rng, cfg.Dim, cfg.EmbedDim));
    }

    /// <summary>zt [B, E] noised (scaled) image embeddings at steps t [B], text tokens [B, S, E], text embeddings
    /// [B, E] -> the clean image embedding's estimate [B, E] (scaled).</summary>
    public Tensor Forward(Tensor zt, ReadOnlySpan<float> t, Tensor textTokens, Tensor textEmbedding)
    {
        var c = Config;
        int b = zt.Shape[0];
        if (zt.Rank != 2 || zt.Shape[1] != c.EmbedDim)
            Throw.Argument($"prior input must be [B, {c.EmbedDim}], got {Shape.Format(zt.Shape)}");
        if (t.Length != b) Throw.Argument($"prior: {t.Length} timesteps for a batch of {b}");
        if (textTokens.Rank != 3 || textTokens.Shape[0] != b || textTokens.Shape[1] != c.TextContext
            || textTokens.Shape[2] != c.EmbedDim)
            Throw.Argument($"prior text tokens must be [{b}, {c.TextContext}, {c.EmbedDim}], got "
                + $"{Shape.Format(textTokens.Shape)}");
        var temb = timeFc2.Forward(Ops.Silu(timeFc1.Forward(TimestepEmbedding.Compute(t, c.TimeSinusoidDim))));
        var seq = Ops.Concat([
            textIn.Forward(textTokens),                                           // (B, S, D)
            Ops.Reshape(pooledIn.Forward(textEmbedding), b, 1, c.Dim),            // (B, 1, D)
            Ops.Reshape(temb, b, 1, c.Dim),                                       // (B, 1, D)
            Ops.Reshape(xIn.Forward(zt), b, 1, c.Dim),                            // (B, 1, D)
            Ops.Add(Tensor.Zeros(b, 1, c.Dim), query),                            // (B, 1, D)
        ], 1);
        var h = Ops.Add(seq, posEmb);                                             // (B, T, D)
        foreach (var blk in blocks) h = blk.Forward(h, causal: false);
        var last = Ops.Reshape(Ops.Contiguous(Ops.Narrow(lnF.Forward(h), 1, c.Positions - 1, 1)), b, c.Dim);
        return outProj.Forward(last);                                             // (B, E)
    }
}
