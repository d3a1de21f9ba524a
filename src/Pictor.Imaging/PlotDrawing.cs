namespace Pictor.Imaging;

/// <summary>
/// The pixels every plot PNG is drawn with (the loss curve, the edit benchmark's strength sweep): an opaque pixel, a
/// two-pixel-thick polyline, a filled square marker, and a 3x5 pixel font for labels (digits, letters in one case,
/// '.', '-', '+', ',', ':', '/', '%', '(', ')'; other characters leave a gap). Everything clips at the image's edge.
/// </summary>
public static class PlotDrawing
{
    /// <summary>Sets one pixel, opaque; outside the image, nothing.</summary>
    public static void Set(Image img, int x, int y, byte r, byte g, byte b)
    {
        if ((uint)x >= (uint)img.Width || (uint)y >= (uint)img.Height) return;
        int o = 4 * (y * img.Width + x);
        img.Rgba[o] = r; img.Rgba[o + 1] = g; img.Rgba[o + 2] = b; img.Rgba[o + 3] = 255;
    }

    /// <summary>Straight segments through the points, each pixel doubled downwards (two pixels thick).</summary>
    public static void Curve(Image img, IReadOnlyList<(int X, int Y)> pts, byte r, byte g, byte b)
    {
        for (int i = 0; i < pts.Count; i++)
        {
            var (x0, y0) = pts[i];
            var (x1, y1) = i + 1 < pts.Count ? pts[i + 1] : pts[i];
            int n = Math.Max(Math.Abs(x1 - x0), Math.Abs(y1 - y0)) + 1;
            for (int k = 0; k <= n; k++)
            {
                int x = x0 + (x1 - x0) * k / n, y = y0 + (y1 - y0) * k / n;
                Set(img, x, y, r, g, b); Set(img, x, y + 1, r, g, b);
            }
        }
    }

    /// <summary>A filled square of side 2 * half + 1 centred on (x, y).</summary>
    public static void Marker(Image img, int x, int y, int half, byte r, byte g, byte b)
    {
        for (int dy = -half; dy <= half; dy++)
            for (int dx = -half; dx <= half; dx++) Set(img, x + dx, y + dy, r, g, b);
    }

    /// <summary>Writes s in dark grey with its top-left corner at (x, y); each character takes 4 pixels.</summary>
    public static void Label(Image img, int x, int y, string s)
    {
        foreach (char c in s)
        {
            if (Font.TryGetValue(c, out var rows) || Letters.TryGetValue(char.ToUpperInvariant(c), out rows))
                for (int ry = 0; ry < 5; ry++)
                    for (int rx = 0; rx < 3; rx++)
                        if ((rows[ry] >> (2 - rx) & 1) != 0) Set(img, x + rx, y + ry, 60, 60, 60);
            x += 4;
        }
    }

    // 3x5 glyphs, rows top to bottom, 3 bits each (4 = left column).
    private static readonly Dictionary<char, int[]> Font = new()
    {
        ['0'] = [7, 5, 5, 5, 7], ['1'] = [2, 6, 2, 2, 7], ['2'] = [7, 1, 7, 4, 7], ['3'] = [7, 1, 7, 1, 7],
            ['4'] = [5, 5, 7, 1, 1],
        ['5'] = [7, 4, 7, 1, 7], ['6'] = [7, 4, 7, 5, 7], ['7'] = [7, 1, 1, 1, 1], ['8'] = [7, 5, 7, 5, 7],
            ['9'] = [7, 5, 7, 1, 7],
        ['.'] = [0, 0, 0, 0, 2], ['-'] = [0, 0, 7, 0, 0], ['E'] = [7, 4, 7, 4, 7], ['e'] = [7, 4, 7, 4, 7],
            ['+'] = [0, 2, 7, 2, 0],
    };

    // Letters A-Z (lower case drawn the same), and a little punctuation.
    private static readonly Dictionary<char, int[]> Letters = new()
    {
        ['A'] = [2, 5, 7, 5, 5], ['B'] = [6, 5, 6, 5, 6], ['C'] = [3, 4, 4, 4, 3], ['D'] = [6, 5, 5, 5, 6],
        ['F'] = [7, 4, 7, 4, 4], ['G'] = [3, 4, 5, 5, 3], ['H'] = [5, 5, 7, 5, 5], ['I'] = [7, 2, 2, 2, 7],
        ['J'] = [1, 1, 1, 5, 2], ['K'] = [5, 5, 6, 5, 5], ['L'] = [4, 4, 4, 4, 7], ['M'] = [5, 7, 7, 5, 5],
        ['N'] = [6, 5, 5, 5, 5], ['O'] = [2, 5, 5, 5, 2], ['P'] = [6, 5, 6, 4, 4], ['Q'] = [2, 5, 5, 6, 3],
        ['R'] = [6, 5, 6, 5, 5], ['S'] = [3, 4, 2, 1, 6], ['T'] = [7, 2, 2, 2, 2], ['U'] = [5, 5, 5, 5, 7],
        ['V'] = [5, 5, 5, 5, 2], ['W'] = [5, 5, 7, 7, 5], ['X'] = [5, 5, 2, 5, 5], ['Y'] = [5, 5, 2, 2, 2],
        ['Z'] = [7, 1, 2, 4, 7], [','] = [0, 0, 0, 2, 4], [':'] = [0, 2, 0, 2, 0], ['/'] = [1, 1, 2, 4, 4],
        ['%'] = [5, 1, 2, 4, 5], ['('] = [1, 2, 2, 2, 1], [')'] = [4, 2, 2, 2, 4],
    };
}
