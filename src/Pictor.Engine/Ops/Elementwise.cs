using System.Numerics.Tensors;
using Pictor.Engine.Kernels;

namespace Pictor.Engine;

/// <summary>
/// Differentiable tensor operations. Each op validates its arguments, runs a kernel, and records its backward
/// (written beside it, with the gradient rule as maths) when any input requires grad.
/// </summary>
public static partial class Ops
{
    // ------------------------------------------------------------ binary, broadcasting

    public static Tensor Add(Tensor a, Tensor b) => BinaryOpRecorded(BinaryOp.Add, a, b);
    public static Tensor Sub(Tensor a, Tensor b) => BinaryOpRecorded(BinaryOp.Sub, a, b);
    public static Tensor Mul(Tensor a, Tensor b) => BinaryOpRecorded(BinaryOp.Mul, a, b);
    public static Tensor Div(Tensor a, Tensor b) => BinaryOpRecorded(BinaryOp.Div, a, b);

    private static Tensor BinaryOpRecorded(BinaryOp op, Tensor a, Tensor b)
    {
        var y = Tensor.Empty(Shape.Broadcast(a.Shape, b.Shape));
        Broadcast.Binary(op, a, b, y);
        if (!Autograd.Needs(a, b)) return y;
        return Autograd.Record(y, op.ToString(), [a, b], dY =>
        {
            // dA = sumTo(dY * dy/da, shape(a)); dB likewise. For Add: 1, Sub: 1/-1, Mul: b/a, Div: 1/b and -a/b^2.
            if (a.RequiresGrad)
            {
                Tensor g = op switch
                {
                    BinaryOp.Add or BinaryOp.Sub => dY,
                    BinaryOp.Mul => Mul(dY, b),
                    _ => Div(dY, b),
                };
                AccumulateSumTo(g, a);
            }
            if (b.RequiresGrad)
            {
                Tensor g = op switch
                {
                    BinaryOp.Add => dY,
                    BinaryOp.Sub => Neg(dY),
                    BinaryOp.Mul => Mul(dY, a),
                    _ => Neg(Div(Mul(dY, a), Mul(b, b))),
                };
                AccumulateSumTo(g, b);
            }
        });
    }

    /// <summary>
    /// a + b (b broadcast to a's shape) written over a's storage: the values of <see cref="Add"/>, bit for bit, without
    /// a new buffer. For a fresh op output that nothing reads again: a convolution's or matmul's result about to get
    /// its bias or residual (neither op's backward reads its own output). In a training step every intermediate lives
    /// until the step's scope ends, so each such sum kept a second activation-sized buffer alive (UNet-S: 264 MiB of
    /// 1,505). a is spent afterwards: reading it throws, which catches a producer whose backward did need it. Where a
    /// cannot be reused (a strided view, a parameter, b broadcasting it larger, b overlapping it) this is Add.
    /// </summary>
    public static Tensor AddInPlace(Tensor a, Tensor b)
    {
        bool reusable = a.IsContiguous && !(a.IsLeaf && a.RequiresGrad)
            && Shape.SameShape(Shape.Broadcast(a.Shape, b.Shape), a.Shape)
                        && (!ReferenceEquals(a.Storage, b.Storage) || b.Offset == a.Offset && b.IsContiguous
                            && Shape.SameShape(a.Shape, b.Shape));
        if (!reusable) return Add(a, b);
        var y = a.ViewOf(a.Offset, (int[])a.Shape.Clone(), (int[])a.Strides.Clone());
        Broadcast.Binary(BinaryOp.Add, a, b, y);   // elementwise, each element read before it is written: safe in place
        a.MarkSpent();
        if (!Autograd.Needs(a, b)) return y;
        return Autograd.Record(y, "AddInPlace", [a, b], dY =>
        {
            // dA = dY, dB = sumTo(dY, shape(b)): the same rule as Add. Neither reads a value of a or b.
            if (a.RequiresGrad) AccumulateSumTo(dY, a);
            if (b.RequiresGrad) AccumulateSumTo(dY, b);
        });
    }

    /// <summary>grad(t) += g reduced (summed) over the dimensions along which t was broadcast.</summary>
    internal static void AccumulateSumTo(Tensor g, Tensor t)
    {
        var dT = Autograd.GradBuffer(t);
        if (Shape.SameShape(g.Shape, t.Shape)) { AddInto(g, dT); return; }
        // Reduce: view dT broadcast to g's shape with stride 0 where broadcast, then scatter-add.
        var strides = Shape.BroadcastStrides(dT.Shape, dT.Strides, g.Shape);
        var view = dT.ViewOf(dT.Offset, (int[])g.Shape.Clone(), strides);
        var gc = g.IsContiguous ? g : Contiguous(g);
        StridedCopy.AddFromContiguous(gc.Span, view);
    }

    /// <summary>dst += src elementwise (same shape; dst contiguous). Not recorded.</summary>
    internal static void AddInto(Tensor src, Tensor dst)
    {
        Throw.IfShapeMismatch(src.Shape, dst.Shape, "AddInto");
        if (src.IsContiguous) TensorPrimitives.Add(dst.Span, src.Span, dst.Span);
        else StridedCopy.AddFromContiguous(src.ToArray(), dst);
    }

    // ------------------------------------------------------------ scalar

    public static Tensor AddScalar(Tensor a, float s)
    {
        var x = Contiguous(a);
        var y = Tensor.Empty(x.Shape);
        TensorPrimitives.Add(x.Span, s, y.Span);
        if (!Autograd.Needs(a)) return y;
        return Autograd.Record(y, "AddScalar", [x], dY => AddInto(dY, Autograd.GradBuffer(x)));   // dX = dY
    }

    public static Tensor MulScalar(Tensor a, float s)
    {
        var x = Contiguous(a);
        var y = Tensor.Empty(x.Shape);
        TensorPrimitives.Multiply(x.Span, s, y.Span);
        if (!Autograd.Needs(a)) return y;
        return Autograd.Record(y, "MulScalar", [x], dY =>
        {
            var dX = Autograd.GradBuffer(x).Span;   // dX += s * dY
            TensorPrimitives.MultiplyAdd(dY.Span, s, dX, dX);
        });
    }

    public static Tensor Neg(Tensor a) => MulScalar(a, -1f);

    // ------------------------------------------------------------ unary

    public static Tensor Exp(Tensor a) => Unary(a, "Exp", static (x, y) => TensorPrimitives.Exp(x, y),
        // dX = dY * e^x
        static (x, y, dY, dX) => { for (int i = 0; i < x.Length; i++) dX[i] += dY[i] * y[i]; });

    public static Tensor Log(Tensor a) => Unary(a, "Log", static (x, y) => TensorPrimitives.Log(x, y),
        // dX = dY / x
        static (x, y, dY, dX) => { for (int i = 0; i < x.Length; i++) dX[i] += dY[i] / x[i]; });

    public static Tensor Sqrt(Tensor a) => Unary(a, "Sqrt", static (x, y) => TensorPrimitives.Sqrt(x, y),
        // dX = dY / (2 sqrt x)
        static (x, y, dY, dX) => { for (int i = 0; i < x.Length; i++) dX[i] += dY[i] * 0.5f / y[i]; });

    public static Tensor Square(Tensor a) => Unary(a, "Square", static (x, y) => TensorPrimitives.Multiply(x, x, y),
        static (x, y, dY, dX) => { for (int i = 0; i < x.Length; i++) dX[i] += 2f * x[i] * dY[i]; });     // dX = 2 x dY

    public static Tensor Tanh(Tensor a) => Unary(a, "Tanh", static (x, y) => TensorPrimitives.Tanh(x, y),
        // dX = dY (1 - y^2)
        static (x, y, dY, dX) => { for (int i = 0; i < x.Length; i++) dX[i] += dY[i] * (1f - y[i] * y[i]); });

    public static Tensor Sigmoid(Tensor a) => Unary(a, "Sigmoid", static (x, y) => TensorPrimitives.Sigmoid(x, y),
        // dX = dY y (1 - y)
        static (x, y, dY, dX) => { for (int i = 0; i < x.Length; i++) dX[i] += dY[i] * y[i] * (1f - y[i]); });

    public static Tensor Relu(Tensor a) => Unary(a, "Relu", static (x, y) => TensorPrimitives.Max(x, 0f, y),
        // dX = dY [x > 0]
        static (x, y, dY, dX) => { for (int i = 0; i < x.Length; i++) if (x[i] > 0f) dX[i] += dY[i]; });

    /// <summary>Leaky ReLU: y = x for x > 0, else slope x. PyTorch: torch.nn.functional.leaky_relu.</summary>
    public static Tensor LeakyRelu(Tensor a, float slope)
    {
        if (!(slope is >= 0f and < 1f)) Throw.Argument($"leaky relu slope must be in [0, 1), got {slope}");
        return Unary(a, "LeakyRelu",
            (x, y) => { for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0f ? x[i] : slope * x[i]; },
            // dX = dY (x > 0 ? 1 : slope)
            (x, y, dY, dX) => { for (int i = 0; i < x.Length; i++) dX[i] += x[i] > 0f ? dY[i] : slope * dY[i]; });
    }

    /// <summary>SiLU (swish): y = x * sigmoid(x). PyTorch: torch.nn.functional.silu.</summary>
    public static Tensor Silu(Tensor a) => Unary(a, "Silu", Activations.SiluForward, Activations.SiluBackward);

    /// <summary>GELU; <paramref name="tanhApproximation"/> false is the exact erf form (PyTorch's default).</summary>
    public static Tensor Gelu(Tensor a, bool tanhApproximation = false) => tanhApproximation
        ? Unary(a, "GeluTanh", Activations.GeluTanhForward, Activations.GeluTanhBackward)
        : Unary(a, "Gelu", Activations.GeluForward, Activations.GeluBackward);

    internal delegate void UnaryForward(ReadOnlySpan<float> x, Span<float> y);
    /// <summary>dX += f'(x) dY, given x, y = f(x) and dY.</summary>
    internal delegate void UnaryBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> y,
        ReadOnlySpan<float> dY, Span<float> dX);

    private static Tensor Unary(Tensor a, string name, UnaryForward forward, UnaryBackward backward)
    {
        var x = Contiguous(a);
        var y = Tensor.Empty(x.Shape);
        int n = x.Numel;
        // Elementwise, so fixed chunks shared among threads give the same values as one pass.
        UnaryChunks(n, (o, len) => forward(x.Span.Slice(o, len), y.Span.Slice(o, len)));
        if (!Autograd.Needs(a)) return y;
        return Autograd.Record(y, name, [x], dY =>
        {
            var dX = Autograd.GradBuffer(x);   // created on this thread: the pool is per thread
            UnaryChunks(n, (o, len) => backward(x.Span.Slice(o, len), y.Span.Slice(o, len), dY.Span.Slice(o, len),
                dX.Span.Slice(o, len)));
        });
    }

    private const int UnaryChunk = 1 << 15;

    private static void UnaryChunks(int n, Action<int, int> body)
    {
        if (n == 0) return;
        int chunks = (n + UnaryChunk - 1) / UnaryChunk;
        if (chunks == 1) { body(0, n); return; }
        Parallelism.For(chunks, i => body(i * UnaryChunk, Math.Min(UnaryChunk, n - i * UnaryChunk)));
    }
}
