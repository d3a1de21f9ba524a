using System.Diagnostics;
using Pictor.Engine;
using Pictor.Models.Clip;
using Pictor.Models.Dalle;
using Pictor.Models.Text;

namespace Pictor.Bench;

/// <summary>
/// DALL-E timings on the shipped emoji shapes (untrained weights: the cost does not depend on them): the xs transformer
/// (4 layers of 256; text vocabulary 600, context 32; 512 codes on an 8x8 grid) drawing 64 image tokens for a batch of
/// 16 with classifier-free guidance (32 rows), with and without the KV cache; then the issue's reranking job: 32
/// candidates drawn, decoded by the VQ-VAE (preset s) and scored by CLIP (preset xs).
/// </summary>
internal static class DalleBench
{
    public static void Run(int iters)
    {
        var cfg = new DalleConfig(Layers: 4, Dim: 256, Heads: 8, TextVocab: 600, TextLen: 32, ImageVocab: 512, Grid: 8);
        var model = new DalleTransformer(cfg, new Rng(1));
        model.Train(false);
        Console.WriteLine($"# DALL-E xs, {Pictor.Engine.Kernels.Parallelism.Threads} threads, GEMM {Pictor.Engine.Kernels.Gemm.Backend}, OPENBLAS_CORETYPE={Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)"}, median of {iters}");
        Console.WriteLine("| benchmark | time | throughput |");
        Console.WriteLine("|---|---|---|");
        foreach (bool cache in new[] { true, false })
        {
            int b = 16;
            var (text, uncond) = Captions(cfg, b);
            var o = new DalleSamplingOptions(1f, 64, 1f, 3f);
            Time($"64 image tokens, batch {b}, CFG 3, {(cache ? "KV cache" : "no cache")}", b * cfg.ImageLen, "tokens", cache ? iters : Math.Max(3, iters / 3),
                () => DalleSampler.Generate(model, text, uncond, o, Enumerable.Range(0, b).Select(i => new Rng((ulong)i)).ToList(), cache));
        }
        var vq = new Pictor.Models.Vq.VqVae(Pictor.Models.Vq.VqConfig.Default, new Rng(2));
        var clip = new ClipModel(new ClipConfig(new TextEncoderConfig(600, 32, Layers: 2, Dim: 128, Heads: 4, OutDim: 128), [32, 64, 128, 256]), new Rng(3));
        vq.Train(false); clip.Train(false);
        Time("generate + decode + CLIP-rerank 32 candidates (KV cache, CFG 3)", 32, "candidates", Math.Max(3, iters / 3), () =>
        {
            int n = 32;
            var (text, uncond) = Captions(cfg, n);
            var codes = DalleSampler.Generate(model, text, uncond, new DalleSamplingOptions(1f, 64, 1f, 3f), Enumerable.Range(0, n).Select(i => new Rng((ulong)i)).ToList());
            using var _ = Autograd.NoGrad();
            using var scope = TensorScope.Begin();
            var images = vq.Decode(new IntTensor(codes, n, 8, 8));
            var img = clip.EncodeImage(images).ToArray(); var txt = clip.EncodeText(new IntTensor(text.Data[..cfg.TextLen], 1, cfg.TextLen)).ToArray();
            int best = Enumerable.Range(0, n).MaxBy(i => Enumerable.Range(0, 128).Sum(k => img[i * 128 + k] * txt[k]));
            GC.KeepAlive(best);
        });
    }

    private static (IntTensor Text, IntTensor Uncond) Captions(DalleConfig cfg, int b)
    {
        var r = new Rng(5);
        var t = new int[b * cfg.TextLen]; var u = new int[b * cfg.TextLen];
        for (int i = 0; i < b; i++)
        {
            t[i * cfg.TextLen] = 1; u[i * cfg.TextLen] = 1; u[i * cfg.TextLen + 1] = 2;
            for (int j = 1; j < 10; j++) t[i * cfg.TextLen + j] = 4 + r.NextInt(cfg.TextVocab - 4);
            t[i * cfg.TextLen + 10] = 2;
        }
        return (new IntTensor(t, b, cfg.TextLen), new IntTensor(u, b, cfg.TextLen));
    }

    private static void Time(string name, int items, string unit, int iters, Action f)
    {
        f();                                     // warm-up (JIT, pool)
        var times = new double[iters];
        for (int i = 0; i < iters; i++) { var sw = Stopwatch.StartNew(); f(); times[i] = sw.Elapsed.TotalSeconds; }
        Array.Sort(times);
        double med = times[iters / 2];
        Console.WriteLine($"| {name} | {med * 1000:F0} ms | {items / med:F1} {unit}/s |");
    }
}
