using System.Globalization;
using Pictor.Imaging;

namespace Pictor.Pipelines.Training;

/// <summary>
/// The loss curves as a PNG: train (blue) and val (orange) against step, log-scaled loss axis with a grey grid line and
/// label at each 1-2-5 value, step labels at the ends. Drawn with a 3x5 pixel font (digits, '.', 'e', '-').
/// </summary>
public static class LossPlot
{
    private const int W = 480, H = 270, Left = 44, Right = 12, Top = 10, Bottom = 22;

    public static Image Render(IReadOnlyList<LossPoint> points)
    {
        var img = Image.Solid(W, H, 255, 255, 255);
        if (points.Count == 0) return img;
        var vals = points.SelectMany(p => new[] { p.Train, p.Val }).Where(v => v > 0 && double.IsFinite(v)).ToList();
        if (vals.Count == 0) return img;
        double lo = Math.Log10(vals.Min()), hi = Math.Log10(vals.Max());
        if (hi - lo < 0.3) { double mid = (hi + lo) / 2; lo = mid - 0.15; hi = mid + 0.15; }
        long s0 = points[0].Step, s1 = Math.Max(points[^1].Step, s0 + 1);
        if (points.Count == 1) s0 = 0;
        int X(long s) => Left + (int)Math.Round((double)(s - s0) / (s1 - s0) * (W - Left - Right - 1));
        int Y(double v) => Top + (int)Math.Round((hi - Math.Log10(v)) / (hi - lo) * (H - Top - Bottom - 1));
        for (int e = (int)Math.Floor(lo) - 1; e <= (int)Math.Ceiling(hi); e++)
            foreach (double m in new[] { 1.0, 2.0, 5.0 })
            {
                double v = m * Math.Pow(10, e);
                if (Math.Log10(v) < lo || Math.Log10(v) > hi) continue;
                int y = Y(v);
                for (int x = Left; x < W - Right; x++) Set(img, x, y, 225, 225, 225);
                Text(img, 2, y - 2, v.ToString("G2", CultureInfo.InvariantCulture));
            }
        for (int y = Top; y < H - Bottom; y++) Set(img, Left - 1, y, 0, 0, 0);
        for (int x = Left - 1; x < W - Right; x++) Set(img, x, H - Bottom, 0, 0, 0);
        Text(img, Left, H - Bottom + 5, s0.ToString(CultureInfo.InvariantCulture));
        string last = s1.ToString(CultureInfo.InvariantCulture);
        Text(img, W - Right - 4 * last.Length, H - Bottom + 5, last);
        Curve(img, points.Select(p => (X(p.Step), Y(p.Train))).ToList(), 40, 90, 220);
        Curve(img, points.Select(p => (X(p.Step), Y(p.Val))).ToList(), 240, 130, 20);
        return img;
    }

    private static void Curve(Image img, List<(int X, int Y)> pts, byte r, byte g, byte b)
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

    private static void Set(Image img, int x, int y, byte r, byte g, byte b)
    {
        if ((uint)x >= (uint)img.Width || (uint)y >= (uint)img.Height) return;
        int o = 4 * (y * img.Width + x);
        img.Rgba[o] = r; img.Rgba[o + 1] = g; img.Rgba[o + 2] = b; img.Rgba[o + 3] = 255;
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

    private static void Text(Image img, int x, int y, string s)
    {
        foreach (char c in s)
        {
            if (Font.TryGetValue(c, out var rows))
                for (int ry = 0; ry < 5; ry++)
                    for (int rx = 0; rx < 3; rx++)
                        if ((rows[ry] >> (2 - rx) & 1) != 0) Set(img, x + rx, y + ry, 60, 60, 60);
            x += 4;
        }
    }
}
