using System.Globalization;
using Pictor.Imaging;
using static Pictor.Imaging.PlotDrawing;

namespace Pictor.Pipelines.Inside;

// Dimension legend: K codebook entries.

/// <summary>
/// How well a VQ codebook is used: of <see cref="Codes"/> entries, how many are used and how many are dead, the
/// perplexity exp(-sum_k p_k log p_k) of the usage distribution (K when every entry is used equally, 1 when one entry
/// takes everything; the "perplexity" of van den Oord et al. 2017's VQ-VAE training logs), and the usage histogram
/// as a picture. Made from a batch of codes (<see cref="FromCodes"/>: dead = never chosen) or from counts
/// (<see cref="FromCounts"/>, such as the moving-average cluster sizes a <c>VectorQuantizer</c> stores: dead = below
/// <see cref="DeadShare"/> of the mean count, since a moving average never reaches zero).
/// </summary>
/// <param name="Counts">[K] how often each entry was chosen (or its moving-average count).</param>
public sealed record CodebookHealth(double[] Counts, double Perplexity, int Used, int Dead, string Source)
{
    /// <summary>An entry whose count is below this share of the mean count is dead.</summary>
    public const double DeadShare = 0.01;

    public int Codes => Counts.Length;

    /// <summary>Usage of the codes <paramref name="codes"/> (each in [0, k)); dead = never chosen.</summary>
    public static CodebookHealth FromCodes(ReadOnlySpan<int> codes, int k, string source)
    {
        if (k < 1) throw new ArgumentException($"a codebook has at least one entry, got {k}");
        var counts = new double[k];
        foreach (int c in codes)
        {
            if ((uint)c >= (uint)k) throw new ArgumentException($"code {c} is outside the codebook of {k} entries");
            counts[c]++;
        }
        int used = counts.Count(c => c > 0);
        return new CodebookHealth(counts, PerplexityOf(counts), used, k - used, source);
    }

    /// <summary>Usage from non-negative counts; dead = below <see cref="DeadShare"/> of the mean count.</summary>
    public static CodebookHealth FromCounts(IReadOnlyList<double> counts, string source)
    {
        if (counts.Count == 0) throw new ArgumentException("a codebook has at least one entry, got none");
        if (counts.Any(c => !(c >= 0) || double.IsInfinity(c)))
            throw new ArgumentException("codebook counts must be finite and non-negative");
        var a = counts.ToArray();
        double floor = DeadShare * a.Average();
        int dead = a.Count(c => c < floor || c == 0);
        return new CodebookHealth(a, PerplexityOf(a), a.Length - dead, dead, source);
    }

    /// <summary>exp(entropy) of the distribution counts / sum(counts); 0 when nothing was counted.</summary>
    public static double PerplexityOf(IReadOnlyList<double> counts)
    {
        double total = counts.Sum(), h = 0;
        if (total <= 0) return 0;
        foreach (double c in counts)
            if (c > 0) { double p = c / total; h -= p * Math.Log(p); }
        return Math.Exp(h);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Codes} codes: {Used} used, {Dead} dead (below {DeadShare:P0} of the mean), perplexity {Perplexity:F1} "
        + $"of at most {Codes} ({Source})");

    /// <summary>The usage histogram: one bar per entry, tallest first, height = share of the largest count; a grey
    /// line at the uniform share 1/K (bars below it are under-used), dead entries as red ticks on the axis. The entry
    /// count and the perplexity are written under it.</summary>
    public Image Histogram(int height = 120)
    {
        int k = Codes, bar = Math.Max(1, 512 / k), w = Math.Max(k * bar, 64) + 8, plotH = height;
        var img = Image.Solid(w, plotH + 16, 255, 255, 255);
        var sorted = Counts.OrderByDescending(c => c).ToArray();
        double max = Math.Max(sorted[0], 1e-12), total = Counts.Sum(), floor = DeadShare * Counts.Average();
        for (int i = 0; i < k; i++)
        {
            int h = (int)Math.Round(sorted[i] / max * (plotH - 4)), x0 = 4 + i * bar;
            bool dead = sorted[i] < floor || sorted[i] == 0;
            for (int x = x0; x < x0 + bar; x++)
            {
                for (int y = 0; y < h; y++) Set(img, x, plotH - y, 60, 110, 200);
                if (dead) { Set(img, x, plotH + 1, 220, 40, 40); Set(img, x, plotH + 2, 220, 40, 40); }
            }
        }
        if (total > 0)
        {
            int yu = plotH - (int)Math.Round(total / k / max * (plotH - 4));
            for (int x = 4; x < 4 + k * bar; x++) Set(img, x, yu, 160, 160, 160);
        }
        Label(img, 4, plotH + 6, string.Create(CultureInfo.InvariantCulture,
            $"{k} codes, {Used} used, {Dead} dead, perplexity {Perplexity:F1}"));
        return img;
    }
}
