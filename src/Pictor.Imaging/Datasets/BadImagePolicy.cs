namespace Pictor.Imaging.Datasets;

/// <summary>
/// What a dataset reader does with an image file that does not decode (corrupt, truncated, over the size cap, or a
/// format Pictor does not read): by default the file is skipped, with its captions and objects, and one warning line
/// names it and the reason; everything else in the set is kept. <paramref name="Strict"/> (the CLI's --strict) makes
/// such a file an error instead. A file that is missing or unreadable (permissions) is an error either way: that is
/// not the file's content.
/// </summary>
/// <param name="Strict">Stop at the first image that does not decode, with a
/// <see cref="DatasetFormatException"/>.</param>
/// <param name="Warn">Where the one warning line per skipped file goes; null: standard error.</param>
public sealed record BadImagePolicy(bool Strict = false, Action<string>? Warn = null)
{
    /// <summary>Skip, warning on standard error: what readers do when they are given no policy.</summary>
    public static BadImagePolicy Skip { get; } = new();

    /// <summary>Decodes the item's image; null when it does not decode and is skipped (after its warning).</summary>
    public Image? Load(CaptionedImage item)
    {
        try { return Image.Load(item.ImagePath); }
        catch (ImageFormatException e)
        {
            if (Strict)
                throw new DatasetFormatException($"{e.Message}. Strict mode (--strict) stops at an image that does " +
                    "not decode; leave --strict out to skip such files with a warning");
            int n = item.Captions.Count;
            string captions = $"its {n} caption{(n == 1 ? "" : "s")}";
            (Warn ?? Console.Error.WriteLine)(Decoding.ImageDecoder.OneLine(
                $"warning: skipped {e.Message} ({captions} dropped with it; --strict makes this an error)"));
            return null;
        }
    }

    /// <summary>The error when every image of a set was skipped.</summary>
    public static DatasetFormatException NoneDecoded(int count, string where) =>
        new($"none of the {count} images in {where} decodes (each is named in a warning above); " +
            $"the readable formats are {Decoding.ImageDecoder.Supported}");
}
