namespace Pictor.Engine.Kernels;

/// <summary>
/// im2col / col2im for 2-D convolution of one image. col has shape [C*KH*KW, OH*OW]: row (c, kh, kw) holds the input
/// pixel each output position reads through that kernel tap (0 in the padding). col2im is its adjoint (accumulates).
/// </summary>
internal static class Im2Col
{
    /// <summary>x [C, H, W] -> col [C*KH*KW, OH*OW].</summary>
    public static void Forward(ReadOnlySpan<float> x, int c, int h, int w, int kh, int kw, int stride, int pad,
                               int oh, int ow, Span<float> col)
    {
        int row = 0;
        for (int ci = 0; ci < c; ci++)
            for (int u = 0; u < kh; u++)
                for (int v = 0; v < kw; v++, row++)
                {
                    var dst = col.Slice(row * oh * ow, oh * ow);
                    for (int oy = 0; oy < oh; oy++)
                    {
                        int iy = oy * stride - pad + u;
                        var d = dst.Slice(oy * ow, ow);
                        if ((uint)iy >= (uint)h) { d.Clear(); continue; }
                        var src = x.Slice((ci * h + iy) * w, w);
                        if (stride == 1)
                        {
                            // Contiguous run: ox in [lo, hi) reads src[ox - pad + v].
                            int lo = Math.Max(0, pad - v), hi = Math.Min(ow, w + pad - v);
                            if (lo > 0) d.Slice(0, Math.Min(lo, ow)).Clear();
                            if (hi > lo) src.Slice(lo - pad + v, hi - lo).CopyTo(d.Slice(lo, hi - lo));
                            if (hi < ow) d.Slice(Math.Max(hi, 0)).Clear();
                        }
                        else
                        {
                            for (int ox = 0; ox < ow; ox++)
                            {
                                int ix = ox * stride - pad + v;
                                d[ox] = (uint)ix < (uint)w ? src[ix] : 0f;
                            }
                        }
                    }
                }
    }

    /// <summary>dx [C, H, W] += col2im(dcol [C*KH*KW, OH*OW]).</summary>
    public static void Backward(ReadOnlySpan<float> dcol, int c, int h, int w, int kh, int kw, int stride, int pad,
                                int oh, int ow, Span<float> dx)
    {
        int row = 0;
        for (int ci = 0; ci < c; ci++)
            for (int u = 0; u < kh; u++)
                for (int v = 0; v < kw; v++, row++)
                {
                    var src = dcol.Slice(row * oh * ow, oh * ow);
                    for (int oy = 0; oy < oh; oy++)
                    {
                        int iy = oy * stride - pad + u;
                        if ((uint)iy >= (uint)h) continue;
                        var d = dx.Slice((ci * h + iy) * w, w);
                        var s = src.Slice(oy * ow, ow);
                        for (int ox = 0; ox < ow; ox++)
                        {
                            int ix = ox * stride - pad + v;
                            if ((uint)ix < (uint)w) d[ix] += s[ox];
                        }
                    }
                }
    }
}
