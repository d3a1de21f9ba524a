using Pictor.Engine;
using Pictor.TestSupport;

namespace Pictor.Engine.Tests;

/// <summary>Ops.AddInPlace: Add's values and gradients, written over its first operand's storage (no new buffer), and
/// a clear error for code that still reads the overwritten operand.</summary>
public class AddInPlaceTests
{
    // The first operand must be an op's fresh output; MulScalar's backward does not read its output, like Conv2d's and MatMul's.
    private static Tensor Fresh(Tensor x) => Ops.MulScalar(x, 1f);

    [Fact]
    public void Gradients_match_finite_differences_same_shape_and_broadcast()
    {
        OpCheck.Check("AddInPlace", [OpCheck.Randn(1, true, 2, 3, 4), OpCheck.Randn(2, true, 2, 3, 4)],
            x => Ops.AddInPlace(Fresh(x[0]), x[1]), d => RefOps.Binary(d[0], d[1], (a, b) => a + b));
        OpCheck.Check("AddInPlace broadcast", [OpCheck.Randn(3, true, 2, 3, 4, 5), OpCheck.Randn(4, true, 2, 3, 1, 1)],
            x => Ops.AddInPlace(Fresh(x[0]), x[1]), d => RefOps.Binary(d[0], d[1], (a, b) => a + b));
    }

    [Fact]
    public void Same_bits_as_Add_and_no_new_buffer()
    {
        var x = OpCheck.Randn(5, false, 4, 8, 6, 6); var bias = OpCheck.Randn(6, false, 4, 8, 1, 1);
        using var scope = TensorScope.Begin();
        var expected = Ops.Add(Fresh(x), bias).ToArray();
        var a = Fresh(x);
        long before = BufferPool.RentalsOnThisThread;
        var y = Ops.AddInPlace(a, bias);
        Assert.Equal(before, BufferPool.RentalsOnThisThread);
        Assert.Equal(expected, y.ToArray());
    }

    [Fact]
    public void Reading_the_overwritten_operand_throws_and_says_what_to_use()
    {
        var x = OpCheck.Randn(7, true, 3, 5); var b = OpCheck.Randn(8, true, 3, 5);
        var a = Fresh(x);
        Ops.AddInPlace(a, b);
        var e = Assert.Throws<InvalidOperationException>(() => a.ToArray());
        Assert.Contains("Ops.Add", e.Message);

        // Exp's backward reads its own output, so summing into it in place is a mistake the backward pass reports.
        var ex = Ops.Exp(x);
        var y = Ops.AddInPlace(ex, b);
        Assert.Throws<InvalidOperationException>(() => Ops.Sum(y).Backward());
    }

    [Fact]
    public void A_parameter_or_a_strided_view_is_never_overwritten()
    {
        var p = OpCheck.Randn(9, true, 3, 4); var b = OpCheck.Randn(10, false, 3, 4);
        var before = p.ToArray();
        var y = Ops.AddInPlace(p, b);
        Assert.Equal(before, p.ToArray());
        Assert.NotSame(p.Storage, y.Storage);

        var m = Fresh(OpCheck.Randn(11, false, 4, 3));
        var t = Ops.Transpose(m, 0, 1);   // [3, 4], not contiguous
        var mBefore = m.ToArray();
        Ops.AddInPlace(t, b);
        Assert.Equal(mBefore, m.ToArray());
    }
}
