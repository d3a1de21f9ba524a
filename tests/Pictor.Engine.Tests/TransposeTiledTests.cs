using Pictor.Engine.Kernels;

namespace Pictor.Engine.Tests;

/// <summary>The tiled transpose behind strided copies against the odometer it replaces (the reference): gathers,
/// writes and accumulates, tile edges, batches split over threads, and the layouts it must leave alone.</summary>
public class TransposeTiledTests
{
    private static Tensor Random(ulong seed, params int[] shape)
    {
        var x = new float[Shape.Numel(shape)];
        new Rng(seed).FillUniform(x, -1, 1);
        return Tensor.FromArray(x, shape);
    }

    [Theory]
    [InlineData(1, 3, 5)]          // one small matrix, smaller than a tile
    [InlineData(2, 17, 33)]        // tile edges on both axes
    [InlineData(32, 32, 1024)]     // an AttnBlock's [B, C, H*W] at 32x32: 1 M elements, split over threads
    [InlineData(3, 64, 256)]
    public void Gather_and_scatter_equal_the_odometer(int b, int c, int t)
    {
        var x = Random(1, b, c, t);
        var view = Ops.Transpose(x, 1, 2);                  // [B, T, C], strides [C*T, 1, T]
        Assert.Equal(c * t >= TransposeTiled.MinMatrix, TransposeTiled.Applies(view.Shape, view.Strides));
        var fast = new float[x.Numel]; var reference = new float[x.Numel];
        TransposeTiled.Gather(x.Storage, view.Offset, view.Shape, view.Strides, fast);
        StridedCopy.ToContiguousReference(view, reference);
        Assert.Equal(reference, fast);
        Assert.Equal(x.ToArray()[1 * t], fast[1]);          // element (0, 0, 1) of the view is x[0, 1, 0]

        var src = Random(2, b, t, c).ToArray();
        foreach (bool accumulate in new[] { false, true })
        {
            var d1 = Random(3, b, c, t); var d2 = Random(3, b, c, t);
            var v1 = Ops.Transpose(d1, 1, 2);
            TransposeTiled.Scatter(src, d1.Storage, v1.Offset, v1.Shape, v1.Strides, accumulate);
            StridedCopy.WriteFromContiguousReference(src, Ops.Transpose(d2, 1, 2), accumulate);
            Assert.Equal(d2.ToArray(), d1.ToArray());
        }
    }

    [Fact]
    public void Rank_four_permutes_and_narrowed_views_match_too()
    {
        var x = Random(4, 2, 3, 200, 180);
        foreach (var view in new[] { Ops.Permute(x, 0, 1, 3, 2), Ops.Permute(x, 1, 0, 3, 2), Ops.Narrow(Ops.Permute(x, 0, 1, 3, 2), 2, 3, 110) })
        {
            Assert.True(TransposeTiled.Applies(view.Shape, view.Strides));
            var fast = new float[view.Numel]; var reference = new float[view.Numel];
            StridedCopy.ToContiguous(view, fast);
            StridedCopy.ToContiguousReference(view, reference);
            Assert.Equal(reference, fast);
        }
    }

    [Fact]
    public void Layouts_it_must_not_take_stay_on_the_reference()
    {
        var x = Random(5, 200, 200);
        Assert.False(TransposeTiled.Applies(x.Shape, x.Strides));                                       // contiguous
        Assert.True(TransposeTiled.Applies([200, 200], [1, 200]));                                      // its transpose
        Assert.False(TransposeTiled.Applies([20, 20], [1, 20]));                                        // small: the odometer is faster
        Assert.False(TransposeTiled.Applies([2, 200, 200], [0, 1, 200]));                               // broadcast batch: matrices share storage
        Assert.False(TransposeTiled.Applies([200, 200], [1, 0]));                                       // stride-0 last axis: elements share storage
        Assert.False(TransposeTiled.Applies([200, 200], [1, 100]));                                     // rows overlap
    }
}
