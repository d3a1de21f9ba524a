namespace Pictor.Pipelines.Eval;

/// <summary>
/// Fréchet distance between two Gaussians fitted to feature sets (Heusel et al. 2017, "GANs Trained by a Two
/// Time-Scale Update Rule Converge to a Local Nash Equilibrium", eq. 6, the FID formula; here in CLIP image-feature
/// space): d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)). Tr (S1 S2)^(1/2) is computed as the sum of square
/// roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), which is symmetric positive semi-definite and has the same
/// eigenvalues as S1 S2, so only symmetric eigendecompositions (cyclic Jacobi, in double precision) are needed.
/// </summary>
public static class FrechetDistance
{
    /// <summary>Features [n, d] row-major -> (mean [d], covariance [d, d] with the n - 1 denominator).</summary>
    public static (double[] Mean, double[,] Cov) Fit(float[] features, int n, int d)
    {
        if (n < 2) throw new ArgumentException($"a Fréchet distance needs at least 2 feature vectors per set, got {n}");
        var mu = new double[d];
        for (int i = 0; i < n; i++) for (int k = 0; k < d; k++) mu[k] += features[i * d + k];
        for (int k = 0; k < d; k++) mu[k] /= n;
        var cov = new double[d, d];
        var row = new double[d];
        for (int i = 0; i < n; i++)
        {
            for (int k = 0; k < d; k++) row[k] = features[i * d + k] - mu[k];
            for (int a = 0; a < d; a++) for (int b = a; b < d; b++) cov[a, b] += row[a] * row[b];
        }
        for (int a = 0; a < d; a++) for (int b = a; b < d; b++) { cov[a, b] /= n - 1; cov[b, a] = cov[a, b]; }
        return (mu, cov);
    }

    public static double Between(float[] a, int na, float[] b, int nb, int d)
    {
        var (m1, s1) = Fit(a, na, d); var (m2, s2) = Fit(b, nb, d);
        return Between(m1, s1, m2, s2);
    }

    public static double Between(double[] m1, double[,] s1, double[] m2, double[,] s2)
    {
        int d = m1.Length;
        double mean = 0, trace = 0;
        for (int k = 0; k < d; k++) { mean += (m1[k] - m2[k]) * (m1[k] - m2[k]); trace += s1[k, k] + s2[k, k]; }
        var root = Sqrt(s1);                                            // S1^(1/2)
        var m = Multiply(Multiply(root, s2), root);                     // S1^(1/2) S2 S1^(1/2)
        var (eig, _) = SymmetricEigen(m);
        double trSqrt = eig.Sum(v => Math.Sqrt(Math.Max(v, 0)));       // tiny negative eigenvalues are rounding
        return Math.Max(0, mean + trace - 2 * trSqrt);
    }

    /// <summary>Square root of a symmetric PSD matrix: V diag(sqrt(max(l, 0))) V^T.</summary>
    public static double[,] Sqrt(double[,] s)
    {
        int d = s.GetLength(0);
        var (l, v) = SymmetricEigen(s);
        var r = new double[d, d];
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
            {
                double sum = 0;
                for (int k = 0; k < d; k++) sum += v[a, k] * Math.Sqrt(Math.Max(l[k], 0)) * v[b, k];
                r[a, b] = sum;
            }
        return r;
    }

    public static double[,] Multiply(double[,] x, double[,] y)
    {
        int n = x.GetLength(0), m = y.GetLength(1), k = x.GetLength(1);
        var r = new double[n, m];
        for (int i = 0; i < n; i++)
            for (int p = 0; p < k; p++)
            {
                double xv = x[i, p];
                if (xv == 0) continue;
                for (int j = 0; j < m; j++) r[i, j] += xv * y[p, j];
            }
        return r;
    }

    /// <summary>Eigenvalues and eigenvectors (columns of V) of a symmetric matrix by cyclic Jacobi rotations (Golub and
    /// Van Loan, "Matrix Computations", 4th ed., section 8.5), sweeping until the off-diagonal mass is
    /// negligible.</summary>
    public static (double[] Values, double[,] Vectors) SymmetricEigen(double[,] input)
    {
        int n = input.GetLength(0);
        var a = (double[,])input.Clone();
        var v = new double[n, n];
        for (int i = 0; i < n; i++) v[i, i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, total = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) { total += a[i, j] * a[i, j]; if (i != j) off += a[i, j] * a[i, j]; }
            if (off <= 1e-22 * Math.Max(total, 1e-300)) break;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double apq = a[p, q];
                    if (Math.Abs(apq) < 1e-300) continue;
                    double theta = (a[q, q] - a[p, p]) / (2 * apq);
                    double t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++)                              // A <- A J (columns p, q)
                    {
                        double akp = a[k, p], akq = a[k, q];
                        a[k, p] = c * akp - s * akq; a[k, q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++)                              // A <- J^T A (rows p, q)
                    {
                        double apk = a[p, k], aqk = a[q, k];
                        a[p, k] = c * apk - s * aqk; a[q, k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < n; k++)                              // V <- V J
                    {
                        double vkp = v[k, p], vkq = v[k, q];
                        v[k, p] = c * vkp - s * vkq; v[k, q] = s * vkp + c * vkq;
                    }
                }
        }
        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = a[i, i];
        return (values, v);
    }
}
