using Pictor.Imaging.Datasets;
using Pictor.Text;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Diffusion;

/// <summary>
/// Which caption tokens name which object, as masks over the image: the targets of <see cref="GroundingLoss"/>
/// ('train diffusion --grounding W'). A token is grounded when its word names one of an object's words (equal, or
/// that word's plural: "circles" names "circle"); its mask is the union of the boxes of the objects it names, as each
/// pixel's covered fraction. For 'pictor data shapes' captions ("a red circle left of a blue square") the colour and
/// shape words of each object are grounded in that object's box; "three cyan circles" grounds "cyan" and "circles" in
/// all three boxes; place and relation words ("left", "top") name no object and are not grounded.
/// </summary>
public static class Grounding
{
    /// <summary>Whether caption word <paramref name="word"/> names object word <paramref name="objectWord"/>.</summary>
    public static bool Names(string word, string objectWord) =>
        word.Length > 0 && (word == objectWord || word == objectWord + "s" || word == objectWord + "es");

    /// <summary>
    /// Masks for one caption, laid out as <see cref="BpeTokenizer.EncodeForModel"/> lays out its ids (bos at 0, the
    /// caption's tokens from 1, cut at context - 1): dst [context, size*size] (overwritten) holds, for each grounded
    /// position, the fraction of every pixel that the named objects' boxes cover (the union: the largest fraction);
    /// the result says which positions are grounded. <paramref name="mirrored"/>: the image was flipped left-right
    /// (<see cref="HorizontalFlip"/>), so the boxes are too. An empty caption (the unconditional one) grounds nothing.
    /// </summary>
    public static bool[] TokenMasks(BpeTokenizer tok, string caption, IReadOnlyList<ImageObject> objects, int context,
        int size, bool mirrored, Span<float> dst)
    {
        if (dst.Length != context * size * size)
            throw new ArgumentException($"grounding masks need {context}x{size}x{size} floats, got {dst.Length}");
        dst.Clear();
        var grounded = new bool[context];
        foreach (var (s, named) in NamedObjects(tok, caption, objects, context))
        {
            grounded[s] = true;
            var m = dst.Slice(s * size * size, size * size);
            foreach (var o in named)
            {
                float x0 = mirrored ? size - o.X1 : o.X0, x1 = mirrored ? size - o.X0 : o.X1;
                for (int y = 0; y < size; y++)
                {
                    float cy = Overlap(y, o.Y0, o.Y1);
                    if (cy <= 0) continue;
                    for (int x = 0; x < size; x++) m[y * size + x] = Math.Max(m[y * size + x], cy * Overlap(x, x0, x1));
                }
            }
        }
        return grounded;
    }

    /// <summary>Every token position (as <see cref="BpeTokenizer.EncodeForModel"/> lays out ids: bos at 0, cut at
    /// context - 1) whose word names at least one object, with the objects it names. Nothing for an empty
    /// caption.</summary>
    public static IEnumerable<(int Position, List<ImageObject> Named)> NamedObjects(BpeTokenizer tok, string caption,
        IReadOnlyList<ImageObject> objects, int context)
    {
        if (string.IsNullOrWhiteSpace(caption) || objects.Count == 0) yield break;
        foreach (var (word, start, count) in tok.WordSpans(caption))
        {
            var named = objects.Where(o => o.Words.Any(w => Names(word, w))).ToList();
            if (named.Count == 0) continue;
            // position 0 is bos; the last kept slot is eos
            for (int s = 1 + start; s < 1 + start + count && s < context - 1; s++)
                yield return (s, named);
        }
    }

    /// <summary><see cref="TokenMasks"/> for a batch of unmirrored images: masks [B, context, size*size] and grounded
    /// [B * context], image i from captions[i] and objects[i].</summary>
    public static (float[] Masks, bool[] Grounded) BatchMasks(BpeTokenizer tok, IReadOnlyList<string> captions,
        IReadOnlyList<IReadOnlyList<ImageObject>> objects, int context, int size)
    {
        if (captions.Count != objects.Count)
            throw new ArgumentException($"grounding: {captions.Count} captions for {objects.Count} images' objects");
        int per = context * size * size;
        var masks = new float[captions.Count * per]; var grounded = new bool[captions.Count * context];
        for (int i = 0; i < captions.Count; i++)
            TokenMasks(tok, captions[i], objects[i], context, size, false, masks.AsSpan(i * per, per))
                .CopyTo(grounded, i * context);
        return (masks, grounded);
    }

    /// <summary>The length of [p, p + 1) inside [a, b).</summary>
    private static float Overlap(int p, float a, float b) => Math.Max(0f, Math.Min(p + 1f, b) - Math.Max(p, a));
}
