using System.Globalization;
using Pictor.Imaging;
using static Pictor.Imaging.PlotDrawing;

namespace Pictor.Pipelines.Training;

/// <summary>
/// The loss curves as a PNG: train (blue) and val (orange) against step, log-scaled loss axis with a grey grid line and
/// label at each 1-2-5 value, step labels at the ends. Drawn with <see cref="PlotDrawing"/>'s pixels and 3x5 font.
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
                Label(img, 2, y - 2, v.ToString("G2", CultureInfo.InvariantCulture));
            }
        for (int y = Top; y < H - Bottom; y++) Set(img, Left - 1, y, 0, 0, 0);
        for (int x = Left - 1; x < W - Right; x++) Set(img, x, H - Bottom, 0, 0, 0);
        Label(img, Left, H - Bottom + 5, s0.ToString(CultureInfo.InvariantCulture));
        string last = s1.ToString(CultureInfo.InvariantCulture);
        Label(img, W - Right - 4 * last.Length, H - Bottom + 5, last);
        Curve(img, points.Select(p => (X(p.Step), Y(p.Train))).ToList(), 40, 90, 220);
        Curve(img, points.Select(p => (X(p.Step), Y(p.Val))).ToList(), 240, 130, 20);
        return img;
    }
}
