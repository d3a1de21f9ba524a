using System.Numerics.Tensors;
using Pictor.Engine.Kernels;

namespace Pictor.Engine;

// Dimension legend: B batch, C input channels, O output channels, G groups, H/W input size, OH/OW output size,
// KH/KW kernel size, Cg = C/G, Og = O/G.

/// <summary>The kernels a convolution can run on (<see cref="Ops.Conv2d"/> picks one per call).</summary>
internal enum ConvPath { Direct, Im2Col, ImplicitGemm, Winograd }

public static partial class Ops
{
    /// <summary>
    /// 2-D convolution (cross-correlation, as PyTorch): x [B, C, H, W], weight [O, C/G, KH, KW], bias [O] -> [B, O, OH,
    /// OW] with OH = (H + 2 pad - KH) / stride + 1. Each image and group is one GEMM over im2col columns; a 1x1
    /// stride-1 convolution reads the input directly.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1,
        int padding = 0, int groups = 1)
    {
        if (x.Rank != 4) Throw.Argument($"conv2d input must be [B, C, H, W], got {Shape.Format(x.Shape)}");
        if (weight.Rank != 4)
            Throw.Argument($"conv2d weight must be [O, C/groups, KH, KW], got {Shape.Format(weight.Shape)}");
        if (stride < 1 || padding < 0 || groups < 1)
            Throw.Argument($"conv2d needs stride >= 1, padding >= 0, groups >= 1 (got {stride}, {padding}, {groups})");
        int b = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        int o = weight.Shape[0], kh = weight.Shape[2], kw = weight.Shape[3];
        if (c % groups != 0 || o % groups != 0)
            Throw.Argument($"conv2d: channels in ({c}) and out ({o}) must both divide by groups ({groups})");
        int cg = c / groups, og = o / groups;
        if (weight.Shape[1] != cg)
            Throw.Argument($"conv2d: weight {Shape.Format(weight.Shape)} expects {weight.Shape[1] * groups} input "
                + $"channels, input has {c}");
        if (bias != null && (bias.Rank != 1 || bias.Shape[0] != o))
            Throw.Argument($"conv2d bias must be [{o}], got {Shape.Format(bias.Shape)}");
        int oh = (h + 2 * padding - kh) / stride + 1, ow = (w + 2 * padding - kw) / stride + 1;
        if (h + 2 * padding < kh || w + 2 * padding < kw)
            Throw.Argument($"conv2d: kernel {kh}x{kw} is larger than the padded input "
                + $"{h + 2 * padding}x{w + 2 * padding}");

        var X = Contiguous(x); var Wt = Contiguous(weight);
        var y = Tensor.Empty(b, o, oh, ow);
        int ohw = oh * ow, ckk = cg * kh * kw;
        // Small per-image GEMMs run far below peak when each one is split across threads, so with a batch of at least
        // one image per thread the images are shared out instead (worker k takes images k, k + P, ...) and each GEMM
        // runs on one thread. Every image's arithmetic is the same either way.
        int workers = ImageWorkers(b, og, ohw, ckk);
        var geometry = new ConvGeometry(cg, h, w, kh, kw, stride, padding, oh, ow);
        var path = PathOf(geometry, groups, workers);
        bool direct = path == ConvPath.Direct, implicitGemm = path is ConvPath.ImplicitGemm or ConvPath.Winograd;
        // Every image multiplies the same weights: pack each group's W_g (or Winograd's transform of W) once for all.
        var winograd = path == ConvPath.Winograd ? Winograd.TransformWeights(Wt.Span, o, c) : null;
        var packedW = winograd == null && (workers > 1 || implicitGemm) ? PackWeights(Wt, groups, og, ckk,
            transposed: false) : null;
        var cols = direct || implicitGemm ? null : new Tensor[workers];
        for (int k = 0; k < workers && cols != null; k++) cols[k] = Tensor.Empty(ckk, ohw);
        void ForwardImage(int bi, int k)
        {
            var xs = X.Span; var ws = Wt.Span; var ys = y.Span;
            for (int g = 0; g < groups; g++)
            {
                var xg = xs.Slice((bi * c + g * cg) * h * w, cg * h * w);
                if (implicitGemm)
                {
                    ImplicitGemm.Run(packedW![g]!, xg, geometry, 0f, ys.Slice((bi * o + g * og) * ohw, og * ohw), ohw);
                    continue;
                }
                ReadOnlySpan<float> colSpan = xg;
                if (!direct) { Im2Col.Forward(xg, cg, h, w, kh, kw, stride, padding, oh, ow,
                    cols![k].Span); colSpan = cols[k].Span; }
                // y[b, g] (Og x OHW) = W_g (Og x Cg*KH*KW) . col (Cg*KH*KW x OHW)
                ConvGemm(workers, false, false, og, ohw, ckk, ws.Slice(g * og * ckk), ckk, colSpan, ohw, 0f,
                    ys.Slice((bi * o + g * og) * ohw, og * ohw), ohw, packedW?[g]);
            }
        }
        if (winograd != null) WinogradBatch(winograd, X, geometry, 0f, y, b, o, workers);
        else if (workers == 1) for (int bi = 0; bi < b; bi++) ForwardImage(bi, 0);
        else Parallelism.For(workers, k => { for (int bi = k; bi < b; bi += workers) ForwardImage(bi, k); });
        Release(packedW);
        winograd?.Dispose();
        Free(cols);
        var ys = y.Span;
        if (bias != null)
        {
            var bs = bias.IsContiguous ? bias.Span : bias.ToArray();
            for (int bi = 0; bi < b; bi++)
                for (int oc = 0; oc < o; oc++) { var row = ys.Slice((bi * o + oc) * ohw, ohw); TensorPrimitives.Add(row,
                    bs[oc], row); }
        }
        if (!Autograd.Needs([x, weight, bias])) return y;
        Tensor[] inputs = bias == null ? [X, Wt] : [X, Wt, bias];
        return Autograd.Record(y, "Conv2d", inputs, dY =>
        {
            // Worker k handles images k, k + P, ...; its weight gradient goes to its own buffer and the buffers are
            // added in worker order afterwards, so the result does not depend on scheduling.
            var dcols = new Tensor?[workers]; var colBs = new Tensor?[workers]; var dWs = new Tensor?[workers];
            // dX of a stride-1 convolution is itself a convolution: dY (padded by KH-1-pad) with the kernel flipped and
            // its in/out channels swapped, run as an implicit GEMM (no dcol matrix, no col2im scatter).
            var geometryT = new ConvGeometry(og, oh, ow, kh, kw, 1, kh - 1 - padding, h, w);
            // That convolution is 3x3, stride 1, padding 1 too when the forward one is: Winograd again.
            var winogradT = winograd != null && X.RequiresGrad && Winograd.Applies(geometryT)
                ? Winograd.TransformWeights(FlippedWeights(Wt, 0, og, cg, kh, kw), c, o) : null;
            var packedFlip = winogradT == null && implicitGemm && X.RequiresGrad && stride == 1 && kh == kw
                && padding <= kh - 1
                ? PackFlippedWeights(Wt, groups, og, cg, kh, kw) : null;
            for (int k = 0; k < workers; k++)
            {
                if (X.RequiresGrad && !direct && packedFlip == null) dcols[k] = Tensor.Empty(ckk, ohw);
                if (Wt.RequiresGrad && !direct && !implicitGemm) colBs[k] = Tensor.Empty(ckk, ohw);
                if (Wt.RequiresGrad && workers > 1) dWs[k] = Tensor.Zeros(o, ckk);
            }
            var dX = X.RequiresGrad ? Autograd.GradBuffer(X) : null;
            var packedWt = workers > 1 && dX != null && packedFlip == null ? PackWeights(Wt, groups, og, ckk,
                transposed: true) : null;
            var dW = Wt.RequiresGrad ? Autograd.GradBuffer(Wt) : null;
            void BackwardImage(int bi, int k)
            {
                var D = dY.Span; var xs2 = X.Span; var ws2 = Wt.Span;
                for (int g = 0; g < groups; g++)
                {
                    var dYg = D.Slice((bi * o + g * og) * ohw, og * ohw);
                    var xg = xs2.Slice((bi * c + g * cg) * h * w, cg * h * w);
                    if (dW != null && implicitGemm)
                        ImplicitGemm.RunWeightGrad(dYg, og, xg, geometry, (workers > 1 ? dWs[k]!.Span : dW.Span)
                            .Slice(g * og * ckk, og * ckk), ckk);
                    else if (dW != null)
                    {
                        // dW_g += dY_g (Og x OHW) . col^T (OHW x CKK)
                        ReadOnlySpan<float> cs = xg;
                        if (!direct) { Im2Col.Forward(xg, cg, h, w, kh, kw, stride, padding, oh, ow,
                            colBs[k]!.Span); cs = colBs[k]!.Span; }
                        var dWk = workers > 1 ? dWs[k]!.Span : dW.Span;
                        ConvGemm(workers, false, true, og, ckk, ohw, dYg, ohw, cs, ohw, 1f,
                            dWk.Slice(g * og * ckk, og * ckk), ckk);
                    }
                    if (dX != null && winogradT == null)   // with Winograd, dX is done for the whole batch (below)
                    {
                        // dcol = W_g^T (CKK x Og) . dY_g (Og x OHW); dX += col2im(dcol)
                        var dXg = dX.Span.Slice((bi * c + g * cg) * h * w, cg * h * w);
                        if (packedFlip != null) ImplicitGemm.Run(packedFlip[g]!, dYg, geometryT, 1f, dXg, h * w);
                        else if (direct) ConvGemm(workers, true, false, ckk, ohw, og, ws2.Slice(g * og * ckk), ckk, dYg,
                            ohw, 1f, dXg, ohw, packedWt?[g]);
                        else
                        {
                            ConvGemm(workers, true, false, ckk, ohw, og, ws2.Slice(g * og * ckk), ckk, dYg, ohw, 0f,
                                dcols[k]!.Span, ohw, packedWt?[g]);
                            Im2Col.Backward(dcols[k]!.Span, cg, h, w, kh, kw, stride, padding, oh, ow, dXg);
                        }
                    }
                }
            }
            if (winogradT != null) WinogradBatch(winogradT, dY, geometryT, 1f, dX!, b, c, workers);
            if (workers == 1) for (int bi = 0; bi < b; bi++) BackwardImage(bi, 0);
            else
            {
                Parallelism.For(workers, k => { for (int bi = k; bi < b; bi += workers) BackwardImage(bi, k); });
                Release(packedWt);
                if (dW != null) for (int k = 0; k < workers; k++) TensorPrimitives.Add(dW.Span, dWs[k]!.Span, dW.Span);
            }
            Release(packedFlip);
            winogradT?.Dispose();
            Free(dcols); Free(colBs); Free(dWs);
            var D = dY.Span;
            if (bias != null && bias.RequiresGrad)
            {
                var db = Autograd.GradBuffer(bias).Span;   // db[o] += sum over b, oh, ow of dY
                for (int bi = 0; bi < b; bi++)
                    for (int oc = 0; oc < o; oc++) db[oc] += TensorPrimitives.Sum(D.Slice((bi * o + oc) * ohw, ohw));
            }
        });
    }

    /// <summary>The kernel a convolution's forward runs on: 1x1 stride 1 reads the input directly; on the
    /// image-parallel path, and on one thread, im2col is packed straight from the image (implicit GEMM), and a 3x3
    /// stride-1 one takes Winograd's F(2x2, 3x3) instead (2.25x fewer multiply-adds, Kernels/Conv/Winograd.cs, the
    /// weights transformed once for every image); a batch smaller than the thread count keeps im2col and a GEMM split
    /// across threads.</summary>
    private static ConvPath PathOf(in ConvGeometry g, int groups, int workers)
    {
        if (g.KH == 1 && g.KW == 1 && g.Stride == 1 && g.Pad == 0) return ConvPath.Direct;
        if (!ImplicitGemmOn || !(workers > 1 || Parallelism.Threads == 1)) return ConvPath.Im2Col;
        return groups == 1 && WinogradOn && Winograd.Applies(g) ? ConvPath.Winograd : ConvPath.ImplicitGemm;
    }

    /// <summary>The path <see cref="Conv2d"/> takes now (thread count and switches as they are) for x [B, C, H, W] and
    /// weight [O, C/G, KH, KW]: what 'pictor doctor' names beside each convolution it checks.</summary>
    internal static ConvPath Conv2dPath(int[] x, int[] weight, int stride, int padding, int groups)
    {
        int cg = x[1] / groups, og = weight[0] / groups, kh = weight[2], kw = weight[3];
        int oh = (x[2] + 2 * padding - kh) / stride + 1, ow = (x[3] + 2 * padding - kw) / stride + 1;
        var g = new ConvGeometry(cg, x[2], x[3], kh, kw, stride, padding, oh, ow);
        return PathOf(g, groups, ImageWorkers(x[0], og, oh * ow, g.K));
    }

    /// <summary>y = beta y + the Winograd convolution of every image of x ([B, C, H, W] -> [B, O, H, W], o = O): calls
    /// of one image, or of several small ones sharing a chunk, shared out among the workers as images are.</summary>
    private static void WinogradBatch(Winograd.Weights u, Tensor x, ConvGeometry g, float beta, Tensor y,
        int b, int o, int workers)
    {
        int ipc = Winograd.ImagesPerCall(g, b, workers), calls = (b + ipc - 1) / ipc, inSize = g.C * g.H * g.W,
            outSize = o * g.OH * g.OW;
        void Call(int ci)
        {
            int b0 = ci * ipc, n = Math.Min(ipc, b - b0);
            Winograd.Run(u, x.Span.Slice(b0 * inSize, n * inSize), g, beta, y.Span.Slice(b0 * outSize, n * outSize), n);
        }
        if (workers == 1) for (int ci = 0; ci < calls; ci++) Call(ci);
        else Parallelism.For(workers, k => { for (int ci = k; ci < calls; ci += workers) Call(ci); });
    }

    /// <summary>How many workers a convolution shares its images among: one per thread when the batch has at least one
    /// image per thread. With the implicit GEMM that holds at every size (2.6-3x faster than splitting a 192 -> 64
    /// channel 32x32 convolution across threads, bench/RESULTS.md); on the im2col path only while each image's GEMM is
    /// small enough that splitting it costs more than it gains. PICTOR_CONV_SPLIT=gemm forces the split, for
    /// comparison.</summary>
    private static int ImageWorkers(int batch, int m, int n, int k)
    {
        int p = Parallelism.Threads;
        if (p == 1 || batch < p || ConvSplitGemm) return 1;
        if (ImplicitGemmOn) return p;   // the implicit GEMM packs per image anyway
        return (long)m * n * k > 64L * 1024 * 1024 ? 1 : p;
    }

    private static readonly bool ConvSplitGemm = Environment.GetEnvironmentVariable("PICTOR_CONV_SPLIT") == "gemm";

    /// <summary>W_g [Og x CKK] (or its transpose, for dcol = W_g^T dY_g) packed once per call for every image's
    /// GEMM.</summary>
    private static PackedA?[] PackWeights(Tensor w, int groups, int og, int ckk, bool transposed)
    {
        var packs = new PackedA?[groups];
        for (int g = 0; g < groups; g++)
            packs[g] = transposed ? Gemm.PackForSerial(true, ckk, og, w.Span.Slice(g * og * ckk, og * ckk), ckk)
                                  : Gemm.PackForSerial(false, og, ckk, w.Span.Slice(g * og * ckk, og * ckk), ckk);
        return packs;
    }

    /// <summary>W'_g [Cg x Og*KH*KW] with W'[c, o, u, v] = W[o, c, KH-1-u, KW-1-v], packed: the weights of the
    /// convolution that maps dY to dX (stride 1).</summary>
    private static PackedA?[] PackFlippedWeights(Tensor w, int groups, int og, int cg, int kh, int kw)
    {
        int khw = kh * kw;
        var packs = new PackedA?[groups];
        for (int g = 0; g < groups; g++)
            packs[g] = Gemm.PackForSerial(false, cg, og * khw, FlippedWeights(w, g, og, cg, kh, kw), og * khw);
        return packs;
    }

    /// <summary>Group g's W'[c, o, u, v] = W[o, c, KH-1-u, KW-1-v], as [Cg, Og, KH, KW].</summary>
    private static float[] FlippedWeights(Tensor w, int g, int og, int cg, int kh, int kw)
    {
        int khw = kh * kw, ckk = cg * khw;
        var flip = new float[cg * og * khw];
        var ws = w.Span;
        for (int o = 0; o < og; o++)
            for (int ci = 0; ci < cg; ci++)
                for (int u = 0; u < kh; u++)
                    for (int v = 0; v < kw; v++)
                        flip[(ci * og + o) * khw + (kh - 1 - u) * kw + (kw - 1 - v)] = ws[(g * og + o) * ckk
                            + (ci * kh + u) * kw + v];
        return flip;
    }

    /// <summary>Implicit GEMM for the image-parallel convolution (default); PICTOR_CONV=im2col keeps the explicit
    /// im2col matrix, for comparison. Settable by tests and benchmarks.</summary>
    internal static bool UseImplicitGemm { get; set; } = ImplicitGemm.Available
        && Environment.GetEnvironmentVariable("PICTOR_CONV") != "im2col";

    /// <summary>Whether this call can take the implicit GEMM: switched on, and not the reference GEMM backend (whose
    /// triple loop is the oracle every other path is tested against).</summary>
    private static bool ImplicitGemmOn => UseImplicitGemm && Gemm.Backend != GemmBackend.Reference;

    /// <summary>Winograd F(2x2, 3x3) for the 3x3 stride-1 convolutions that the implicit GEMM would run (default where
    /// Vector512 is accelerated); PICTOR_CONV_WINOGRAD=0 keeps the implicit GEMM, for comparison. Settable by tests and
    /// benchmarks.</summary>
    internal static bool UseWinograd { get; set; } = Winograd.Available
        && Environment.GetEnvironmentVariable("PICTOR_CONV_WINOGRAD") != "0";

    private static bool WinogradOn => UseWinograd && Winograd.Available;

    private static void Release(PackedA?[]? packs) { if (packs != null) foreach (var p in packs) p?.Dispose(); }

    /// <summary>Gives an op's scratch tensors back to the pool as soon as the op is done with them, so the next op can
    /// reuse them instead of the step holding every op's scratch until its scope ends.</summary>
    internal static void Free(Tensor?[]? scratch) { if (scratch != null) foreach (
        var t in scratch) t?.ReleaseStorage(); }

    private static void ConvGemm(int workers, bool ta, bool tb, int m, int n, int k, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> bm, int ldb, float beta, Span<float> cm, int ldc, PackedA? packedA = null)
    {
        if (workers > 1) Gemm.SgemmSerial(ta, tb, m, n, k, 1f, a, lda, bm, ldb, beta, cm, ldc, packedA);
        else Gemm.Sgemm(ta, tb, m, n, k, 1f, a, lda, bm, ldb, beta, cm, ldc);
    }

    /// <summary>Nearest-neighbour upsampling by an integer factor: [B, C, H, W] -> [B, C, sH, sW].</summary>
    public static Tensor UpsampleNearest(Tensor x, int scale = 2)
    {
        if (x.Rank != 4) Throw.Argument($"upsample input must be [B, C, H, W], got {Shape.Format(x.Shape)}");
        if (scale < 1) Throw.Argument($"upsample scale must be >= 1, got {scale}");
        var X = Contiguous(x);
        int bc = x.Shape[0] * x.Shape[1], h = x.Shape[2], w = x.Shape[3], H = h * scale, W = w * scale;
        var y = Tensor.Empty(x.Shape[0], x.Shape[1], H, W);
        var xs = X.Span; var ys = y.Span;
        for (int p = 0; p < bc; p++)
            for (int i = 0; i < H; i++)
            {
                var src = xs.Slice((p * h + i / scale) * w, w);
                var dst = ys.Slice((p * H + i) * W, W);
                for (int j = 0; j < W; j++) dst[j] = src[j / scale];
            }
        if (!Autograd.Needs(x)) return y;
        return Autograd.Record(y, "UpsampleNearest", [X], dY =>
        {
            var dX = Autograd.GradBuffer(X).Span; var D = dY.Span;   // dX[i, j] += sum of dY over its s x s block
            for (int p = 0; p < bc; p++)
                for (int i = 0; i < H; i++)
                {
                    var dst = dX.Slice((p * h + i / scale) * w, w);
                    var src = D.Slice((p * H + i) * W, W);
                    for (int j = 0; j < W; j++) dst[j / scale] += src[j];
                }
        });
    }

    /// <summary>Average pooling with a k x k window and stride k (no padding): [B, C, H, W] -> [B, C, H/k,
    /// W/k].</summary>
    public static Tensor AvgPool2d(Tensor x, int kernel)
    {
        if (x.Rank != 4) Throw.Argument($"avgpool input must be [B, C, H, W], got {Shape.Format(x.Shape)}");
        if (kernel < 1 || x.Shape[2] < kernel || x.Shape[3] < kernel)
            Throw.Argument($"avgpool kernel {kernel} does not fit input {Shape.Format(x.Shape)}");
        var X = Contiguous(x);
        int bc = x.Shape[0] * x.Shape[1], h = x.Shape[2], w = x.Shape[3], oh = h / kernel, ow = w / kernel;
        var y = Tensor.Empty(x.Shape[0], x.Shape[1], oh, ow);
        var xs = X.Span; var ys = y.Span;
        float inv = 1f / (kernel * kernel);
        for (int p = 0; p < bc; p++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    float s = 0;
                    for (int u = 0; u < kernel; u++)
                        for (int v = 0; v < kernel; v++) s += xs[(p * h + i * kernel + u) * w + j * kernel + v];
                    ys[(p * oh + i) * ow + j] = s * inv;
                }
        if (!Autograd.Needs(x)) return y;
        return Autograd.Record(y, "AvgPool2d", [X], dY =>
        {
            var dX = Autograd.GradBuffer(X).Span; var D = dY.Span;   // each input in a window gets dY / k^2
            for (int p = 0; p < bc; p++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        float g = D[(p * oh + i) * ow + j] * inv;
                        for (int u = 0; u < kernel; u++)
                            for (int v = 0; v < kernel; v++) dX[(p * h + i * kernel + u) * w + j * kernel + v] += g;
                    }
        });
    }
}
