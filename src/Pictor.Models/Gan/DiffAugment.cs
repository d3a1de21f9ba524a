using Pictor.Engine;

namespace Pictor.Models.Gan;

// Dimension legend: B batch, H = W image side.

/// <summary>One image's augmentation: a shift (dx, dy) in pixels and a cutout square's top-left corner (its side is
/// the config's share of the image; a side of 0 is no cutout).</summary>
public readonly record struct AugmentDraw(int Dx, int Dy, int CutX, int CutY);

/// <summary>
/// Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the
/// same random translation and cutout applied to real and generated images wherever the discriminator sees them,
/// including the generator's step, where the gradient flows back through it to the generator. It keeps the
/// discriminator from memorising a small training set. Translation and cutout only: the paper's colour transform would
/// change the colours the captions name ("red apple").
///     translation: out[y, x] = in[y - dy, x - dx], zero outside the image, |dx|, |dy| &lt;= round(ratio H / 2)
///     cutout: a square of side round(ratio H) set to zero, its top-left corner anywhere it fits
/// (the paper's default ratios are 1/8 and 1/2).
/// </summary>
public static class DiffAugment
{
    /// <summary>Draws one image's augmentation from <paramref name="rng"/> (three or four numbers, always the same
    /// count for a config, so the stream stays aligned across ranks).</summary>
    public static AugmentDraw Draw(Rng rng, int side, float translation, float cutout)
    {
        int t = (int)MathF.Round(translation * side / 2), c = CutSide(side, cutout);
        int dx = rng.NextInt(2 * t + 1) - t, dy = rng.NextInt(2 * t + 1) - t;
        int cx = rng.NextInt(side - c + 1), cy = rng.NextInt(side - c + 1);
        return new AugmentDraw(dx, dy, cx, cy);
    }

    /// <summary>The cutout square's side in pixels.</summary>
    public static int CutSide(int side, float cutout) => (int)MathF.Round(cutout * side);

    /// <summary>Images x [B, 3, H, W] with row b augmented by draws[b] -> [B, 3, H, W], differentiable in x.</summary>
    public static Tensor Apply(Tensor x, IReadOnlyList<AugmentDraw> draws, float cutout)
    {
        int b = x.Shape[0], ch = x.Shape[1], side = x.Shape[2], n = side * side;
        if (draws.Count != b) Throw.Argument($"DiffAugment: {draws.Count} draws for a batch of {b}");
        int cut = CutSide(side, cutout);
        var index = new int[b * ch * n];
        var mask = new float[b * ch * n];
        for (int i = 0; i < b; i++)
        {
            var d = draws[i];
            for (int y = 0; y < side; y++)
                for (int xx = 0; xx < side; xx++)
                {
                    int sy = y - d.Dy, sx = xx - d.Dx;
                    bool inside = sy >= 0 && sy < side && sx >= 0 && sx < side;
                    bool cutHere = y >= d.CutY && y < d.CutY + cut && xx >= d.CutX && xx < d.CutX + cut;
                    for (int c = 0; c < ch; c++)
                    {
                        int o = (i * ch + c) * n + y * side + xx;
                        index[o] = inside ? sy * side + sx : 0;
                        mask[o] = inside && !cutHere ? 1f : 0f;
                    }
                }
        }
        var flat = Ops.Reshape(x, b, ch, n);                                                  // (B, 3, H*W)
        var moved = Ops.Gather(flat, 2, new IntTensor(index, b, ch, n));                      // (B, 3, H*W)
        return Ops.Reshape(Ops.Mul(moved, Tensor.FromArray(mask, b, ch, n)), b, ch, side, side);
    }
}
