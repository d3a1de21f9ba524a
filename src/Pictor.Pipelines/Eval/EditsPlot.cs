using System.Globalization;
using Pictor.Imaging;
using static Pictor.Imaging.PlotDrawing;

namespace Pictor.Pipelines.Eval;

/// <summary>
/// `pictor eval edits --plot FILE.png`: image-to-image's (a) edited object as prompted (blue) and (b) objects outside
/// unchanged (orange) against strength, a square marker at each measured strength; inpainting's (a) and (b), which do
/// not depend on strength, as dotted lines in the same colours. Axes: strength 0 to 1 (labels every 0.1), accuracy 0
/// to 1 (grey grid line and label every 0.2). Drawn with <see cref="PlotDrawing"/>.
/// </summary>
public static class EditsPlot
{
    private const int W = 480, H = 270, Left = 28, Right = 12, Top = 10, Bottom = 22;
    private static readonly (byte R, byte G, byte B) A = (40, 90, 220), B = (240, 130, 20);

    /// <summary>strengths[i] is the strength of imageToImage[i]; inpaint, when given, is drawn dotted.</summary>
    public static Image Render(IReadOnlyList<float> strengths, IReadOnlyList<EditsReport> imageToImage,
        EditsReport? inpaint)
    {
        if (strengths.Count != imageToImage.Count)
            throw new ArgumentException($"{strengths.Count} strengths for {imageToImage.Count} image-to-image reports; "
                + "pass one strength per report, in the same order");
        var img = Image.Solid(W, H, 255, 255, 255);
        int X(double s) => Left + (int)Math.Round(s * (W - Left - Right - 1));
        int Y(double v) => Top + (int)Math.Round((1 - v) * (H - Top - Bottom - 1));
        for (int k = 0; k <= 5; k++)
        {
            int y = Y(k / 5.0);
            for (int x = Left; x < W - Right; x++) Set(img, x, y, 225, 225, 225);
            Label(img, 4, y - 2, (k / 5.0).ToString("0.0", CultureInfo.InvariantCulture));
        }
        for (int y = Top; y < H - Bottom; y++) Set(img, Left - 1, y, 0, 0, 0);
        for (int x = Left - 1; x < W - Right; x++) Set(img, x, H - Bottom, 0, 0, 0);
        for (int k = 0; k <= 10; k++)
        {
            string label = (k / 10.0).ToString("0.#", CultureInfo.InvariantCulture);
            int x = X(k / 10.0);
            for (int y = H - Bottom; y < H - Bottom + 3; y++) Set(img, x, y, 0, 0, 0);
            Label(img, x - 2 * label.Length + 1, H - Bottom + 6, label);
        }
        if (inpaint != null)
            foreach (var (v, c) in new[] { (inpaint.Target.Value, A), (inpaint.Outside.Value, B) })
                if (double.IsFinite(v))
                    for (int x = Left; x < W - Right; x += 4) { Set(img, x, Y(v), c.R, c.G, c.B);
                        Set(img, x + 1, Y(v), c.R, c.G, c.B); }
        var order = Enumerable.Range(0, strengths.Count).OrderBy(i => strengths[i]).ToList();
        foreach (var (pick, c) in new (Func<EditsReport, Accuracy>, (byte R, byte G, byte B))[]
            { (r => r.Target, A), (r => r.Outside, B) })
        {
            var pts = order.Where(i => double.IsFinite(pick(imageToImage[i]).Value))
                .Select(i => (X(strengths[i]), Y(pick(imageToImage[i]).Value))).ToList();
            Curve(img, pts, c.R, c.G, c.B);
            foreach (var (x, y) in pts) Marker(img, x, y, 2, c.R, c.G, c.B);
        }
        return img;
    }
}
