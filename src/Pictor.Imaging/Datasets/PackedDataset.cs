using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using Pictor.Engine;
using Pictor.Engine.IO;

namespace Pictor.Imaging.Datasets;

/// <summary>
/// A dataset decoded once into one binary file and memory-mapped, so an epoch does no image decoding. Layout
/// (little-endian): magic "PICTORDS", u32 version (1), u32 count, u32 width, u32 height, u32 channels (3);
/// u64 caption-block offset; then count * height * width * 3 bytes of RGB (images composited over white, resized);
/// then the caption block: per image a u32 caption count and per caption a u32 byte length and UTF-8 bytes.
/// </summary>
public sealed class PackedDataset : IDisposable
{
    private static readonly byte[] Magic = "PICTORDS"u8.ToArray();
    public const int Version = 1;
    private const int HeaderBytes = 8 + 4 * 5 + 8;

    private readonly MemoryMappedFile file;
    private readonly MemoryMappedViewAccessor view;
    private readonly string[][] captions;
    public int Count { get; }
    public int Width { get; }
    public int Height { get; }
    public string Path { get; }

    private PackedDataset(string path)
    {
        Path = path;
        long len = new FileInfo(path).Length;
        if (len < HeaderBytes)
            throw new DatasetFormatException($"'{path}' is {len} bytes, too short for a packed dataset; rebuild it");
        file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        var head = new byte[HeaderBytes];
        view.ReadArray(0, head, 0, HeaderBytes);
        if (!head.AsSpan(0, 8).SequenceEqual(Magic))
            Fail("it does not start with PICTORDS; it is not a packed dataset");
        int version = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(8));
        if (version != Version) Fail($"format version {version}, this Pictor reads {Version}; rebuild the cache");
        Count = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(12));
        Width = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(16));
        Height = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(20));
        int ch = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(24));
        long capOff = BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(28));
        if (Count < 0 || Width < 1 || Height < 1 || ch != 3 || Width > 4096 || Height > 4096)
            Fail($"header is inconsistent (count {Count}, size {Width}x{Height}, channels {ch})");
        if (capOff != HeaderBytes + (long)Count * Width * Height * 3 || capOff > len)
            Fail("the caption block offset does not match the image data; the file is truncated or corrupt");
        captions = new string[Count][];
        long at = capOff;
        for (int i = 0; i < Count; i++)
        {
            if (at + 4 > len) Fail("the caption block is truncated");
            int n = view.ReadInt32(at); at += 4;
            if (n < 1 || n > 1000) Fail($"image {i} has {n} captions");
            captions[i] = new string[n];
            for (int k = 0; k < n; k++)
            {
                if (at + 4 > len) Fail("the caption block is truncated");
                int bl = view.ReadInt32(at); at += 4;
                if (bl < 0 || at + bl > len) Fail("the caption block is truncated");
                var b = new byte[bl];
                view.ReadArray(at, b, 0, bl); at += bl;
                captions[i][k] = Encoding.UTF8.GetString(b);
            }
        }
        if (at != len) Fail($"{len - at} bytes follow the caption block");
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Fail(string why) => throw new DatasetFormatException($"'{Path}' is not a valid packed dataset: {why}");

    public static PackedDataset Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException(
            $"packed dataset '{path}' does not exist; build it with PackedDataset.Build", path);
        return new PackedDataset(path);
    }

    /// <summary>Decodes, composites over white, centre-crops to square, resizes to size x size, and writes the cache
    /// atomically. An image that does not decode is skipped with its captions (one warning line) or, with a strict
    /// <paramref name="badImages"/>, is an error; returns the number of images packed.</summary>
    public static int Build(IReadOnlyList<CaptionedImage> items, int size, string path,
        Action<int, int>? progress = null, BadImagePolicy? badImages = null)
    {
        if (size < 1 || size > 4096) throw new ArgumentException($"cache image size must be 1..4096, got {size}");
        badImages ??= BadImagePolicy.Skip;
        var kept = new List<CaptionedImage>(items.Count);
        AtomicFile.Write(path, s =>
        {
            s.Write(new byte[HeaderBytes]);   // written last, when the count of decodable images is known
            var rgb = new byte[size * size * 3];
            for (int i = 0; i < items.Count; i++)
            {
                var img = badImages.Load(items[i]);
                progress?.Invoke(i + 1, items.Count);
                if (img == null) continue;
                img = img.CompositeOver(255, 255, 255).CenterCropSquare().Resize(size, size);
                for (int p = 0; p < size * size; p++)
                    for (int c = 0; c < 3; c++) rgb[3 * p + c] = img.Rgba[4 * p + c];
                s.Write(rgb);
                kept.Add(items[i]);
            }
            if (kept.Count == 0) throw BadImagePolicy.NoneDecoded(items.Count, $"the set packed into '{path}'");
            var b4 = new byte[4];
            foreach (var it in kept)
            {
                BinaryPrimitives.WriteInt32LittleEndian(b4, it.Captions.Count); s.Write(b4);
                foreach (var c in it.Captions)
                {
                    var cb = Encoding.UTF8.GetBytes(c);
                    BinaryPrimitives.WriteInt32LittleEndian(b4, cb.Length); s.Write(b4); s.Write(cb);
                }
            }
            var head = new byte[HeaderBytes];
            Magic.CopyTo(head, 0);
            BinaryPrimitives.WriteInt32LittleEndian(head.AsSpan(8), Version);
            BinaryPrimitives.WriteInt32LittleEndian(head.AsSpan(12), kept.Count);
            BinaryPrimitives.WriteInt32LittleEndian(head.AsSpan(16), size);
            BinaryPrimitives.WriteInt32LittleEndian(head.AsSpan(20), size);
            BinaryPrimitives.WriteInt32LittleEndian(head.AsSpan(24), 3);
            BinaryPrimitives.WriteInt64LittleEndian(head.AsSpan(28), HeaderBytes + (long)kept.Count * size * size * 3);
            s.Seek(0, SeekOrigin.Begin);
            s.Write(head);
        });
        return kept.Count;
    }

    public IReadOnlyList<string> Captions(int i) => captions[i];

    /// <summary>Image i as RGB floats in [-1, 1], [3, H, W] planar, written into <paramref name="dst"/>.</summary>
    public void ReadImage(int i, Span<float> dst)
    {
        if ((uint)i >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(i), $"image {i} is outside 0..{Count - 1}");
        int n = Width * Height;
        if (dst.Length != 3 * n)
            throw new ArgumentException($"destination holds {dst.Length} floats, an image needs {3 * n}");
        var rgb = new byte[3 * n];
        view.ReadArray(HeaderBytes + (long)i * 3 * n, rgb, 0, 3 * n);
        for (int p = 0; p < n; p++)
            for (int c = 0; c < 3; c++) dst[c * n + p] = rgb[3 * p + c] / 127.5f - 1f;
    }

    /// <summary>A permutation of 0..Count-1 for epoch <paramref name="epoch"/> (Fisher-Yates, seeded by seed and
    /// epoch).</summary>
    public int[] Shuffle(ulong seed, int epoch)
    {
        var order = Enumerable.Range(0, Count).ToArray();
        var rng = new Rng(seed * 1_000_003UL + (ulong)epoch);
        for (int i = Count - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
        return order;
    }

    public void Dispose()
    {
        view.Dispose();
        file.Dispose();
    }
}
