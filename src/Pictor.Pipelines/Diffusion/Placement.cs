using Pictor.Engine;
using Pictor.Imaging.Datasets;
using Pictor.Text;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Diffusion;

// Dimension legend: B batch, S text tokens.

/// <summary>
/// The placement loss ('train diffusion --placement W', with a preset that has token places such as xs-rel-place):
/// every caption token that names exactly one object of the image should be placed, by the UNet's
/// <see cref="Models.Unet.TokenPlaces"/> head, at that object's centre,
///
///     L_place = (1/|P|) sum_{(b, s) in P} |m[b, s] - c[b, s]|^2,
///
/// with m [B, S, 2] the predicted places and c the centre of the object's box in the coordinates of
/// <see cref="Models.Unet.UnetModel.CoordinateGrid"/> (x_j = (2 j + 1) / W - 1: a box [x0, x1) in pixels has its centre
/// at (x0 + x1) / W - 1). P is the set of placed (image, token) pairs: which word names which object is
/// <see cref="Grounding.NamedObjects"/>, as for the grounding loss; a word naming several objects ("three cyan
/// circles") is not placed, since one place cannot stand for several, and neither is a word naming none ("left", "of").
/// In "a red circle left of a blue square" the head must put "red" and "circle" left of "blue" and "square": the side
/// of each colour, the exclusive-or of word order and relation word, as a supervised regression from the caption
/// (docs/derivations/binding.md, "Token places").
/// </summary>
public static class Placement
{
    /// <summary>Targets for one caption, laid out as the model's ids (bos at 0): dst [context * 2] (overwritten) holds
    /// each placed position's (x, y); the result says which positions are placed. <paramref name="mirrored"/>: the
    /// image was flipped left-right (<see cref="HorizontalFlip"/>), so x is negated. An empty caption places
    /// nothing.</summary>
    public static bool[] Targets(BpeTokenizer tok, string caption, IReadOnlyList<ImageObject> objects, int context,
        int size, bool mirrored, Span<float> dst)
    {
        if (dst.Length != context * 2)
            throw new ArgumentException($"placement targets need {context}x2 floats, got {dst.Length}");
        dst.Clear();
        var placed = new bool[context];
        foreach (var (s, named) in Grounding.NamedObjects(tok, caption, objects, context))
        {
            if (named.Count != 1) continue;
            var o = named[0];
            float cx = (o.X0 + o.X1) / size - 1f, cy = (o.Y0 + o.Y1) / size - 1f;
            dst[2 * s] = mirrored ? -cx : cx; dst[2 * s + 1] = cy;
            placed[s] = true;
        }
        return placed;
    }

    /// <summary><see cref="Targets"/> for a batch of unmirrored images: targets [B, context, 2] and placed [B *
    /// context].</summary>
    public static (float[] Targets, bool[] Placed) BatchTargets(BpeTokenizer tok, IReadOnlyList<string> captions,
        IReadOnlyList<IReadOnlyList<ImageObject>> objects, int context, int size)
    {
        if (captions.Count != objects.Count)
            throw new ArgumentException($"placement: {captions.Count} captions for {objects.Count} images' objects");
        var targets = new float[captions.Count * context * 2]; var placed = new bool[captions.Count * context];
        for (int i = 0; i < captions.Count; i++)
            Targets(tok, captions[i], objects[i], context, size, false, targets.AsSpan(i * context * 2, context * 2))
                .CopyTo(placed, i * context);
        return (targets, placed);
    }

    /// <summary>places m [B, S, 2] (with their gradient), targets [B * S * 2], placed [B * S] -> the scalar L_place
    /// (zero, with no graph, when nothing is placed).</summary>
    public static Tensor Loss(Tensor places, float[] targets, bool[] placed)
    {
        if (places.Rank != 3 || places.Shape[2] != 2)
            throw new ArgumentException($"placement: token places must be [B, S, 2], got {Shape.Format(places.Shape)}");
        int b = places.Shape[0], s = places.Shape[1];
        if (targets.Length != b * s * 2 || placed.Length != b * s)
            throw new ArgumentException($"placement: {targets.Length} target floats and {placed.Length} flags for "
                + $"places {Shape.Format(places.Shape)}");
        int count = placed.Count(p => p);
        if (count == 0) return Tensor.Scalar(0f);
        var err = Ops.Sum(Ops.Square(Ops.Sub(places, Tensor.FromArray(targets, b, s, 2))), [2]);             // (B, S)
        var mask = Tensor.FromArray(placed.Select(p => p ? 1f : 0f).ToArray(), b, s);                         // (B, S)
        return Ops.MulScalar(Ops.Sum(Ops.Mul(err, mask)), 1f / count);
    }
}
