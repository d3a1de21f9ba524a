using Pictor.Engine;
using Pictor.Pipelines.Eval;

namespace Pictor.Pipelines.Tests;

/// <summary>The Fréchet distance against closed forms: the Jacobi eigendecomposition reconstructs its matrix, equal sets
/// are at distance 0, a mean shift adds ||d||^2, and for commuting (diagonal) covariances the trace term is
/// sum (sqrt(a_i) - sqrt(b_i))^2.</summary>
public class FrechetDistanceTests
{
    private static double[,] RandomSpd(Rng rng, int d)
    {
        var a = new double[d, d];
        for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) a[i, j] = rng.Uniform(-1f, 1f);
        var s = FrechetDistance.Multiply(a, Transpose(a));
        for (int i = 0; i < d; i++) s[i, i] += 0.1;
        return s;
    }

    private static double[,] Transpose(double[,] a)
    {
        int n = a.GetLength(0), m = a.GetLength(1);
        var t = new double[m, n];
        for (int i = 0; i < n; i++) for (int j = 0; j < m; j++) t[j, i] = a[i, j];
        return t;
    }

    [Fact]
    public void Jacobi_eigenvectors_reconstruct_the_matrix_and_the_square_root_squares_back()
    {
        var s = RandomSpd(new Rng(1), 9);
        var (l, v) = FrechetDistance.SymmetricEigen(s);
        for (int i = 0; i < 9; i++)
            for (int j = 0; j < 9; j++)
            {
                double r = 0; for (int k = 0; k < 9; k++) r += v[i, k] * l[k] * v[j, k];
                Assert.Equal(s[i, j], r, 1e-9);
            }
        var root = FrechetDistance.Sqrt(s);
        var sq = FrechetDistance.Multiply(root, root);
        for (int i = 0; i < 9; i++) for (int j = 0; j < 9; j++) Assert.Equal(s[i, j], sq[i, j], 1e-9);
    }

    [Fact]
    public void Closed_forms()
    {
        var rng = new Rng(2);
        int n = 200, d = 5;
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++) x[i] = rng.Uniform(-1f, 1f) * (1 + i % d);
        Assert.Equal(0, FrechetDistance.Between(x, n, x, n, d), 1e-6);
        // A constant shift moves only the mean.
        var y = x.Select((v, i) => v + (i % d == 2 ? 0.5f : 0f)).ToArray();
        Assert.Equal(0.25, FrechetDistance.Between(x, n, y, n, d), 1e-5);
        // Diagonal covariances: FD = ||m1 - m2||^2 + sum (sqrt(a) - sqrt(b))^2.
        double[] a = [1, 4, 0.25], b = [9, 1, 0.25], m1 = [0, 1, 2], m2 = [1, 1, 0];
        var sa = new double[3, 3]; var sb = new double[3, 3];
        double expected = 1 + 4;
        for (int i = 0; i < 3; i++) { sa[i, i] = a[i]; sb[i, i] = b[i]; expected += Math.Pow(Math.Sqrt(a[i]) - Math.Sqrt(b[i]), 2); }
        Assert.Equal(expected, FrechetDistance.Between(m1, sa, m2, sb), 1e-9);
        // Symmetric in its arguments for non-commuting covariances.
        var s1 = RandomSpd(new Rng(3), 6); var s2 = RandomSpd(new Rng(4), 6); var z = new double[6];
        Assert.Equal(FrechetDistance.Between(z, s1, z, s2), FrechetDistance.Between(z, s2, z, s1), 1e-8);
        Assert.Contains("at least 2 feature vectors", Assert.Throws<ArgumentException>(() => FrechetDistance.Between(x, 1, x, n, d)).Message);
    }
}
