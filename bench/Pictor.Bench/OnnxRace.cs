using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Pictor.Engine;
using Pictor.Engine.Kernels;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Export;
using Pictor.Text;
using Tensor = Pictor.Engine.Tensor;

namespace Pictor.Bench;

/// <summary>
/// Pictor against ONNX Runtime on the same graph (issue 39): each row runs a network in Pictor and its ONNX export
/// (OnnxExport) in ONNX Runtime with the same thread count (ORT intra-op threads = Pictor's threads, one inter-op
/// thread, default graph optimisations), alternating the two every iteration (the order swapped each time), after one
/// warm-up run of each. Rows: the shipped emoji UNet forward at batch 1 and 4, a whole emoji DDIM 50-step guided
/// generation (the ORT side's sampler loop is Pictor's, only the network calls differ), UNet-S (untrained, preset s)
/// forward at batch 16, and the shipped DALL-E transformer's full-sequence forward at batch 1 and 4.
/// Printed: min / median / max milliseconds of each, and the ratio Pictor / ORT of the medians (below 1: Pictor
/// faster) with the min and max of the per-iteration ratios.
/// </summary>
internal static class OnnxRace
{
    public static void Run(int iters, string models)
    {
        int threads = Parallelism.Threads;
        Console.WriteLine($"# Pictor vs ONNX Runtime 1.32.0, {threads} threads each, GEMM {Gemm.Backend}, ORT spinning "
            + $"{(Spin ? "on" : "off")}, alternating, {iters} iterations after 1 warm-up");
        Console.WriteLine("| row | Pictor ms (min / median / max) | ORT ms (min / median / max) | Pictor / ORT "
            + "(median; min-max per iteration) |");
        Console.WriteLine("|---|---|---|---|");
        string tmp = Directory.CreateTempSubdirectory("pictor-onnx-race").FullName;
        try
        {
            var emoji = DiffusionPipeline.Load(Path.Combine(models, "emoji"));
            OnnxExport.Export(Path.Combine(models, "emoji"), Path.Combine(tmp, "emoji"));
            using var unet = Session(Path.Combine(tmp, "emoji", "unet.onnx"), threads);
            foreach (int b in new[] { 1, 4 }) UnetRow($"emoji UNet forward, batch {b}", emoji, unet, b, iters);
            DdimRow(emoji, unet, Path.Combine(tmp, "emoji", "text_encoder.onnx"), threads, Math.Max(3, iters / 2));

            var s = new DiffusionPipeline(DiffusionConfig.FromPreset("s", emoji.Config.Text.Vocab, 32,
                emoji.Config.Text.Context), emoji.Tokenizer, new Rng(1));
            string sPath = Path.Combine(tmp, "unet-s.onnx");
            DiffusionExport.Unet(s.Unet, 32, s.Config.Text.Context).Save(sPath, "UNet-S, untrained");
            using (var unetS = Session(sPath, threads)) UnetRow("UNet-S forward, batch 16", s, unetS, 16, iters);

            var dalle = DallePipeline.Load(Path.Combine(models, "emoji-dalle"));
            string dPath = Path.Combine(tmp, "dalle.onnx");
            DalleExport.Transformer(dalle.Transformer).Save(dPath, "DALL-E");
            using var dsess = Session(dPath, threads);
            foreach (int b in new[] { 1, 4 }) DalleRow(dalle, dsess, b, iters);
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    /// <summary>ORT_SPIN=0 turns off the spinning of ORT's intra-op threads after each run (on by default in
    /// ORT; with two cores, a spinning thread takes CPU from the Pictor run that follows).</summary>
    private static readonly bool Spin = Environment.GetEnvironmentVariable("ORT_SPIN") != "0";

    private static InferenceSession Session(string path, int threads)
    {
        var o = new SessionOptions
        {
            IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        if (!Spin) o.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return new InferenceSession(path, o);
    }

    private static void UnetRow(string row, DiffusionPipeline p, InferenceSession ort, int b, int iters)
    {
        var cfg = p.Config;
        int size = cfg.ImageSize, s = cfg.Text.Context, dc = cfg.Unet.ContextDim, dp = cfg.Unet.PooledDim;
        var rng = new Rng(7);
        float[] x = Normal(rng, b * 3 * size * size), ctx = Normal(rng, b * s * dc), pooled = Normal(rng, b * dp);
        var t = Enumerable.Range(0, b).Select(i => (float)(100 * i + 500)).ToArray();
        p.Train(false);
        Action pictor = () =>
        {
            using var noGrad = Autograd.NoGrad();
            using var scope = TensorScope.Begin();
            p.Unet.Forward(Tensor.FromArray(x, b, 3, size, size), t, Tensor.FromArray(ctx, b, s, dc),
                dp > 0 ? Tensor.FromArray(pooled, b, dp) : null);
        };
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, [b, 3, size, size])),
            NamedOnnxValue.CreateFromTensor("t", new DenseTensor<float>(t, [b])),
            NamedOnnxValue.CreateFromTensor("context", new DenseTensor<float>(ctx, [b, s, dc])),
        };
        if (dp > 0) inputs.Add(NamedOnnxValue.CreateFromTensor("pooled", new DenseTensor<float>(pooled, [b, dp])));
        Race(row, pictor, () => { using var r = ort.Run(inputs); }, iters);
    }

    private static void DdimRow(DiffusionPipeline p, InferenceSession unet, string textPath, int threads, int iters)
    {
        var settings = new SamplingSettings("ddim", 50, p.DefaultGuidance, Seed: 7);
        const string prompt = "grinning face";
        int size = p.ImageSize, per = 3 * size * size, s = p.TextContext;
        using var text = Session(textPath, threads);
        Action ort = () =>
        {
            var ids = p.Tokenize([prompt, ""]).Data.Select(i => (long)i).ToArray();
            float[] tokens, pooled;
            using (var r = text.Run([NamedOnnxValue.CreateFromTensor("ids", new DenseTensor<long>(ids, [2, s]))]))
            {
                tokens = r.Single(v => v.Name == "tokens").AsTensor<float>().ToArray();
                pooled = r.Single(v => v.Name == "pooled").AsTensor<float>().ToArray();
            }
            int dc = tokens.Length / (2 * s);
            Denoise model = (x, t) =>
            {
                var xin = new float[2 * per];
                x.CopyTo(xin, 0); x.CopyTo(xin, per);
                using var r = unet.Run(
                [
                    NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(xin, [2, 3, size, size])),
                    NamedOnnxValue.CreateFromTensor("t", new DenseTensor<float>(new float[] { t, t }, [2])),
                    NamedOnnxValue.CreateFromTensor("context", new DenseTensor<float>(tokens, [2, s, dc])),
                    NamedOnnxValue.CreateFromTensor("pooled", new DenseTensor<float>(pooled, [2, dc])),
                ]);
                var o = r.Single(v => v.Name == "prediction").AsTensor<float>().ToArray();
                var g = new float[per];
                for (int i = 0; i < per; i++) g[i] = o[per + i] + settings.Guidance * (o[i] - o[per + i]);
                return g;
            };
            Sampler.ByName("ddim").Sample(p.Schedule, p.Config.Prediction, model, p.StartNoise(1, 7), 50,
                DiffusionPipeline.SamplerRng(7), clip: true);
        };
        Race("emoji DDIM 50 steps, guided (100 UNet rows), batch 1", () => p.Sample([prompt], settings), ort, iters);
    }

    private static void DalleRow(DallePipeline p, InferenceSession ort, int b, int iters)
    {
        var cfg = p.Setup.Transformer;
        var rng = new Rng(9);
        var ids = new int[b * cfg.SeqLen];
        for (int i = 0; i < ids.Length; i++)
            ids[i] = i % cfg.SeqLen < cfg.TextLen ? rng.NextInt(cfg.TextVocab) : cfg.TextVocab + rng.NextInt(cfg.ImageVocab);
        p.Transformer.Train(false);
        Action pictor = () =>
        {
            using var noGrad = Autograd.NoGrad();
            using var scope = TensorScope.Begin();
            p.Transformer.Forward(new IntTensor(ids, b, cfg.SeqLen));
        };
        var input = new DenseTensor<long>(ids.Select(i => (long)i).ToArray(), [b, cfg.SeqLen]);
        Race($"emoji-dalle transformer full-sequence forward ({cfg.SeqLen} tokens), batch {b}", pictor,
            () => { using var r = ort.Run([NamedOnnxValue.CreateFromTensor("ids", input)]); }, iters);
    }

    private static void Race(string row, Action pictor, Action ort, int iters)
    {
        pictor(); ort();
        var a = new double[iters]; var o = new double[iters];
        for (int i = 0; i < iters; i++)
        {
            if (i % 2 == 0) { a[i] = Ms(pictor); o[i] = Ms(ort); }
            else { o[i] = Ms(ort); a[i] = Ms(pictor); }
        }
        var ratios = a.Zip(o, (x, y) => x / y).ToArray();
        Console.WriteLine($"| {row} | {Stats(a)} | {Stats(o)} | {Median(a) / Median(o):F2} ({ratios.Min():F2}-"
            + $"{ratios.Max():F2}) |");
    }

    private static double Ms(Action f)
    {
        var sw = Stopwatch.StartNew();
        f();
        return sw.Elapsed.TotalMilliseconds;
    }

    private static string Stats(double[] v) => $"{v.Min():F1} / {Median(v):F1} / {v.Max():F1}";

    private static double Median(double[] v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static float[] Normal(Rng rng, int n)
    {
        var a = new float[n];
        rng.FillNormal(a);
        return a;
    }
}
