namespace Pictor.Engine.Kernels;

/// <summary>Plain row-major GEMM: each C element is one dot product summed in K order. The oracle.</summary>
internal static class ReferenceGemm
{
    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
                           ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                           float beta, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0f;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p * lda + i] : a[i * lda + p];
                    float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    s += av * bv;
                }
                ref float cij = ref c[i * ldc + j];
                cij = beta == 0f ? alpha * s : alpha * s + beta * cij;
            }
    }
}
