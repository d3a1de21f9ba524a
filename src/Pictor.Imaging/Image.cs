using Pictor.Engine;
using Pictor.Imaging.Decoding;
using Pictor.Imaging.Png;

namespace Pictor.Imaging;

/// <summary>An 8-bit RGBA image in row-major order, with the operations datasets and samplers need.</summary>
public sealed partial class Image
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>Width * Height * 4 bytes: R, G, B, A.</summary>
    public byte[] Rgba { get; }

    public Image(int width, int height, byte[]? rgba = null)
    {
        if (width < 1 || height < 1)
            throw new ArgumentException($"image size {width}x{height} is invalid; both must be >= 1");
        if ((long)width * height > 64L * 1024 * 1024)
            throw new ArgumentException($"image size {width}x{height} is over 64 megapixels");
        Width = width; Height = height;
        Rgba = rgba ?? new byte[width * height * 4];
        if (Rgba.Length != width * height * 4)
            throw new ArgumentException($"{Rgba.Length} bytes do not make a {width}x{height} RGBA image");
    }

    /// <summary>Decodes an image file of any format Pictor reads (PNG, JPEG, WebP, GIF, BMP, TIFF, told apart by
    /// content): see <see cref="ImageDecoder"/>. A file that does not decode is an <see cref="ImageFormatException"/>
    /// naming it.</summary>
    public static Image Load(string path, PngDecodeOptions? options = null) => ImageDecoder.DecodeFile(path, options);

    /// <summary>Decodes image bytes held in memory (any format <see cref="ImageDecoder"/> reads).</summary>
    public static Image Load(byte[] data, PngDecodeOptions? options = null) =>
        ImageDecoder.Decode(data, "image", options);

    public static Image Solid(int width, int height, byte r, byte g, byte b, byte a = 255)
    {
        var img = new Image(width, height);
        for (int i = 0; i < width * height; i++)
        {
            img.Rgba[4 * i] = r; img.Rgba[4 * i + 1] = g; img.Rgba[4 * i + 2] = b; img.Rgba[4 * i + 3] = a;
        }
        return img;
    }

    /// <summary>Writes a PNG atomically; RGB when every pixel is opaque, else RGBA.</summary>
    public void Save(string path, IEnumerable<KeyValuePair<string, string>>? text = null) =>
        Pictor.Engine.IO.AtomicFile.WriteAllBytes(path, ToPng(text));   // one encoding path: the bytes of ToPng

    /// <summary>Alpha compositing over an opaque background ("over" operator, non-premultiplied input): out = a c +
    /// (1 - a) bg.</summary>
    public Image CompositeOver(byte r, byte g, byte b)
    {
        var o = new Image(Width, Height);
        for (int i = 0; i < Width * Height; i++)
        {
            int a = Rgba[4 * i + 3];
            o.Rgba[4 * i] = (byte)((Rgba[4 * i] * a + r * (255 - a) + 127) / 255);
            o.Rgba[4 * i + 1] = (byte)((Rgba[4 * i + 1] * a + g * (255 - a) + 127) / 255);
            o.Rgba[4 * i + 2] = (byte)((Rgba[4 * i + 2] * a + b * (255 - a) + 127) / 255);
            o.Rgba[4 * i + 3] = 255;
        }
        return o;
    }

    /// <summary>The centred w x h window (w &lt;= Width, h &lt;= Height); odd margins put the extra pixel
    /// right/bottom.</summary>
    public Image CenterCrop(int w, int h)
    {
        if (w < 1 || h < 1 || w > Width || h > Height)
            throw new ArgumentException($"crop {w}x{h} does not fit in a {Width}x{Height} image");
        int x0 = (Width - w) / 2, y0 = (Height - h) / 2;
        var o = new Image(w, h);
        for (int y = 0; y < h; y++) Buffer.BlockCopy(Rgba, ((y0 + y) * Width + x0) * 4, o.Rgba, y * w * 4, w * 4);
        return o;
    }

    public Image CenterCropSquare() => CenterCrop(Math.Min(Width, Height), Math.Min(Width, Height));

    /// <summary>Area-average resampling (a box filter with exact fractional coverage): each output pixel is the mean of
    /// the input area it covers. The right filter for downscaling; colour is averaged with alpha weighting.</summary>
    public Image ResizeArea(int w, int h)
    {
        if (w < 1 || h < 1) throw new ArgumentException($"resize target {w}x{h} is invalid");
        var o = new Image(w, h);
        double sx = (double)Width / w, sy = (double)Height / h;
        for (int oy = 0; oy < h; oy++)
        {
            double y0 = oy * sy, y1 = y0 + sy;
            for (int ox = 0; ox < w; ox++)
            {
                double x0 = ox * sx, x1 = x0 + sx;
                double r = 0, g = 0, b = 0, a = 0, area = 0;
                for (int iy = (int)y0; iy < Math.Min(Height, (int)Math.Ceiling(y1)); iy++)
                {
                    double wy = Math.Min(y1, iy + 1) - Math.Max(y0, iy);
                    for (int ix = (int)x0; ix < Math.Min(Width, (int)Math.Ceiling(x1)); ix++)
                    {
                        double wgt = wy * (Math.Min(x1, ix + 1) - Math.Max(x0, ix));
                        int p = 4 * (iy * Width + ix);
                        double al = Rgba[p + 3] * wgt;
                        r += Rgba[p] * al; g += Rgba[p + 1] * al; b += Rgba[p + 2] * al; a += al; area += wgt;
                    }
                }
                int q = 4 * (oy * w + ox);
                if (a > 0) { o.Rgba[q] = Round(r / a); o.Rgba[q + 1] = Round(g / a); o.Rgba[q + 2] = Round(b / a); }
                o.Rgba[q + 3] = Round(a / area);
            }
        }
        return o;
    }

    /// <summary>Bilinear resampling with pixel centres at (i + 0.5) and clamped edges (PyTorch's
    /// align_corners=False).</summary>
    public Image ResizeBilinear(int w, int h)
    {
        if (w < 1 || h < 1) throw new ArgumentException($"resize target {w}x{h} is invalid");
        var o = new Image(w, h);
        double sx = (double)Width / w, sy = (double)Height / h;
        for (int oy = 0; oy < h; oy++)
        {
            double fy = Math.Clamp((oy + 0.5) * sy - 0.5, 0, Height - 1);
            int y0 = (int)fy, y1 = Math.Min(y0 + 1, Height - 1); double ty = fy - y0;
            for (int ox = 0; ox < w; ox++)
            {
                double fx = Math.Clamp((ox + 0.5) * sx - 0.5, 0, Width - 1);
                int x0 = (int)fx, x1 = Math.Min(x0 + 1, Width - 1); double tx = fx - x0;
                for (int c = 0; c < 4; c++)
                {
                    double top = Rgba[4 * (y0 * Width + x0) + c] * (1 - tx) + Rgba[4 * (y0 * Width + x1) + c] * tx;
                    double bot = Rgba[4 * (y1 * Width + x0) + c] * (1 - tx) + Rgba[4 * (y1 * Width + x1) + c] * tx;
                    o.Rgba[4 * (oy * w + ox) + c] = Round(top * (1 - ty) + bot * ty);
                }
            }
        }
        return o;
    }

    /// <summary>Nearest-neighbour resampling (for enlarging pixel art and tiny samples for viewing).</summary>
    public Image ResizeNearest(int w, int h)
    {
        if (w < 1 || h < 1) throw new ArgumentException($"resize target {w}x{h} is invalid");
        var o = new Image(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                Buffer.BlockCopy(Rgba, 4 * ((int)((long)y * Height / h) * Width + (int)((long)x * Width / w)), o.Rgba,
                    4 * (y * w + x), 4);
        return o;
    }

    /// <summary>Resizes with the right filter for the direction: area average to shrink, bilinear to grow.</summary>
    public Image Resize(int w, int h) => w <= Width && h <= Height ? ResizeArea(w, h) : ResizeBilinear(w, h);

    private static byte Round(double v) => (byte)Math.Clamp(Math.Round(v, MidpointRounding.AwayFromZero), 0, 255);

    /// <summary>RGB as a [3, H, W] tensor in [-1, 1] (v / 127.5 - 1); alpha is dropped (composite first).</summary>
    public Tensor ToTensor()
    {
        var t = Tensor.Empty(3, Height, Width);
        WriteTensor(t.Span);
        return t;
    }

    /// <summary>Writes RGB in [-1, 1] as [3, H, W] into <paramref name="dst"/>.</summary>
    public void WriteTensor(Span<float> dst)
    {
        int n = Width * Height;
        if (dst.Length != 3 * n) throw new ArgumentException(
            $"destination holds {dst.Length} floats, a {Width}x{Height} RGB image needs {3 * n}");
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++) dst[c * n + i] = Rgba[4 * i + c] / 127.5f - 1f;
    }

    /// <summary>The inverse of <see cref="ToTensor"/>: [3, H, W] in [-1, 1], clamped, rounded; opaque.</summary>
    public static Image FromTensor(Tensor t)
    {
        if (t.Rank != 3 || t.Shape[0] != 3)
            throw new ArgumentException($"image tensor must be [3, H, W], got {Shape.Format(t.Shape)}");
        int h = t.Shape[1], w = t.Shape[2], n = w * h;
        var img = new Image(w, h);
        var s = t.ToArray();
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < 3; c++) img.Rgba[4 * i + c] = Round((Math.Clamp(s[c * n + i], -1f, 1f) + 1.0) * 127.5);
            img.Rgba[4 * i + 3] = 255;
        }
        return img;
    }

    /// <summary>Tiles images (all the same size) into rows of <paramref name="columns"/>, with <paramref name="pad"/>
    /// pixels of background between them and around the edge.</summary>
    public static Image Grid(IReadOnlyList<Image> images, int columns, int pad = 2, byte r = 255, byte g = 255,
        byte b = 255)
    {
        if (images.Count == 0) throw new ArgumentException("a grid needs at least one image");
        if (columns < 1) throw new ArgumentException($"grid columns must be >= 1, got {columns}");
        int w = images[0].Width, h = images[0].Height;
        if (images.Any(i => i.Width != w || i.Height != h))
            throw new ArgumentException("grid images must all have the same size");
        int cols = Math.Min(columns, images.Count), rows = (images.Count + cols - 1) / cols;
        var o = Solid(cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad, r, g, b);
        for (int k = 0; k < images.Count; k++)
        {
            int x0 = pad + (k % cols) * (w + pad), y0 = pad + (k / cols) * (h + pad);
            for (int y = 0; y < h; y++)
                Buffer.BlockCopy(images[k].Rgba, y * w * 4, o.Rgba, ((y0 + y) * o.Width + x0) * 4, w * 4);
        }
        return o;
    }
}
