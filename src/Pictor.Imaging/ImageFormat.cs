namespace Pictor.Imaging;

/// <summary>The file formats <see cref="Decoding.ImageDecoder"/> reads, told apart by their first bytes (never by
/// the file's extension).</summary>
public enum ImageFormat { Unknown, Png, Jpeg, WebP, Gif, Bmp, Tiff }

/// <summary>A file that is not a decodable image: corrupt, truncated, over the size limit, or in a format Pictor does
/// not read. The message is one line that names the file, the problem and the fix; <see cref="Png.PngFormatException"/>
/// is the PNG decoder's kind of it.</summary>
public class ImageFormatException(string message) : FormatException(message);
