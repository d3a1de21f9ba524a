using Pictor.Engine;
using Pictor.Nn;

namespace Pictor.Models.Unclip;

// Dimension legend: B batch, E CLIP embedding width, K extra context tokens, Dc the UNet's context width.

/// <summary>
/// How unCLIP's decoder reads a CLIP image embedding (Ramesh et al. 2022, section 2.1, "Decoder": "projecting and
/// adding CLIP embeddings to the existing timestep embedding, and by projecting CLIP embeddings into four extra tokens
/// of context that are concatenated to the sequence of outputs from the GLIDE text encoder"): one linear map from the
/// embedding to K context tokens for the UNet's cross-attention, and the embedding itself as the UNet's pooled input
/// (whose own linear map adds it to the timestep embedding). The embedding comes in scaled by sqrt(E) (unit variance
/// per entry); the zero vector is the dropped embedding of classifier-free guidance.
/// </summary>
public sealed class EmbeddingTokens : Module
{
    public int EmbedDim { get; }
    public int Tokens { get; }
    public int ContextDim { get; }
    private readonly Linear proj;
    private readonly LayerNorm norm;

    public EmbeddingTokens(Rng rng, int embedDim, int tokens, int contextDim)
    {
        if (tokens < 1) Throw.Argument($"the decoder needs at least one embedding token, got {tokens}");
        EmbedDim = embedDim; Tokens = tokens; ContextDim = contextDim;
        proj = Child("proj", new Linear(rng, embedDim, tokens * contextDim));
        norm = Child("norm", new LayerNorm(contextDim));
    }

    /// <summary>Scaled embeddings [B, E] -> (context tokens [B, K, Dc], pooled [B, E]).</summary>
    public (Tensor Tokens, Tensor Pooled) Forward(Tensor embedding)
    {
        if (embedding.Rank != 2 || embedding.Shape[1] != EmbedDim)
            Throw.Argument($"the decoder's embedding must be [B, {EmbedDim}], got {Shape.Format(embedding.Shape)}");
        int b = embedding.Shape[0];
        var tokens = norm.Forward(Ops.Reshape(proj.Forward(embedding), b, Tokens, ContextDim));   // (B, K, Dc)
        return (tokens, embedding);
    }
}
