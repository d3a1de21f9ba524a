using Pictor.Engine;
using Pictor.Models.Transformer;
using Pictor.Nn;

namespace Pictor.Models.Text;

// Dimension legend: B batch, S text tokens (fixed context), D encoder width, Dc context width for the UNet.

/// <summary>Text encoder configuration. The context length S is the tokenizer's fixed model input length.</summary>
public sealed record TextEncoderConfig(
    int Vocab, int Context = 16, int Layers = 2, int Dim = 128, int Heads = 4, int OutDim = 128);

/// <summary>
/// Bidirectional transformer over BPE token ids (CLIP's text tower without the causal mask): token + learned position
/// embeddings, pre-LN blocks, final LayerNorm, a linear projection to the UNet's context width. Returns the token
/// sequence (for cross-attention) and a pooled vector: the mean over the S positions (padding included, so the empty
/// caption has a well-defined, learnable embedding too).
/// </summary>
public sealed class TextEncoder : Module
{
    public TextEncoderConfig Config { get; }
    private readonly Embedding tokEmb;
    private readonly Tensor posEmb;
    private readonly List<ArBlock> blocks = new();
    private readonly LayerNorm lnF;
    private readonly Linear proj;

    public TextEncoder(TextEncoderConfig cfg, Rng rng)
    {
        Config = cfg;
        tokEmb = Child("tok_emb", new Embedding(rng, cfg.Vocab, cfg.Dim, std: 0.02f));
        posEmb = Param("pos_emb", Init.Normal(rng, 0.02f, cfg.Context, cfg.Dim));
        for (int i = 0; i < cfg.Layers; i++) blocks.Add(Child($"blocks.{i}", new ArBlock(rng, cfg.Dim, cfg.Heads)));
        lnF = Child("ln_f", new LayerNorm(cfg.Dim));
        proj = Child("proj", new Linear(rng, cfg.Dim, cfg.OutDim));
    }

    /// <summary>ids [B, S] -> (tokens [B, S, Dc], pooled [B, Dc]).</summary>
    public (Tensor Tokens, Tensor Pooled) Forward(IntTensor ids)
    {
        if (ids.Shape.Length != 2 || ids.Shape[1] != Config.Context)
            Throw.Argument($"text ids must be [B, {Config.Context}], got {Shape.Format(ids.Shape)}; encode captions "
                + $"with the model's tokenizer and context length");
        var x = Ops.Add(tokEmb.Forward(ids), posEmb);                 // (B, S, D)
        foreach (var b in blocks) x = b.Forward(x, causal: false);
        var tokens = proj.Forward(lnF.Forward(x));                     // (B, S, Dc)
        return (tokens, Ops.Mean(tokens, [1]));                        // (B, Dc)
    }
}
