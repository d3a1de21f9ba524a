using Pictor.Engine;

namespace Pictor.Nn;

// Dimension legend: B batch, H heads, T tokens, Dh head width (even), P = Dh / 2 rotated channel pairs.
/// <summary>
/// Rotary position embedding (RoPE: Su et al. 2021, "RoFormer", section 3.4), in GPT-NeoX's half-split pairing:
/// channels i and i + P of the token at position m turn by the angle m theta_i, theta_i = base^(-2i/Dh):
///   y_i     = x_i     cos(m theta_i) - x_{i+P} sin(m theta_i)
///   y_{i+P} = x_{i+P} cos(m theta_i) + x_i     sin(m theta_i)
/// Applied to queries and keys, a rotation by m theta and one by n theta meet in the dot product as a rotation by
/// (n - m) theta, so the attention logit q_m . k_n depends on the two positions only through n - m (the paper's eq. 16).
/// "The word right after me" is then one pattern at every place of the caption, where learned absolute positions need
/// it learned at each place separately. Composed of recorded ops (narrow, multiply, add, concat), so its gradient is
/// theirs: the transpose rotation, by -m theta.
/// </summary>
public static class Rotary
{
    /// <summary>The wavelength base of RoFormer and most models since.</summary>
    public const double Base = 10000;

    /// <summary>x [.., T, Dh] -> [.., T, Dh], row t rotated as position <paramref name="start"/> + t.</summary>
    public static Tensor Apply(Tensor x, int start = 0)
    {
        int r = x.Shape.Length;
        if (r < 2) Throw.Argument($"rotary position embedding needs [.., T, Dh], got {Shape.Format(x.Shape)}");
        int t = x.Shape[r - 2], dh = x.Shape[r - 1], p = dh / 2;
        if (dh % 2 != 0) Throw.Argument($"rotary position embedding turns channel pairs, so the head width must be even, got {dh}; choose a width and head count whose quotient is even");
        var (cos, sin) = Tables(t, p, start);                            // (T, P) each, broadcast over the leading axes
        var x1 = Ops.Narrow(x, r - 1, 0, p);                             // (.., T, P)
        var x2 = Ops.Narrow(x, r - 1, p, p);                             // (.., T, P)
        var y1 = Ops.Sub(Ops.Mul(x1, cos), Ops.Mul(x2, sin));
        var y2 = Ops.Add(Ops.Mul(x2, cos), Ops.Mul(x1, sin));
        return Ops.Concat([y1, y2], r - 1);                              // (.., T, Dh)
    }

    /// <summary>cos and sin of (start + t) theta_i for t &lt; T, i &lt; P, as [T, P] tensors (angles in double).</summary>
    public static (Tensor Cos, Tensor Sin) Tables(int t, int p, int start = 0)
    {
        var c = new float[t * p]; var s = new float[t * p];
        for (int m = 0; m < t; m++)
            for (int i = 0; i < p; i++)
            {
                double a = (start + m) * Math.Pow(Base, -(double)i / p);   // theta_i = base^(-2i/Dh), Dh = 2P
                c[m * p + i] = (float)Math.Cos(a); s[m * p + i] = (float)Math.Sin(a);
            }
        return (Tensor.FromArray(c, t, p), Tensor.FromArray(s, t, p));
    }
}
