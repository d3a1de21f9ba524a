using Pictor.Engine.Kernels;

namespace Pictor.Engine;

// Dimension legend: B batch (any leading dims flattened), M rows of A, K shared, N columns of B.
public static partial class Ops
{
    /// <summary>
    /// Matrix product with batch dimensions: A [.., M, K] x B [.., K, N] -> [.., M, N], where B is 2-D (shared) or
    /// has the same leading dimensions as A. A transposed view (Transpose(w, 0, 1)) is passed to GEMM as a transpose
    /// flag, not copied. PyTorch: torch.matmul (without broadcasting of unequal batch shapes).
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        if (a.Rank < 2 || b.Rank < 2)
            Throw.Argument($"matmul needs rank >= 2, got {Shape.Format(a.Shape)} x {Shape.Format(b.Shape)}; use "
                + $"Unsqueeze for vectors");
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1];
        if (b.Shape[^2] != k)
            Throw.Argument($"matmul {Shape.Format(a.Shape)} x {Shape.Format(b.Shape)}: inner sizes {k} and "
                + $"{b.Shape[^2]} differ");
        bool shared = b.Rank == 2;
        if (!shared && !a.Shape.AsSpan(0, a.Rank - 2).SequenceEqual(b.Shape.AsSpan(0, b.Rank - 2)))
            Throw.Argument($"matmul {Shape.Format(a.Shape)} x {Shape.Format(b.Shape)}: batch dimensions differ; make B "
                + $"2-D or give both the same batch shape");

        var outShape = (int[])a.Shape.Clone(); outShape[^1] = n;
        var y = Tensor.Empty(outShape);
        int batch = y.Numel / Math.Max(1, m * n);

        Tensor A, Bm; bool tb; int lda, ldb, strideA, strideB;
        if (shared)
        {
            // A as one tall matrix [B*M, K] when its leading dims are contiguous.
            A = Contiguous(a); lda = k; strideA = m * k;
            Bm = MatrixView(b, out tb, out ldb); strideB = 0;
            // Inside a PackedWeights scope (sampling), a registered weight is packed once, not at every product.
            if (y.Numel > 0)
            {
                var packed = Autograd.Needs(a, b) ? null : PackedWeights.For(Bm, tb, n, k, ldb);
                ReadOnlySpan<float> av = A.Storage.AsSpan(A.Offset), bv = Bm.Storage.AsSpan(Bm.Offset);
                if (packed != null) Gemm.Sgemm(false, tb, batch * m, n, k, 1f, av, lda, bv, ldb, 0f, y.Span, n, packed);
                else Gemm.Sgemm(false, tb, batch * m, n, k, 1f, av, lda, bv, ldb, 0f, y.Span, n);
            }
        }
        else
        {
            A = Contiguous(a); lda = k; strideA = m * k;
            Bm = Contiguous(b); tb = false; ldb = n; strideB = k * n;
            for (int i = 0; i < batch; i++)
                Gemm.Sgemm(false, false, m, n, k, 1f, A.Storage.AsSpan(A.Offset + i * strideA), lda,
                           Bm.Storage.AsSpan(Bm.Offset + i * strideB), ldb, 0f, y.Span.Slice(i * m * n, m * n), n);
        }
        if (!Autograd.Needs(a, b)) return y;
        var bSrc = shared ? b : Bm;
        return Autograd.Record(y, "MatMul", [A, bSrc], dY =>
        {
            var D = dY.Span;
            if (A.RequiresGrad)
            {
                // dA = dY B^T   ([M,N] x [N,K])
                var dA = Autograd.GradBuffer(A).Span;
                if (shared)
                    Gemm.Sgemm(false, !tb, batch * m, k, n, 1f, D, n, Bm.Storage.AsSpan(Bm.Offset), ldb, 1f, dA, k);
                else for (int i = 0; i < batch; i++)
                    Gemm.Sgemm(false, true, m, k, n, 1f, D.Slice(i * m * n), n, Bm.Storage.AsSpan(Bm.Offset
                        + i * strideB), ldb, 1f, dA.Slice(i * m * k), k);
            }
            if (bSrc.RequiresGrad)
            {
                // dB = A^T dY   ([K,M] x [M,N]); dB is stored in B's logical layout [K, N].
                var dB = Autograd.GradBuffer(bSrc).Span;
                if (shared) Gemm.Sgemm(true, false, k, n, batch * m, 1f, A.Storage.AsSpan(A.Offset),
                    lda, D, n, 1f, dB, n);
                else for (int i = 0; i < batch; i++)
                    Gemm.Sgemm(true, false, k, n, m, 1f, A.Storage.AsSpan(A.Offset + i * strideA), lda,
                        D.Slice(i * m * n), n, 1f, dB.Slice(i * k * n), n);
            }
        });
    }

    /// <summary>A 2-D operand as GEMM sees it: row-major (trans = false) or a transposed row-major view (trans =
    /// true).</summary>
    private static Tensor MatrixView(Tensor t, out bool trans, out int ld)
    {
        if (t.Strides[1] == 1 && t.Strides[0] >= t.Shape[1]) { trans = false; ld = Math.Max(1,
            t.Strides[0]); return t; }
        if (t.Strides[0] == 1 && t.Strides[1] >= t.Shape[0]) { trans = true; ld = Math.Max(1, t.Strides[1]); return t; }
        var c = Contiguous(t);
        trans = false; ld = Math.Max(1, t.Shape[1]);
        return c;
    }

    /// <summary>y = x W^T + b with W [Out, In] as PyTorch stores it. x [.., In] -> [.., Out].</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        if (weight.Rank != 2) Throw.Argument($"linear weight must be [out, in], got {Shape.Format(weight.Shape)}");
        if (x.Shape[^1] != weight.Shape[1])
            Throw.Argument($"linear: input has {x.Shape[^1]} features, weight expects {weight.Shape[1]} (weight "
                + $"{Shape.Format(weight.Shape)})");
        var y = MatMul(x, Transpose(weight, 0, 1));       // (.., Out)
        return bias == null ? y : AddInPlace(y, bias);   // y is MatMul's fresh output, which its backward never reads
    }
}
