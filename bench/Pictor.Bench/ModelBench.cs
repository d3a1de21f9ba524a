using System.Diagnostics;
using Pictor.Engine;
using Pictor.Engine.Kernels;
using Pictor.Models.Transformer;
using Pictor.Models.Unet;
using Pictor.Nn.Optim;

namespace Pictor.Bench;

/// <summary>
/// Whole-model timings on synthetic data, matching tools/reference/bench_peer.py: UNet-S training step (forward,
/// backward, AdamW) and denoiser-forward sampling loops; AR-S training step. Prints per-iteration medians, items/s and
/// achieved GFLOP/s. FLOP counts are measured, not estimated: every GEMM call is counted (Gemm.CountFlops).
/// </summary>
internal static class ModelBench
{
    public static void UnetTrain(int batch, int iters)
    {
        var model = new UnetModel(UnetConfig.S, new Rng(1));
        var opt = new AdamW(model.NamedParameters(), new AdamWConfig(LearningRate: 1e-4f));
        var data = new Rng(2);
        var x = data.Randn(batch, 3, 32, 32); var eps = data.Randn(batch, 3, 32, 32); var ctx = data.Randn(batch, 16, 256);
        var t = Enumerable.Range(0, batch).Select(i => (float)data.NextInt(1000)).ToArray();
        void Step()
        {
            using var scope = TensorScope.Begin();
            opt.ZeroGrad();
            Ops.MseLoss(model.Forward(x, t, ctx), eps).Backward();
            opt.StepOnce();
        }
        Report($"UNet-S train step, batch {batch}", batch, "images", iters, Step);
    }

    /// <summary>Where the UNet-S training step's memory goes: parameters + gradients + AdamW moments, the pooled bytes
    /// held at the end of the forward pass (activations kept for backward plus forward temporaries), the pooled peak of
    /// the whole step, the pool's footprint and the process's peak resident set.</summary>
    public static void UnetTrainMemory(int batch)
    {
        var model = new UnetModel(UnetConfig.S, new Rng(1));
        var opt = new AdamW(model.NamedParameters(), new AdamWConfig(LearningRate: 1e-4f));
        var data = new Rng(2);
        var x = data.Randn(batch, 3, 32, 32); var eps = data.Randn(batch, 3, 32, 32); var ctx = data.Randn(batch, 16, 256);
        var t = Enumerable.Range(0, batch).Select(i => (float)data.NextInt(1000)).ToArray();
        const double MiB = 1 << 20;
        long paramBytes = 4L * model.Parameters().Sum(p => (long)p.Numel);
        Console.WriteLine($"# UNet-S training step memory, batch {batch}, {Pictor.Engine.Kernels.Parallelism.Threads} threads");
        Console.WriteLine("| step | parameters x4 (weights, grads, AdamW m, v) | pooled at end of forward | pooled peak of the step | pool footprint | peak RSS |");
        Console.WriteLine("|---|---|---|---|---|---|");
        var tally = new Dictionary<string, long>();
        for (int step = 1; step <= 3; step++)
        {
            long forward, peak;
            using (var scope = TensorScope.Begin())
            {
                BufferPool.ResetPeak();
                long before = BufferPool.InUseBytes;
                opt.ZeroGrad();
                // The last step also attributes the forward's rentals to the ops that made them (innermost Pictor frames).
                if (step == 3) BufferPool.RentHook = n => { var site = RentSite(); tally[site] = tally.GetValueOrDefault(site) + 4L * n; };
                var loss = Ops.MseLoss(model.Forward(x, t, ctx), eps);
                BufferPool.RentHook = null;
                forward = BufferPool.InUseBytes - before;
                loss.Backward();
                opt.StepOnce();
                peak = BufferPool.PeakInUseBytes - before;
            }
            Console.WriteLine($"| {step} | {4 * paramBytes / MiB:F0} MiB | {forward / MiB:F0} MiB | {peak / MiB:F0} MiB | {BufferPool.FootprintBytes / MiB:F0} MiB | {RaceServer.PeakRssKiB() / 1024.0:F0} MiB |");
        }
        Console.WriteLine("\n| MiB rented in the forward of step 3 | by (innermost frames first) |\n|---|---|");
        foreach (var kv in tally.OrderByDescending(k => k.Value).Where(k => k.Value >= 1 << 20))
            Console.WriteLine($"| {kv.Value / MiB:F1} | {kv.Key} |");
    }

    private static string RentSite() => string.Join(" < ", new System.Diagnostics.StackTrace().GetFrames()
        .Select(f => f.GetMethod()).Where(m => m?.DeclaringType?.Namespace?.StartsWith("Pictor") == true
            && !m.DeclaringType.Name.StartsWith('<') && m.DeclaringType.Name is not ("BufferPool" or "Tensor" or "ModelBench"))
        .Take(3).Select(m => m!.DeclaringType!.Name + "." + m.Name));

    public static void UnetSample(int batch, int steps, bool cfg, int iters)
    {
        var model = new UnetModel(UnetConfig.S, new Rng(1));
        var data = new Rng(3);
        int b = cfg ? 2 * batch : batch;   // batched CFG: conditional and unconditional in one pass
        var x = data.Randn(b, 3, 32, 32); var ctx = data.Randn(b, 16, 256);
        var t = new float[b];
        void Sample()
        {
            using var _ = Autograd.NoGrad();
            for (int s = 0; s < steps; s++)
            {
                using var scope = TensorScope.Begin();
                Array.Fill(t, 999f - s * 1000f / steps);
                model.Forward(x, t, ctx);
            }
        }
        Report($"UNet-S sampling, {steps} denoiser calls, batch {batch}{(cfg ? " with CFG" : "")}", batch, "images", iters, Sample);
    }

    public static void ArTrain(int batch, int iters)
    {
        var cfg = ArConfig.S;
        var model = new ArTransformer(cfg, new Rng(1));
        var opt = new AdamW(model.NamedParameters(), new AdamWConfig(LearningRate: 1e-4f));
        var data = new Rng(4);
        var ids = new IntTensor(Enumerable.Range(0, batch * cfg.SeqLen).Select(i => i % cfg.SeqLen < cfg.TextLen ? data.NextInt(cfg.TextVocab) : cfg.TextVocab + data.NextInt(cfg.ImageVocab)).ToArray(), batch, cfg.SeqLen);
        void Step()
        {
            using var scope = TensorScope.Begin();
            opt.ZeroGrad();
            model.Loss(ids).Backward();
            opt.StepOnce();
        }
        Report($"AR-S train step, batch {batch}", batch * (cfg.SeqLen - 1), "tokens", iters, Step);
    }

    public static void ArSample(int batch, bool cache, int iters)
    {
        var cfg = ArConfig.S;
        var model = new ArTransformer(cfg, new Rng(1));
        var data = new Rng(5);
        var prompt = new IntTensor(Enumerable.Range(0, batch * cfg.TextLen).Select(_ => data.NextInt(cfg.TextVocab)).ToArray(), batch, cfg.TextLen);
        var opt = new ArSamplingOptions(1f, 64, AllowedFrom: cfg.TextVocab);
        Report($"AR-S sampling {cfg.ImageLen} image tokens, batch {batch}, {(cache ? "KV cache" : "no cache")}", batch * cfg.ImageLen, "tokens", iters,
               () => ArSampler.Generate(model, prompt, cfg.ImageLen, opt, new Rng(6), useCache: cache));
    }

    private static void Report(string name, int items, string unit, int iters, Action f)
    {
        f();                                     // warm-up (JIT, pool)
        Gemm.FlopCounter = 0;
        f();
        long flops = Gemm.FlopCounter;
        var times = new double[iters];
        for (int i = 0; i < iters; i++)
        {
            var sw = Stopwatch.StartNew();
            f();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        double med = times[iters / 2];
        Console.WriteLine($"| {name} | {med * 1000:F0} ms | {items / med:F1} {unit}/s | {flops / 1e9:F1} GFLOP (GEMM) | {flops / med / 1e9:F1} GFLOP/s |");
    }
}
