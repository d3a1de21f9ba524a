using System.Text.RegularExpressions;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Diffusion;

/// <summary>
/// Mirror augmentation that keeps the caption true (`train diffusion --hflip P`): the image is mirrored left to right
/// and the words "left" and "right" trade places ("a red circle left of a blue square" is then the truth about the
/// mirrored image, "a red circle right of a blue square"). Each mirrored scene is a counterfactual of its original that
/// differs only in which way the relation points, which is exactly what a caption's "left of" has to teach. Only for
/// data whose content is mirror-symmetric apart from such words (the shapes set: circles, squares and upright
/// triangles are symmetric); not for images with writing or handed designs (emoji: keycaps, arrows, flags).
/// </summary>
public static partial class HorizontalFlip
{
    /// <summary>Mirrors a [C, H, W] image (row-major planes) left to right in place.</summary>
    public static void MirrorInPlace(Span<float> chw, int channels, int height, int width)
    {
        if (chw.Length != channels * height * width)
            throw new ArgumentException($"image of {chw.Length} values is not [{channels}, {height}, {width}]");
        for (int r = 0; r < channels * height; r++) chw.Slice(r * width, width).Reverse();
    }

    /// <summary>The caption of the mirrored image: whole words "left" and "right" swapped, in any case ("left-facing"
    /// becomes "right-facing"; "leftover" stays).</summary>
    public static string MirrorCaption(string caption) => Side().Replace(caption, m =>
    {
        string other = m.Value.Equals("left", StringComparison.OrdinalIgnoreCase) ? "right" : "left";
        if (m.Value.All(char.IsUpper)) return other.ToUpperInvariant();
        return char.IsUpper(m.Value[0]) ? char.ToUpperInvariant(other[0]) + other[1..] : other;
    });

    [GeneratedRegex(@"\b(left|right)\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Side();
}
