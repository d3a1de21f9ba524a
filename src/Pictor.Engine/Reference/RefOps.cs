namespace Pictor.Engine.Reference;

// Dimension legend: B batch, C channels, O output channels, H/W height and width, OH/OW output size, KH/KW kernel
// size, Tq/Tk query and key tokens, Dh head width, Dv value width, M/K/N the sizes of a matrix product.

/// <summary>A double-precision array with a shape (row-major): the reference kernels' currency.</summary>
public sealed record D(double[] V, int[] S)
{
    public int N => V.Length;

    /// <summary>The values of a float32 tensor (any strides), widened to double, with its shape.</summary>
    public static D Of(Tensor t) => new(t.ToArray().Select(x => (double)x).ToArray(), (int[])t.Shape.Clone());

    /// <summary>Row-major strides of shape s.</summary>
    public static int[] Strides(int[] s)
    {
        var r = new int[s.Length]; int a = 1;
        for (int i = s.Length - 1; i >= 0; i--) { r[i] = a; a *= s[i]; }
        return r;
    }
}

/// <summary>
/// Plain double-precision reference kernels, written for clarity: direct loops over the textbook definition. They are
/// the oracle for the fast float32 kernels (forward) and, through central differences in double, for every gradient
/// (<see cref="OpOracle"/>). No vectors, no blocking, no threads: each is read against its formula.
/// </summary>
public static class RefOps
{
    /// <summary>f elementwise with NumPy broadcasting: a [..], b [..] -> the broadcast shape.</summary>
    public static D Binary(D a, D b, Func<double, double, double> f)
    {
        int rank = Math.Max(a.S.Length, b.S.Length);
        var s = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.S.Length ? 1 : a.S[i - (rank - a.S.Length)];
            int db = i < rank - b.S.Length ? 1 : b.S[i - (rank - b.S.Length)];
            s[i] = Math.Max(da, db);
        }
        int n = s.Aggregate(1, (x, y) => x * y);
        var r = new double[n];
        var idx = new int[rank];
        for (int i = 0; i < n; i++)
        {
            int rem = i;
            for (int d = rank - 1; d >= 0; d--) { idx[d] = rem % s[d]; rem /= s[d]; }
            r[i] = f(a.V[Flat(a.S, idx)], b.V[Flat(b.S, idx)]);
        }
        return new D(r, s);
    }

    private static int Flat(int[] shape, int[] idx)
    {
        int off = 0, o = idx.Length - shape.Length;
        for (int d = 0; d < shape.Length; d++) off = off * shape[d] + (shape[d] == 1 ? 0 : idx[d + o]);
        return off;
    }

    /// <summary>f elementwise, same shape.</summary>
    public static D Map(D a, Func<double, double> f) => new(a.V.Select(f).ToArray(), a.S);

    public static double Erf(double x)
    {
        // Abramowitz-Stegun 7.1.26 is not precise enough for gradient checks; integrate the series instead.
        double sum = x, term = x, x2 = x * x;
        if (Math.Abs(x) > 5) return Math.Sign(x);
        for (int n = 1; n < 200; n++) { term *= -x2 / n; sum += term / (2 * n + 1); if (Math.Abs(term) < 1e-17) break; }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    public static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));
    public static double GeluTanh(double x) =>
        0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    public static double Silu(double x) => x / (1 + Math.Exp(-x));

    /// <summary>Sum over axes (keepdim false): [..] -> [..] without the summed axes.</summary>
    public static D Sum(D a, int[] axes)
    {
        var red = new bool[a.S.Length];
        foreach (int ax in axes) red[ax < 0 ? ax + a.S.Length : ax] = true;
        var outS = a.S.Where((_, d) => !red[d]).ToArray();
        var r = new double[Math.Max(1, outS.Aggregate(1, (x, y) => x * y))];
        var idx = new int[a.S.Length];
        for (int i = 0; i < a.N; i++)
        {
            int rem = i;
            for (int d = a.S.Length - 1; d >= 0; d--) { idx[d] = rem % a.S[d]; rem /= a.S[d]; }
            int o = 0;
            for (int d = 0; d < a.S.Length; d++) if (!red[d]) o = o * a.S[d] + idx[d];
            r[o] += a.V[i];
        }
        return new D(r, outS);
    }

    /// <summary>Max over one axis (keepdim false).</summary>
    public static D Max(D a, int axis)
    {
        int outer = a.S.Take(axis).Aggregate(1, (x, y) => x * y), n = a.S[axis];
        int inner = a.S.Skip(axis + 1).Aggregate(1, (x, y) => x * y);
        var r = new double[outer * inner];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                double m = double.NegativeInfinity;
                for (int k = 0; k < n; k++) m = Math.Max(m, a.V[(o * n + k) * inner + i]);
                r[o * inner + i] = m;
            }
        return new D(r, a.S.Where((_, d) => d != axis).ToArray());
    }

    /// <summary>[.., M, K] x [K, N] or batched [.., M, K] x [.., K, N].</summary>
    public static D MatMul(D a, D b)
    {
        int m = a.S[^2], k = a.S[^1], n = b.S[^1];
        int batch = a.N / (m * k);
        bool shared = b.S.Length == 2;
        var r = new double[batch * m * n];
        for (int t = 0; t < batch; t++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                        s += a.V[(t * m + i) * k + p] * b.V[(shared ? 0 : t * k * n) + p * n + j];
                    r[(t * m + i) * n + j] = s;
                }
        var shape = (int[])a.S.Clone(); shape[^1] = n;
        return new D(r, shape);
    }

    /// <summary>x [.., In], W [Out, In], b [Out].</summary>
    public static D Linear(D x, D w, D? b)
    {
        int inF = w.S[1], outF = w.S[0], rows = x.N / inF;
        var r = new double[rows * outF];
        for (int i = 0; i < rows; i++)
            for (int o = 0; o < outF; o++)
            {
                double s = b?.V[o] ?? 0;
                for (int p = 0; p < inF; p++) s += x.V[i * inF + p] * w.V[o * inF + p];
                r[i * outF + o] = s;
            }
        var shape = (int[])x.S.Clone(); shape[^1] = outF;
        return new D(r, shape);
    }

    /// <summary>Cross-correlation: x [B, C, H, W], w [O, C/groups, KH, KW], bias [O] -> [B, O, OH, OW].</summary>
    public static D Conv2d(D x, D w, D? bias, int stride, int pad, int groups)
    {
        int B = x.S[0], C = x.S[1], H = x.S[2], W = x.S[3], O = w.S[0], KH = w.S[2], KW = w.S[3];
        int cg = C / groups, og = O / groups;
        int OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
        var r = new double[B * O * OH * OW];
        for (int b = 0; b < B; b++)
            for (int o = 0; o < O; o++)
            {
                int g = o / og;
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++)
                    {
                        double s = bias?.V[o] ?? 0;
                        for (int c = 0; c < cg; c++)
                            for (int u = 0; u < KH; u++)
                                for (int v = 0; v < KW; v++)
                                {
                                    int iy = oy * stride - pad + u, ix = ox * stride - pad + v;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                    s += x.V[((b * C + g * cg + c) * H + iy) * W + ix]
                                       * w.V[((o * cg + c) * KH + u) * KW + v];
                                }
                        r[((b * O + o) * OH + oy) * OW + ox] = s;
                    }
            }
        return new D(r, [B, O, OH, OW]);
    }

    /// <summary>Nearest neighbour: [B, C, H, W] -> [B, C, sH, sW].</summary>
    public static D Upsample(D x, int s)
    {
        int B = x.S[0], C = x.S[1], H = x.S[2], W = x.S[3];
        var r = new double[B * C * H * s * W * s];
        for (int p = 0; p < B * C; p++)
            for (int i = 0; i < H * s; i++)
                for (int j = 0; j < W * s; j++)
                    r[(p * H * s + i) * W * s + j] = x.V[(p * H + i / s) * W + j / s];
        return new D(r, [B, C, H * s, W * s]);
    }

    /// <summary>k x k windows, stride k: [B, C, H, W] -> [B, C, H/k, W/k].</summary>
    public static D AvgPool(D x, int k)
    {
        int B = x.S[0], C = x.S[1], H = x.S[2], W = x.S[3], OH = H / k, OW = W / k;
        var r = new double[B * C * OH * OW];
        for (int p = 0; p < B * C; p++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++)
                {
                    double s = 0;
                    for (int u = 0; u < k; u++)
                        for (int v = 0; v < k; v++) s += x.V[(p * H + i * k + u) * W + j * k + v];
                    r[(p * OH + i) * OW + j] = s / (k * k);
                }
        return new D(r, [B, C, OH, OW]);
    }

    /// <summary>x [B, C, ..] normalised over each group of C/groups channels; gamma, beta [C].</summary>
    public static D GroupNorm(D x, int groups, D? gamma, D? beta, double eps)
    {
        int B = x.S[0], C = x.S[1], S = x.N / (B * C), cg = C / groups, n = cg * S;
        var r = new double[x.N];
        for (int b = 0; b < B; b++)
            for (int g = 0; g < groups; g++)
            {
                int off = (b * C + g * cg) * S;
                double mu = 0; for (int i = 0; i < n; i++) mu += x.V[off + i]; mu /= n;
                double var = 0;
                for (int i = 0; i < n; i++) var += (x.V[off + i] - mu) * (x.V[off + i] - mu);
                var /= n;
                for (int i = 0; i < n; i++)
                {
                    int c = g * cg + i / S;
                    r[off + i] = (x.V[off + i] - mu) / Math.Sqrt(var + eps) * (gamma?.V[c] ?? 1) + (beta?.V[c] ?? 0);
                }
            }
        return new D(r, x.S);
    }

    /// <summary>x [.., C] normalised over the last axis; gamma, beta [C].</summary>
    public static D LayerNorm(D x, D? gamma, D? beta, double eps)
    {
        int d = x.S[^1], rows = x.N / d;
        var r = new double[x.N];
        for (int row = 0; row < rows; row++)
        {
            double mu = 0; for (int i = 0; i < d; i++) mu += x.V[row * d + i]; mu /= d;
            double var = 0;
            for (int i = 0; i < d; i++) var += Math.Pow(x.V[row * d + i] - mu, 2);
            var /= d;
            for (int i = 0; i < d; i++)
                r[row * d + i] = (x.V[row * d + i] - mu) / Math.Sqrt(var + eps) * (gamma?.V[i] ?? 1)
                               + (beta?.V[i] ?? 0);
        }
        return new D(r, x.S);
    }

    /// <summary>Softmax / log-softmax over the last axis.</summary>
    public static D Softmax(D x, bool log)
    {
        int c = x.S[^1], rows = x.N / c;
        var r = new double[x.N];
        for (int row = 0; row < rows; row++)
        {
            double m = double.NegativeInfinity; for (int i = 0; i < c; i++) m = Math.Max(m, x.V[row * c + i]);
            double s = 0; for (int i = 0; i < c; i++) s += Math.Exp(x.V[row * c + i] - m);
            for (int i = 0; i < c; i++)
                r[row * c + i] = log ? x.V[row * c + i] - m - Math.Log(s) : Math.Exp(x.V[row * c + i] - m) / s;
        }
        return new D(r, x.S);
    }

    /// <summary>Mean over rows not equal to <paramref name="ignore"/> (weighted by rowWeights) of the label-smoothed
    /// negative log-likelihood: logits [R, C], targets [R] -> [].</summary>
    public static D CrossEntropy(D logits, int[] targets, int ignore, double smoothing, double[]? rowWeights = null)
    {
        var lp = Softmax(logits, log: true);
        int c = logits.S[^1];
        double total = 0, count = 0;
        for (int r = 0; r < targets.Length; r++)
        {
            if (targets[r] == ignore) continue;
            double w = rowWeights?[r] ?? 1;
            double l = -(1 - smoothing) * lp.V[r * c + targets[r]];
            for (int i = 0; i < c; i++) l -= smoothing / c * lp.V[r * c + i];
            total += w * l; count += w;
        }
        return new D([total / count], []);
    }

    /// <summary>Rows of w [V, C] at ids [N] -> [N, C].</summary>
    public static D Embedding(int[] ids, D w)
    {
        int d = w.S[1];
        var r = new double[ids.Length * d];
        for (int i = 0; i < ids.Length; i++) Array.Copy(w.V, ids[i] * d, r, i * d, d);
        return new D(r, [ids.Length, d]);
    }

    /// <summary>Inputs of equal shape but for <paramref name="axis"/>, joined along it.</summary>
    public static D Concat(D[] xs, int axis)
    {
        var s = (int[])xs[0].S.Clone(); s[axis] = xs.Sum(x => x.S[axis]);
        int outer = s.Take(axis).Aggregate(1, (p, q) => p * q), inner = s.Skip(axis + 1).Aggregate(1, (p, q) => p * q);
        var r = new List<double>();
        for (int o = 0; o < outer; o++)
            foreach (var x in xs) r.AddRange(x.V.Skip(o * x.S[axis] * inner).Take(x.S[axis] * inner));
        return new D(r.ToArray(), s);
    }

    /// <summary>r[i..] = x[i.. with index[i..] on <paramref name="axis"/>] (torch.gather): -> indexShape.</summary>
    public static D Gather(D x, int axis, int[] index, int[] indexShape)
    {
        var r = new double[index.Length];
        var xs = D.Strides(x.S);
        var idx = new int[indexShape.Length];
        for (int i = 0; i < index.Length; i++)
        {
            int rem = i;
            for (int d = indexShape.Length - 1; d >= 0; d--) { idx[d] = rem % indexShape[d]; rem /= indexShape[d]; }
            int off = 0;
            for (int d = 0; d < idx.Length; d++) off += (d == axis ? index[i] : idx[d]) * xs[d];
            r[i] = x.V[off];
        }
        return new D(r, indexShape);
    }

    /// <summary>Spectral normalisation (Ops.SpectralNorm): <paramref name="iterations"/> power steps on copies of u [O]
    /// and v [K], then W / (u^T W v), W read as [O, K].</summary>
    public static D SpectralNorm(D w, double[] u0, double[] v0, int iterations)
    {
        int o = w.S[0], k = w.V.Length / o;
        double[] u = (double[])u0.Clone(), v = (double[])v0.Clone();
        static void Unit(double[] x)
        {
            double n = Math.Max(Math.Sqrt(x.Sum(a => a * a)), 1e-12);
            for (int i = 0; i < x.Length; i++) x[i] /= n;
        }
        for (int it = 0; it < iterations; it++)
        {
            for (int i = 0; i < o; i++)
            {
                double s = 0;
                for (int j = 0; j < k; j++) s += w.V[i * k + j] * v[j];
                u[i] = s;
            }
            Unit(u);
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int i = 0; i < o; i++) s += w.V[i * k + j] * u[i];
                v[j] = s;
            }
            Unit(v);
        }
        double sigma = 0;
        for (int i = 0; i < o; i++) for (int j = 0; j < k; j++) sigma += u[i] * w.V[i * k + j] * v[j];
        return new D(w.V.Select(a => a / sigma).ToArray(), w.S);
    }

    /// <summary>q [B, H, Tq, Dh], k [B, H, Tk, Dh], v [B, H, Tk, Dv] -> [B, H, Tq, Dv]; causal aligned to the end;
    /// pad [B*Tk] true = hidden.</summary>
    public static D Attention(D q, D k, D v, bool causal, bool[]? pad)
    {
        int B = q.S[0], H = q.S[1], Tq = q.S[2], Dh = q.S[3], Tk = k.S[2], Dv = v.S[3];
        double scale = 1 / Math.Sqrt(Dh);
        var r = new double[B * H * Tq * Dv];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < Tq; i++)
                {
                    var s = new double[Tk];
                    bool any = false;
                    for (int j = 0; j < Tk; j++)
                    {
                        bool hidden = (causal && j > i + (Tk - Tq)) || (pad != null && pad[b * Tk + j]);
                        if (hidden) { s[j] = double.NegativeInfinity; continue; }
                        any = true;
                        double dot = 0;
                        for (int d = 0; d < Dh; d++)
                            dot += q.V[((b * H + h) * Tq + i) * Dh + d] * k.V[((b * H + h) * Tk + j) * Dh + d];
                        s[j] = dot * scale;
                    }
                    if (!any) continue;
                    double m = s.Max(), z = s.Sum(e => Math.Exp(e - m));
                    for (int j = 0; j < Tk; j++)
                    {
                        double p = Math.Exp(s[j] - m) / z;
                        for (int d = 0; d < Dv; d++)
                            r[((b * H + h) * Tq + i) * Dv + d] += p * v.V[((b * H + h) * Tk + j) * Dv + d];
                    }
                }
        return new D(r, [B, H, Tq, Dv]);
    }
}
