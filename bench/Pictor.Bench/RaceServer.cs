using System.Diagnostics;
using Pictor.Engine;
using Pictor.Engine.Kernels;
using Pictor.Models.Diffusion;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Models.Transformer;
using Pictor.Models.Unet;
using Pictor.Nn.Optim;

namespace Pictor.Bench;

/// <summary>
/// One side of bench/race.py's alternating race: `Pictor.Bench serve ROW` builds the workload, then answers stdin
/// lines: "run" -> one iteration, printed as "ms items flops"; "rss" -> peak resident set (VmHWM, KiB); "quit".
/// tools/reference/bench_peer.py --serve ROW is the PyTorch side with the same workloads. Rows:
///   unet-train       UNet-S forward + backward + AdamW, batch 32
///   unet-ddim        DDIM 50 steps (denoiser + update), batch 16, no CFG
///   unet-ddim-cfg    the same with classifier-free guidance (conditional + unconditional rows in one batch of 32)
///   ar-train         AR-S forward + backward + AdamW, batch 64
///   ar-sample        AR-S 64 image tokens after a 16-token prompt, batch 16, KV cache, top-k 64
/// </summary>
internal static class RaceServer
{
    public static int Serve(string row)
    {
        var (items, run) = Build(row);
        Console.WriteLine($"ready {row}");
        string? line;
        while ((line = Console.ReadLine()) != null)
        {
            switch (line.Trim())
            {
                case "run":
                    Gemm.FlopCounter = 0;
                    var sw = Stopwatch.StartNew();
                    run();
                    Console.WriteLine($"{sw.Elapsed.TotalMilliseconds:F3} {items} {Gemm.FlopCounter}");
                    break;
                case "rss": Console.WriteLine(PeakRssKiB()); break;
                case "quit": return 0;
                default: Console.WriteLine($"error unknown command '{line}'"); break;
            }
        }
        return 0;
    }

    public static long PeakRssKiB()
    {
        foreach (var l in File.ReadLines("/proc/self/status"))
            if (l.StartsWith("VmHWM:", StringComparison.Ordinal)) return long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        return -1;
    }

    private static (int Items, Action Run) Build(string row)
    {
        var data = new Rng(2);
        switch (row)
        {
            case "unet-train":
            {
                var model = new UnetModel(UnetConfig.S, new Rng(1));
                var opt = new AdamW(model.NamedParameters(), new AdamWConfig(LearningRate: 1e-4f));
                var x = data.Randn(32, 3, 32, 32); var eps = data.Randn(32, 3, 32, 32); var ctx = data.Randn(32, 16, 256);
                var t = Enumerable.Range(0, 32).Select(_ => (float)data.NextInt(1000)).ToArray();
                return (32, () =>
                {
                    using var scope = TensorScope.Begin();
                    opt.ZeroGrad();
                    Ops.MseLoss(model.Forward(x, t, ctx), eps).Backward();
                    opt.StepOnce();
                });
            }
            case "unet-ddim" or "unet-ddim-cfg":
            {
                bool cfg = row.EndsWith("cfg", StringComparison.Ordinal);
                const int b = 16, per = 3 * 32 * 32;
                var model = new UnetModel(UnetConfig.S, new Rng(1));
                var schedule = new NoiseSchedule(1000);
                int rows = cfg ? 2 * b : b;
                var ctx = data.Randn(rows, 16, 256);
                var xT = new float[b * per]; data.FillNormal(xT);
                var ts = new float[rows];
                float[] Denoise(float[] x, int t)
                {
                    using var scope = TensorScope.Begin();
                    var xin = Tensor.Empty(rows, 3, 32, 32);
                    x.CopyTo(xin.Span); if (cfg) x.CopyTo(xin.Span[(b * per)..]);
                    Array.Fill(ts, t);
                    var o = model.Forward(xin, ts, ctx).Span;
                    var r = o[..(b * per)].ToArray();
                    if (cfg) { var u = o[(b * per)..]; for (int i = 0; i < r.Length; i++) r[i] = u[i] + 3f * (r[i] - u[i]); }
                    return r;
                }
                return (b, () => { using var ng = Autograd.NoGrad(); new Ddim(0).Sample(schedule, Prediction.Epsilon, Denoise, xT, 50, new Rng(3)); });
            }
            case "ar-train":
            {
                var cfg = ArConfig.S;
                var model = new ArTransformer(cfg, new Rng(1));
                var opt = new AdamW(model.NamedParameters(), new AdamWConfig(LearningRate: 1e-4f));
                var ids = new IntTensor(Enumerable.Range(0, 64 * cfg.SeqLen).Select(i => i % cfg.SeqLen < cfg.TextLen ? data.NextInt(cfg.TextVocab) : cfg.TextVocab + data.NextInt(cfg.ImageVocab)).ToArray(), 64, cfg.SeqLen);
                return (64 * (cfg.SeqLen - 1), () =>
                {
                    using var scope = TensorScope.Begin();
                    opt.ZeroGrad();
                    model.Loss(ids).Backward();
                    opt.StepOnce();
                });
            }
            case "ar-sample":
            {
                var cfg = ArConfig.S;
                var model = new ArTransformer(cfg, new Rng(1));
                var prompt = new IntTensor(Enumerable.Range(0, 16 * cfg.TextLen).Select(_ => data.NextInt(cfg.TextVocab)).ToArray(), 16, cfg.TextLen);
                var opt = new ArSamplingOptions(1f, 64, AllowedFrom: cfg.TextVocab);
                return (16 * cfg.ImageLen, () => ArSampler.Generate(model, prompt, cfg.ImageLen, opt, new Rng(6), useCache: true));
            }
            default: throw new ArgumentException($"unknown race row '{row}'; rows: unet-train, unet-ddim, unet-ddim-cfg, ar-train, ar-sample");
        }
    }
}
