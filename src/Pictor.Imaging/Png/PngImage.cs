namespace Pictor.Imaging.Png;

/// <summary>A malformed or unsupported PNG; the message says what is wrong and where.</summary>
public sealed class PngFormatException(string message) : ImageFormatException(message);

/// <summary>PNG colour types (PNG spec 11.2.2).</summary>
public enum PngColorType : byte { Grayscale = 0, Rgb = 2, Palette = 3, GrayscaleAlpha = 4, Rgba = 6 }

/// <summary>A decoded PNG: RGBA pixels (8-bit always; 16-bit too when asked), the source format and its text
/// chunks.</summary>
public sealed class PngImage
{
    public int Width { get; init; }
    public int Height { get; init; }
    public int BitDepth { get; init; }
    public PngColorType ColorType { get; init; }
    public bool Interlaced { get; init; }
    /// <summary>RGBA, 8 bits per channel, row-major, Width * Height * 4 bytes.</summary>
    public required byte[] Rgba8 { get; init; }
    /// <summary>RGBA, 16 bits per channel (only when decoded with Want16Bit).</summary>
    public ushort[]? Rgba16 { get; init; }
    /// <summary>tEXt, zTXt and iTXt chunks, keyword to text, in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Text { get; init; } = [];

    public string? GetText(string keyword) => Text.FirstOrDefault(t => t.Key == keyword).Value;
}

/// <summary>Limits applied while decoding, so a hostile file cannot make us allocate without bound. MaxPixels is the
/// limit for every format <see cref="Decoding.ImageDecoder"/> reads, not for PNG alone.</summary>
public sealed record PngDecodeOptions(
    long MaxPixels = 64L * 1024 * 1024,   // width x height, checked before any pixel buffer is allocated
    int MaxTextBytes = 1024 * 1024,       // per decompressed zTXt / compressed iTXt chunk
    bool Want16Bit = false);
