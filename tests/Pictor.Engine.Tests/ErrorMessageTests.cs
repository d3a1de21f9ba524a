using Pictor.Engine;

namespace Pictor.Engine.Tests;

/// <summary>Bad input gets an error that names what was found and what was expected.</summary>
public class ErrorMessageTests
{
    private static string Err(Action a) => Assert.Throws<ArgumentException>(a).Message;

    [Fact]
    public void Shape_errors_name_both_shapes()
    {
        Assert.Contains("shapes [2, 3] and [4] cannot be broadcast", Err(() => Ops.Add(Tensor.Zeros(2, 3), Tensor.Zeros(4))));
        Assert.Contains("cannot reshape [2, 3] (6 elements) to [4, 2]", Err(() => Ops.Reshape(Tensor.Zeros(2, 3), 4, 2)));
        Assert.Contains("conv2d input must be [B, C, H, W], got [3, 8, 8]", Err(() => Ops.Conv2d(Tensor.Zeros(3, 8, 8), Tensor.Zeros(4, 3, 3, 3))));
        Assert.Contains("expects 3 input channels, input has 5", Err(() => Ops.Conv2d(Tensor.Zeros(1, 5, 8, 8), Tensor.Zeros(4, 3, 3, 3))));
        Assert.Contains("kernel 5x5 is larger than the padded input 4x4", Err(() => Ops.Conv2d(Tensor.Zeros(1, 3, 4, 4), Tensor.Zeros(4, 3, 5, 5))));
        Assert.Contains("12 channels do not divide into 5 groups", Err(() => Ops.GroupNorm(Tensor.Zeros(1, 12, 2, 2), 5, null, null)));
        Assert.Contains("axis 3 is out of range for a tensor of rank 2", Err(() => Ops.Softmax(Tensor.Zeros(2, 2), 3)));
        Assert.Contains("linear: input has 5 features, weight expects 4", Err(() => Ops.Linear(Tensor.Zeros(2, 5), Tensor.Zeros(3, 4))));
    }

    [Fact]
    public void Index_errors_name_the_value_and_the_limit()
    {
        Assert.Contains("value 7 at position 1 is outside [0, 5)", Err(() => Ops.Embedding(new IntTensor([1, 7], 2), Tensor.Zeros(5, 3))));
        Assert.Contains("cross entropy target: value 10 at position 0 is outside [0, 10)", Err(() => Ops.CrossEntropy(Tensor.Zeros(1, 10), new IntTensor([10], 1))));
        Assert.Contains("2 rows of logits [2, 10] but 3 targets", Err(() => Ops.CrossEntropy(Tensor.Zeros(2, 10), new IntTensor([1, 2, 3], 3))));
        Assert.Contains("key padding mask has 3 entries, expected B*Tk = 4", Err(() =>
            Ops.ScaledDotProductAttention(Tensor.Zeros(1, 1, 2, 4), Tensor.Zeros(1, 1, 4, 4), Tensor.Zeros(1, 1, 4, 4), keyPaddingMask: new bool[3])));
    }

    [Fact]
    public void Huge_sizes_are_refused_before_allocating()
    {
        Assert.Contains("more than", Err(() => Tensor.Zeros(100_000, 100_000)));
        Assert.Contains("negative dimension", Err(() => Tensor.Zeros(2, -1)));
        Assert.Contains("dropout probability must be in [0, 1)", Err(() => Ops.Dropout(Tensor.Zeros(2), 1f, new Rng(1))));
    }
}
