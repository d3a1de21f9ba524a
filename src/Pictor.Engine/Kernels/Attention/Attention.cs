using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
namespace Pictor.Engine.Kernels;

/// <summary>
/// Scaled dot-product attention for one (batch, head) problem: S = scale Q K^T, masked, P = softmax(S), O = P V.
/// Q [Tq, D], K [Tk, D], V [Tk, Dv], P [Tq, Tk], O [Tq, Dv]. Backward (docs/derivations/attention.md):
/// dV = P^T dO;  dP = dO V^T;  dS = P * (dP - rowsum(dP * P));  dQ = scale dS K;  dK = scale dS^T Q.
/// </summary>
internal static class Attention
{
    /// <summary>Causal masking is aligned to the end: query i sees keys j &lt;= i + (Tk - Tq), which equals j &lt;= i
    /// when Tq = Tk and lets a KV-cached query (Tq = 1) see the whole prefix.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int tq,
        int tk, int d, int dv,
                               float scale, bool causal, ReadOnlySpan<bool> keyPad, Span<float> p, Span<float> o)
    {
        if (tq == 1) { ForwardOneQuery(q, k, v, tk, d, dv, scale, keyPad, p, o); return; }
        Gemm.SgemmSerial(false, true, tq, tk, d, scale, q, d, k, d, 0f, p, tk);     // S = scale Q K^T
        int shift = tk - tq;
        for (int i = 0; i < tq; i++)
        {
            var row = p.Slice(i * tk, tk);
            if (causal) for (int j = Math.Max(0, i + shift + 1); j < tk; j++) row[j] = float.NegativeInfinity;
            if (!keyPad.IsEmpty) for (int j = 0; j < tk; j++) if (keyPad[j]) row[j] = float.NegativeInfinity;
            Ops.SoftmaxRow(row, row, log: false);                                     // fully masked row -> zeros
        }
        Gemm.SgemmSerial(false, false, tq, dv, tk, 1f, p, tk, v, dv, 0f, o, dv);    // O = P V
    }

    /// <summary>One query (KV-cached decoding): S_j = scale q.k_j and O = sum_j P_j v_j directly. A GEMM with one row
    /// spent more time packing K and V into panels than multiplying. The causal mask hides nothing here (the query is
    /// the newest position).</summary>
    private static void ForwardOneQuery(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        int tk, int d, int dv,
                                        float scale, ReadOnlySpan<bool> keyPad, Span<float> p, Span<float> o)
    {
        if (Vector512.IsHardwareAccelerated && d % 16 == 0 && dv % 16 == 0 && d <= MaxFusedWidth && dv <= MaxFusedWidth)
            ForwardOneQuery512(q, k, v, tk, d, dv, scale, keyPad, p, o);
        else ForwardOneQueryReference(q, k, v, tk, d, dv, scale, keyPad, p, o);
    }

    /// <summary>Head widths up to which <see cref="ForwardOneQuery512"/> is tested bit-identical to the
    /// reference.</summary>
    internal const int MaxFusedWidth = 128;

    /// <summary>
    /// <see cref="ForwardOneQueryReference"/> without a library call per key: decoding calls it for every (row, head,
    /// layer, token) with heads 32 wide, where calling Dot and MultiplyAdd for each of ~50 keys cost more than the
    /// arithmetic (a fifth of AR-S sampling on one thread). The same operations in the same order (products summed
    /// lane-wise chunk after chunk, then Vector512.Sum; o += v_j * p_j as a multiply then an add), so bit-identical to
    /// the library calls at these widths (AttentionDecodeTests).
    /// </summary>
    internal static unsafe void ForwardOneQuery512(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        int tk, int d, int dv,
                                                   float scale, ReadOnlySpan<bool> keyPad, Span<float> p, Span<float> o)
    {
        if (k.Length < tk * d || v.Length < tk * dv || q.Length < d || p.Length < tk || o.Length < dv)
            Throw.Argument("attention decode: operand shorter than its shape");
        fixed (float* pq = q) fixed (float* pk = k) fixed (float* pv = v) fixed (float* pp = p) fixed (float* po = o)
        {
            for (int j = 0; j < tk; j++)
            {
                if (!keyPad.IsEmpty && keyPad[j]) { pp[j] = float.NegativeInfinity; continue; }
                float* kj = pk + (long)j * d;
                var acc = Vector512.Load(pq) * Vector512.Load(kj);
                for (int c = 16; c < d; c += 16) acc += Vector512.Load(pq + c) * Vector512.Load(kj + c);
                pp[j] = scale * Vector512.Sum(acc);
            }
            Ops.SoftmaxRow(p[..tk], p[..tk], log: false);
            o[..dv].Clear();
            for (int j = 0; j < tk; j++)
            {
                float pj = pp[j];
                if (pj == 0f) continue;
                float* vj = pv + (long)j * dv;
                for (int c = 0; c < dv; c += 16) (Vector512.Load(vj + c) * pj + Vector512.Load(po + c)).Store(po + c);
            }
        }
    }

    /// <summary>One query with a library call per key: the reference for <see cref="ForwardOneQuery512"/>.</summary>
    internal static void ForwardOneQueryReference(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        int tk, int d, int dv,
                                                  float scale, ReadOnlySpan<bool> keyPad, Span<float> p, Span<float> o)
    {
        for (int j = 0; j < tk; j++)
            p[j] = !keyPad.IsEmpty && keyPad[j] ? float.NegativeInfinity
                : scale * TensorPrimitives.Dot(q, k.Slice(j * d, d));
        Ops.SoftmaxRow(p[..tk], p[..tk], log: false);
        o[..dv].Clear();
        for (int j = 0; j < tk; j++)
            if (p[j] != 0f) TensorPrimitives.MultiplyAdd(v.Slice(j * dv, dv), p[j], o[..dv], o[..dv]);
    }

    /// <summary>Accumulates dQ, dK, dV (+=). <paramref name="scratch"/> holds Tq*Tk floats.</summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> p,
                                ReadOnlySpan<float> dO, int tq, int tk, int d, int dv, float scale,
                                Span<float> scratch, Span<float> dQ, Span<float> dK, Span<float> dV)
    {
        if (!dV.IsEmpty) Gemm.SgemmSerial(true, false, tk, dv, tq, 1f, p, tk, dO, dv, 1f, dV, dv);     // dV += P^T dO
        if (dQ.IsEmpty && dK.IsEmpty) return;
        var ds = scratch.Slice(0, tq * tk);
        Gemm.SgemmSerial(false, true, tq, tk, dv, 1f, dO, dv, v, dv, 0f, ds, tk);                   // dP = dO V^T
        for (int i = 0; i < tq; i++)
        {
            var pr = p.Slice(i * tk, tk); var dr = ds.Slice(i * tk, tk);
            float dot = System.Numerics.Tensors.TensorPrimitives.Dot(pr, dr);
            for (int j = 0; j < tk; j++) dr[j] = pr[j] * (dr[j] - dot);                             // dS
        }
        if (!dQ.IsEmpty) Gemm.SgemmSerial(false, false, tq, d, tk, scale, ds, tk, k, d, 1f, dQ, d);  // dQ += scale dS K
        // dK += scale dS^T Q
        if (!dK.IsEmpty) Gemm.SgemmSerial(true, false, tk, d, tq, scale, ds, tk, q, d, 1f, dK, d);
    }
}
