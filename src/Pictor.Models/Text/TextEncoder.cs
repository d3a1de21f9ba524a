using Pictor.Engine;
using Pictor.Models.Transformer;
using Pictor.Nn;

namespace Pictor.Models.Text;

// Dimension legend: B batch, S text tokens (fixed context), D encoder width, Dc context width for the UNet.

/// <summary>Text encoder configuration. The context length S is the tokenizer's fixed model input length. PhraseWidth
/// (odd, 0 = none) mixes each token's input embedding with its neighbours' before the first block (see
/// <see cref="TextEncoder"/>). Rotary adds rotary position embedding to every block's attention, beside the learned
/// absolute positions.</summary>
public sealed record TextEncoderConfig(int Vocab, int Context = 16, int Layers = 2, int Dim = 128, int Heads = 4, int OutDim = 128, int PhraseWidth = 0,
    bool Rotary = false);

/// <summary>
/// Bidirectional transformer over BPE token ids (CLIP's text tower without the causal mask): token + learned position
/// embeddings, pre-LN blocks, final LayerNorm, a linear projection to the UNet's context width. Returns the token
/// sequence (for cross-attention) and a pooled vector: the mean over the S positions (padding included, so the empty
/// caption has a well-defined, learnable embedding too).
/// With <c>PhraseWidth</c> k > 0 the input embeddings first pass a residual phrase mixer, a 1-D convolution of width k
/// over the sequence (zero beyond its ends): x_i += W [x_{i-k/2}; ..; x_{i+k/2}] + b. A colour word then carries the
/// shape word beside it from the first layer on ("red" in "a red circle" is red-next-to-circle), so which shape goes
/// with which colour is a first-order fact of every token instead of something attention has to learn
/// (docs/derivations/binding.md, "Phrase mixing").
/// With <c>Rotary</c> every block's attention also turns queries and keys by their positions (<see cref="Pictor.Nn.Rotary"/>),
/// so attending to "the next word" is one pattern wherever the word stands ("Relative positions" in binding.md); it
/// adds no parameters and leaves each token's input as it is.
/// </summary>
public sealed class TextEncoder : Module
{
    public TextEncoderConfig Config { get; }
    private readonly Embedding tokEmb;
    private readonly Tensor posEmb;
    private readonly List<ArBlock> blocks = new();
    private readonly LayerNorm lnF;
    private readonly Linear proj;
    private readonly Linear? phrase;   // (k D) -> D, when PhraseWidth > 0

    public TextEncoder(TextEncoderConfig cfg, Rng rng)
    {
        Config = cfg;
        tokEmb = Child("tok_emb", new Embedding(rng, cfg.Vocab, cfg.Dim, std: 0.02f));
        posEmb = Param("pos_emb", Init.Normal(rng, 0.02f, cfg.Context, cfg.Dim));
        for (int i = 0; i < cfg.Layers; i++) blocks.Add(Child($"blocks.{i}", new ArBlock(rng, cfg.Dim, cfg.Heads, cfg.Rotary)));
        lnF = Child("ln_f", new LayerNorm(cfg.Dim));
        proj = Child("proj", new Linear(rng, cfg.Dim, cfg.OutDim));
        if (cfg.PhraseWidth < 0 || (cfg.PhraseWidth % 2 == 0 && cfg.PhraseWidth != 0) || cfg.PhraseWidth > cfg.Context)
            Throw.Argument($"text phrase_width {cfg.PhraseWidth} must be 0 (none) or an odd width up to the context length {cfg.Context}, such as 3");
        // Created last, so encoders without it draw exactly the same initial weights as before it existed.
        if (cfg.PhraseWidth > 0) phrase = Child("phrase", new Linear(rng, cfg.PhraseWidth * cfg.Dim, cfg.Dim));
    }

    /// <summary>ids [B, S] -> (tokens [B, S, Dc], pooled [B, Dc]).</summary>
    public (Tensor Tokens, Tensor Pooled) Forward(IntTensor ids)
    {
        if (ids.Shape.Length != 2 || ids.Shape[1] != Config.Context)
            Throw.Argument($"text ids must be [B, {Config.Context}], got {Shape.Format(ids.Shape)}; encode captions with the model's tokenizer and context length");
        var x = Ops.Add(tokEmb.Forward(ids), posEmb);                 // (B, S, D)
        if (phrase != null) x = Ops.Add(x, phrase.Forward(Neighbours(x, Config.PhraseWidth)));
        foreach (var b in blocks) x = b.Forward(x, causal: false);
        var tokens = proj.Forward(lnF.Forward(x));                     // (B, S, Dc)
        return (tokens, Ops.Mean(tokens, [1]));                        // (B, Dc)
    }

    /// <summary>x [B, S, D] -> [B, S, k D]: position i holds x_{i-k/2}, .., x_{i+k/2} side by side, zeros past either end.</summary>
    public static Tensor Neighbours(Tensor x, int k)
    {
        int b = x.Shape[0], s = x.Shape[1], d = x.Shape[2], h = k / 2;
        var parts = new Tensor[k];
        for (int j = 0; j < k; j++)
        {
            int o = j - h, n = s - Math.Abs(o);                        // x shifted so that position i reads x_{i+o}
            if (n <= 0) { parts[j] = Tensor.Zeros(b, s, d); continue; }
            var kept = Ops.Narrow(x, 1, Math.Max(o, 0), n);
            parts[j] = o == 0 ? x
                : o > 0 ? Ops.Concat([kept, Tensor.Zeros(b, o, d)], 1)
                : Ops.Concat([Tensor.Zeros(b, -o, d), kept], 1);
        }
        return Ops.Concat(parts, 2);
    }
}
