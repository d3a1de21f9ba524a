using Pictor.Engine;
using Pictor.Imaging.Datasets;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Bench;

/// <summary>
/// Linear probes of a diffusion model's text encoder on shapes pair captions ("a red circle left of a blue square"):
/// does the encoder's output say which side each named colour goes to? That side is an exclusive-or of the colour's
/// role (named first or second) and the relation word, so a linear read-out of the words alone cannot give it; the
/// bag-of-words row checks that (it should sit near 0.5). Ridge regression on 3/4 of the captions, sign accuracy on
/// the rest. Rows:
///   relation     the relation word (left of / right of) from the pooled vector: a word the encoder must keep;
///   role         whether colour c is named first, from the pooled vector, one probe per colour;
///   side pooled  which side colour c goes to, from the pooled vector (what the ResBlocks' slopes read), per colour;
///   side token   which side a colour goes to, from the colour word's own output token (what cross-attention's keys
///                and values are made from), one probe shared by all colours;
///   shape token  which shape the colour word names (the binding), from the colour word's own output token;
///   side bag     the side task on bag-of-words counts: the control;
///   side places  with token places (xs-rel-place): no fit, the fraction of captions whose places head puts the first
///                colour word on the named side of the second (x1 < x2 under "left of").
/// Usage: Pictor.Bench text-probe MODEL_DIR [N]
/// </summary>
public static class TextProbe
{
    public static void Run(string modelDir, int n)
    {
        var pipe = DiffusionPipeline.Load(modelDir);
        var rng = new Rng(7);
        var colours = Enum.GetValues<ShapeColour>(); var kinds = Enum.GetValues<ShapeKind>();
        var captions = new List<string>(); var c1 = new int[n]; var c2 = new int[n]; var left = new bool[n];
        var pos1 = new int[n]; var pos2 = new int[n]; var shape1 = new int[n]; var shape2 = new int[n];
        for (int i = 0; i < n; i++)
        {
            int a = rng.NextInt(colours.Length), b;
            do b = rng.NextInt(colours.Length); while (b == a);
            shape1[i] = rng.NextInt(kinds.Length); shape2[i] = rng.NextInt(kinds.Length);
            var sa = Shapes.Name(kinds[shape1[i]]); var sb = Shapes.Name(kinds[shape2[i]]);
            bool l = rng.NextInt(2) == 0;
            string ca = Shapes.Name(colours[a]), cb = Shapes.Name(colours[b]);
            string rel = l ? "left of" : "right of";
            captions.Add($"a {ca} {sa} {rel} a {cb} {sb}");
            c1[i] = a; c2[i] = b; left[i] = l;
            // Position of each colour word's last token in the model's ids (bos first): prefixes tokenise as the whole does.
            pos1[i] = pipe.Tokenizer.Encode($"a {ca}").Length;
            pos2[i] = pipe.Tokenizer.Encode($"a {ca} {sa} {rel} a {cb}").Length;
        }
        var ids = pipe.Tokenize(captions);
        float[] pooled, tokens; float[]? places; int dc, s = pipe.Config.Text.Context;
        using (Autograd.NoGrad())
        {
            var (tok, pool) = pipe.EncodeText(ids);
            if (pool == null)
                throw new ArgumentException($"'{modelDir}' has no pooled text input; the probe needs one (every preset "
                    + "has it)");
            pooled = pool.ToArray(); tokens = tok.ToArray(); dc = pool.Shape[1];
            places = pipe.Unet.TokenPlacesOf(tok)?.ToArray();                   // (n, S, 2) or null
        }
        int vocab = pipe.Tokenizer.VocabSize;
        var bag = new float[n * vocab];
        for (int i = 0; i < n; i++) for (int j = 0; j < s; j++) bag[i * vocab + ids.Data[i * s + j]] += 1f;

        // side(c) = -1 for left: the subject goes left under "left of"; the object goes the other way.
        double SidePerColour(float[] feats, int dim)
        {
            double acc = 0;
            foreach (var c in Enumerable.Range(0, colours.Length))
            {
                var rows = new List<(float[] X, double Y)>();
                for (int i = 0; i < n; i++)
                {
                    if (c1[i] == c) rows.Add((feats.AsSpan(i * dim, dim).ToArray(), left[i] ? -1 : 1));
                    else if (c2[i] == c) rows.Add((feats.AsSpan(i * dim, dim).ToArray(), left[i] ? 1 : -1));
                }
                acc += Ridge(rows);
            }
            return acc / colours.Length;
        }
        var relation = Ridge(Enumerable.Range(0, n).Select(i => (pooled.AsSpan(i * dc, dc).ToArray(), left[i] ? 1.0 : -1.0)).ToList());
        double role = 0;
        foreach (var c in Enumerable.Range(0, colours.Length))
            role += Ridge(Enumerable.Range(0, n).Where(i => c1[i] == c || c2[i] == c)
                .Select(i => (pooled.AsSpan(i * dc, dc).ToArray(), c1[i] == c ? 1.0 : -1.0)).ToList());
        role /= colours.Length;
        var tokenRows = new List<(float[] X, double Y)>();
        for (int i = 0; i < n; i++)
        {
            tokenRows.Add((tokens.AsSpan((i * s + pos1[i]) * dc, dc).ToArray(), left[i] ? -1 : 1));
            tokenRows.Add((tokens.AsSpan((i * s + pos2[i]) * dc, dc).ToArray(), left[i] ? 1 : -1));
        }
        // Binding: the shape named after a colour word, read from that colour word's token (3 one-vs-rest probes, argmax).
        var shapeRows = new List<(float[] X, int Y)>();
        for (int i = 0; i < n; i++)
        {
            shapeRows.Add((tokens.AsSpan((i * s + pos1[i]) * dc, dc).ToArray(), shape1[i]));
            shapeRows.Add((tokens.AsSpan((i * s + pos2[i]) * dc, dc).ToArray(), shape2[i]));
        }
        Console.WriteLine($"# text-probe {modelDir}: {n} horizontal pair captions, ridge regression, sign accuracy on the held-out quarter");
        Console.WriteLine("| probe | features | accuracy |\n|---|---|---|");
        Console.WriteLine($"| relation word | pooled ({dc}) | {relation:F3} |");
        Console.WriteLine($"| role of a colour (first or second) | pooled, per colour | {role:F3} |");
        Console.WriteLine($"| side of a colour | pooled, per colour | {SidePerColour(pooled, dc):F3} |");
        Console.WriteLine($"| side of a colour | the colour word's token, shared | {Ridge(tokenRows):F3} |");
        Console.WriteLine($"| shape of a colour's object (3 classes, chance 0.333) | the colour word's token, shared | {Classify(shapeRows, kinds.Length):F3} |");
        Console.WriteLine($"| side of a colour (control) | bag of words ({vocab}), per colour | {SidePerColour(bag, vocab):F3} |");
        if (places != null)
        {
            int right = Enumerable.Range(0, n).Count(i => (places[(i * s + pos1[i]) * 2] < places[(i * s + pos2[i]) * 2]) == left[i]);
            Console.WriteLine($"| colours on the named sides (no fit) | the token places head | {(double)right / n:F3} |");
        }
    }

    /// <summary>One-vs-rest ridge probes; the fraction of the held-out quarter whose largest score is the right class.</summary>
    private static double Classify(List<(float[] X, int Y)> rows, int classes)
    {
        int m = rows.Count, train = m * 3 / 4;
        var scores = new double[classes][];
        for (int k = 0; k < classes; k++)
            scores[k] = RidgeScores(rows.Select(r => (r.X, r.Y == k ? 1.0 : -1.0)).ToList());
        int right = 0;
        for (int i = 0; i < m - train; i++)
        {
            int best = 0;
            for (int k = 1; k < classes; k++) if (scores[k][i] > scores[best][i]) best = k;
            if (best == rows[train + i].Y) right++;
        }
        return (double)right / (m - train);
    }

    private static double Ridge(List<(float[] X, double Y)> rows, double lambda = 1.0)
    {
        var scores = RidgeScores(rows, lambda);
        int train = rows.Count * 3 / 4, right = 0;
        for (int i = 0; i < scores.Length; i++) if (Math.Sign(scores[i]) == Math.Sign(rows[train + i].Y)) right++;
        return (double)right / scores.Length;
    }

    /// <summary>Fits w, b minimising |Xw + b - y|^2 + lambda |w|^2 on the first 3/4 of the rows (features standardised),
    /// returns its predictions for the last 1/4.</summary>
    private static double[] RidgeScores(List<(float[] X, double Y)> rows, double lambda = 1.0)
    {
        int m = rows.Count, d = rows[0].X.Length, train = m * 3 / 4;
        var mean = new double[d]; var sd = new double[d];
        for (int i = 0; i < train; i++) for (int j = 0; j < d; j++) mean[j] += rows[i].X[j] / train;
        for (int i = 0; i < train; i++) for (int j = 0; j < d; j++) { double z = rows[i].X[j] - mean[j]; sd[j] += z * z / train; }
        for (int j = 0; j < d; j++) sd[j] = sd[j] > 1e-12 ? Math.Sqrt(sd[j]) : 1;
        double[] Z(float[] x) { var z = new double[d + 1]; for (int j = 0; j < d; j++) z[j] = (x[j] - mean[j]) / sd[j]; z[d] = 1; return z; }
        int p = d + 1;
        var a = new double[p, p]; var rhs = new double[p];
        for (int i = 0; i < train; i++)
        {
            var z = Z(rows[i].X);
            for (int r = 0; r < p; r++) { rhs[r] += z[r] * rows[i].Y; for (int c = 0; c < p; c++) a[r, c] += z[r] * z[c]; }
        }
        for (int r = 0; r < d; r++) a[r, r] += lambda;
        var w = Solve(a, rhs);
        var scores = new double[m - train];
        for (int i = train; i < m; i++)
        {
            var z = Z(rows[i].X);
            for (int r = 0; r < p; r++) scores[i - train] += w[r] * z[r];
        }
        return scores;
    }

    /// <summary>Gaussian elimination with partial pivoting (the systems here are small and ridge-regularised).</summary>
    private static double[] Solve(double[,] a, double[] b)
    {
        int n = b.Length;
        for (int k = 0; k < n; k++)
        {
            int piv = k;
            for (int i = k + 1; i < n; i++) if (Math.Abs(a[i, k]) > Math.Abs(a[piv, k])) piv = i;
            if (piv != k) { for (int j = 0; j < n; j++) (a[k, j], a[piv, j]) = (a[piv, j], a[k, j]); (b[k], b[piv]) = (b[piv], b[k]); }
            double d = a[k, k]; if (Math.Abs(d) < 1e-12) continue;
            for (int i = k + 1; i < n; i++)
            {
                double f = a[i, k] / d; if (f == 0) continue;
                for (int j = k; j < n; j++) a[i, j] -= f * a[k, j];
                b[i] -= f * b[k];
            }
        }
        var x = new double[n];
        for (int i = n - 1; i >= 0; i--)
        {
            double s = b[i];
            for (int j = i + 1; j < n; j++) s -= a[i, j] * x[j];
            x[i] = Math.Abs(a[i, i]) < 1e-12 ? 0 : s / a[i, i];
        }
        return x;
    }
}
