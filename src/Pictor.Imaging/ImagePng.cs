using Pictor.Imaging.Png;

namespace Pictor.Imaging;

public sealed partial class Image
{
    /// <summary>The PNG bytes <see cref="Save"/> writes (RGB when every pixel is opaque, else RGBA), in memory: for a
    /// server that answers with the file instead of writing it. Same bytes as Save for the same text.</summary>
    public byte[] ToPng(IEnumerable<KeyValuePair<string, string>>? text = null)
    {
        bool opaque = true;
        for (int i = 3; i < Rgba.Length; i += 4)
            if (Rgba[i] != 255) { opaque = false; break; }
        if (!opaque) return PngEncoder.Encode(Rgba, Width, Height, true, text);
        var rgb = new byte[Width * Height * 3];
        for (int i = 0; i < Width * Height; i++)
        {
            rgb[3 * i] = Rgba[4 * i]; rgb[3 * i + 1] = Rgba[4 * i + 1]; rgb[3 * i + 2] = Rgba[4 * i + 2];
        }
        return PngEncoder.Encode(rgb, Width, Height, false, text);
    }
}
