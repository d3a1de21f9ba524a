using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Datasets;

namespace Pictor.Pipelines.Training;

/// <summary>
/// A split of a captioned image folder decoded once into memory as RGB bytes at the training size (composited over
/// white, centre-cropped square, area-resized), plus its captions. Small sets (shapes, emoji: tens of MB) fit easily;
/// for larger ones use 'pictor data pack' and the memory-mapped cache.
/// </summary>
public sealed class ImageCaptionSet
{
    public int Count => Captions.Count;
    public int Size { get; }
    public List<IReadOnlyList<string>> Captions { get; } = new();
    /// <summary>Per image, the objects its metadata lists, their boxes moved into the training image's pixels (after
    /// the centre crop and resize); empty when the metadata lists none. What --grounding reads.</summary>
    public List<IReadOnlyList<ImageObject>> Objects { get; } = new();
    /// <summary>Whether any image lists an object with a box.</summary>
    public bool HasObjects => Objects.Any(o => o.Count > 0);
    private readonly byte[] rgb;   // (N, 3, Size, Size), N: the images that decoded

    /// <summary>Decodes <paramref name="items"/> at size x size. An image that does not decode is skipped with its
    /// captions and objects (one warning line) or, with a strict <paramref name="badImages"/>, is an error.</summary>
    public ImageCaptionSet(IReadOnlyList<CaptionedImage> items, int size, BadImagePolicy? badImages = null)
    {
        if (items.Count == 0) throw new ArgumentException("the dataset split has no images");
        badImages ??= BadImagePolicy.Skip;
        Size = size;
        int per = 3 * size * size;
        rgb = new byte[(long)items.Count * per <= int.MaxValue ? items.Count * per
            : throw new ArgumentException($"{items.Count} images at {size}x{size} do not fit in memory at once; "
                + "pack them with 'pictor data pack'")];
        for (int i = 0; i < items.Count; i++)
        {
            var img = badImages.Load(items[i])?.CompositeOver(255, 255, 255);
            if (img == null) continue;
            int k = Count;   // this image's place among the kept ones
            Objects.Add(ToTrainingPixels(items[i].Objects, img.Width, img.Height, size));
            if (img.Width != size || img.Height != size) img = img.CenterCropSquare().Resize(size, size);
            for (int p = 0; p < size * size; p++)
                for (int c = 0; c < 3; c++) rgb[k * per + c * size * size + p] = img.Rgba[4 * p + c];
            Captions.Add(items[i].Captions);
        }
        if (Count == 0)
            throw BadImagePolicy.NoneDecoded(items.Count, $"'{Path.GetDirectoryName(items[0].ImagePath)}'");
        if (Count < items.Count) Array.Resize(ref rgb, Count * per);
    }

    /// <summary>Boxes in a w x h file's pixels -> boxes in the size x size training image: the square centre crop's
    /// offset (as <see cref="Image.CenterCrop"/> takes it), then the scale; clipped to the image.</summary>
    public static IReadOnlyList<ImageObject> ToTrainingPixels(IReadOnlyList<ImageObject>? objects, int w, int h,
        int size)
    {
        if (objects == null || objects.Count == 0) return [];
        int m = Math.Min(w, h), ox = (w - m) / 2, oy = (h - m) / 2;
        float s = (float)size / m;
        return objects.Select(o => o with
        {
            X0 = Math.Clamp((o.X0 - ox) * s, 0, size), X1 = Math.Clamp((o.X1 - ox) * s, 0, size),
            Y0 = Math.Clamp((o.Y0 - oy) * s, 0, size), Y1 = Math.Clamp((o.Y1 - oy) * s, 0, size),
        }).ToList();
    }

    /// <summary>Reads DIR/train and DIR/val (image folders with metadata.jsonl); <paramref name="badImages"/>: what an
    /// image that does not decode does (skipped with a warning when null).</summary>
    public static (ImageCaptionSet Train, ImageCaptionSet Val) LoadSplits(string dir, int size,
        BadImagePolicy? badImages = null)
    {
        string train = Path.Combine(dir, "train"), val = Path.Combine(dir, "val");
        if (!Directory.Exists(train) || !Directory.Exists(val))
            throw new DirectoryNotFoundException($"'{dir}' must hold train/ and val/ image folders "
                + "(as 'pictor data shapes' and 'pictor data emoji' write them)");
        return (new ImageCaptionSet(CaptionedImages.ReadImageFolder(train), size, badImages),
                new ImageCaptionSet(CaptionedImages.ReadImageFolder(val), size, badImages));
    }

    /// <summary>Image i as floats in [-1, 1], [3, Size, Size], into <paramref name="dst"/>.</summary>
    public void Read(int i, Span<float> dst)
    {
        int per = 3 * Size * Size;
        var src = rgb.AsSpan(i * per, per);
        for (int j = 0; j < per; j++) dst[j] = src[j] / 127.5f - 1f;
    }

    /// <summary>A seeded permutation of 0..Count-1 for one epoch (Fisher-Yates).</summary>
    public int[] Order(ulong seed, long epoch) => TrainingSession.EpochOrder(seed, epoch, Count);
}
