using Pictor.Engine;
using Pictor.Nn;

namespace Pictor.Models.Unet;

// Dimension legend: B batch, S text tokens, Dc text width.

/// <summary>
/// Token places: one head for the whole UNet that says where each text token's object is,
///
///     m_s = tanh(W c_s + b) in [-1, 1]^2   (x, y as <see cref="UnetModel.CoordinateGrid"/>: x right, y down),
///
/// read by every ResBlock's <see cref="TokenBlobs"/> (built without centres of their own), so a colour word's channels
/// and its shape word's channels are put at the places this head predicts. Unlike per-block blob centres, these are
/// one quantity with a meaning that the data can supervise: a token naming one object should sit at that object's
/// centre ('train diffusion --placement W', Training/Placement.cs). Which side "red" goes to in "a red circle left of a
/// blue square" is then learned as a regression from the caption, with its own loss, rather than only through the
/// denoising loss at the noisiest steps (docs/derivations/binding.md, "Token places").
/// </summary>
public sealed class TokenPlaces : Module
{
    private readonly Linear head;

    public TokenPlaces(Rng rng, int contextDim) => head = Child("fc", new Linear(rng, contextDim, 2));

    /// <summary>context [B, S, Dc] -> centres [B, S, 2] in [-1, 1].</summary>
    public Tensor Forward(Tensor context)
    {
        if (context.Rank != 3)
            Throw.Argument($"token places need a context [B, S, Dc], got {Shape.Format(context.Shape)}");
        return Ops.Tanh(head.Forward(context));
    }
}
