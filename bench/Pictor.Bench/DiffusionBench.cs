using System.Diagnostics;
using Pictor.Engine;
using Pictor.Engine.Kernels;
using Pictor.Nn.Optim;
using Pictor.Pipelines.Diffusion;
using Pictor.Text;

namespace Pictor.Bench;

/// <summary>Training step of a full text-to-image pipeline preset (text encoder + UNet), split into forward, backward
/// and optimiser time, so the shipped models' training budget can be planned: `Pictor.Bench diffusion-train xs 32 10`.
/// With a fourth argument, a dataset folder (train/ + val/), the batch is real: its first images and captions, noised at
/// random steps as training does (`diffusion-train xs-rel-place 32 4 data/shapes50k`); otherwise Gaussian inputs and
/// one caption.
/// A fifth argument W > 0 adds W times the grounding loss ('train diffusion --grounding W'), its masks built from the
/// batch's boxes inside the timed forward, as training builds them each step
/// (`diffusion-train xs 32 8 data/shapes50k 0.01`).
/// A sixth, P > 0, adds P times the placement loss ('train diffusion --placement P'; a preset with token places:
/// `diffusion-train xs-rel-place 32 8 data/shapes50k 0.01 0.1`).</summary>
internal static class DiffusionBench
{
    public static void Train(string preset, int batch, int iters, string? dataDir = null, float grounding = 0, float placement = 0)
    {
        if ((grounding > 0 || placement > 0) && dataDir == null) throw new ArgumentException("diffusion-train: a grounding or placement weight needs a dataset folder (the 4th argument) with object boxes");
        var real = dataDir == null ? null : Pictor.Pipelines.Training.ImageCaptionSet.LoadSplits(dataDir, 32).Train;
        var captions = real == null ? ["a small red circle", "two blue squares", "a green triangle left of a white circle"] : real.Captions.SelectMany(c => c).ToList();
        var tok = BpeTokenizer.Train(captions, 300);
        var pipe = new DiffusionPipeline(DiffusionConfig.FromPreset(preset, tok.VocabSize), tok, new Rng(1));
        var opt = new AdamW(pipe.NamedParameters(), new AdamWConfig(1e-4f));
        var data = new Rng(2);
        int s = pipe.Config.ImageSize;
        var x = data.Randn(batch, 3, s, s); var target = data.Randn(batch, 3, s, s);
        var t = Enumerable.Range(0, batch).Select(_ => (float)data.NextInt(1000)).ToArray();
        var ids = pipe.Tokenize(Enumerable.Repeat("a small red circle", batch).ToList(), truncate: true);
        if (real != null)
        {
            int per = 3 * s * s;
            var x0 = new float[batch * per]; var eps = new float[batch * per];
            var ti = t.Select(v => (int)v).ToArray();
            for (int i = 0; i < batch; i++) real.Read(i % real.Count, x0.AsSpan(i * per, per));
            data.FillNormal(eps);
            pipe.Schedule.AddNoise(x0, eps, ti, x.Span);
            pipe.Schedule.Target(pipe.Config.Prediction, x0, eps, ti, target.Span);
            ids = pipe.Tokenize(Enumerable.Range(0, batch).Select(i => real.Captions[i % real.Count][0]).ToList(), truncate: true);
        }
        double fwd = 0, bwd = 0, upd = 0; long flops = 0;
        long poolAllocs = 0, gcBytes = 0; int gcs = 0;
        for (int i = -2; i < iters; i++)
        {
            if (i == 0)
            {
                Gemm.FlopCounter = 0;
                poolAllocs = BufferPool.Allocations; gcBytes = GC.GetTotalAllocatedBytes(); gcs = GC.CollectionCount(0);
            }
            using var scope = TensorScope.Begin();
            var sw = Stopwatch.StartNew();
            opt.ZeroGrad();
            Tensor loss;
            if (grounding > 0 || placement > 0)
            {
                int ctx = pipe.Config.Text.Context;
                var caps = Enumerable.Range(0, batch).Select(k => real!.Captions[k % real.Count][0]).ToList();
                var objs = Enumerable.Range(0, batch).Select(k => real!.Objects[k % real.Count]).ToList();
                var maps = grounding > 0 ? new List<Tensor>() : null;
                var places = placement > 0 ? new List<Tensor>() : null;
                loss = Ops.MseLoss(pipe.Forward(x, t, ids, maps, places), target);
                if (maps != null)
                {
                    var (masks, grounded) = Pictor.Pipelines.Diffusion.Grounding.BatchMasks(tok, caps, objs, ctx, s);
                    loss = Ops.Add(loss, Ops.MulScalar(Pictor.Pipelines.Diffusion.GroundingLoss.Compute(maps, masks, grounded, batch, ctx, s), grounding));
                }
                if (places != null)
                {
                    var (targets, placed) = Pictor.Pipelines.Diffusion.Placement.BatchTargets(tok, caps, objs, ctx, s);
                    loss = Ops.Add(loss, Ops.MulScalar(Pictor.Pipelines.Diffusion.Placement.Loss(places.Single(), targets, placed), placement));
                }
            }
            else loss = Ops.MseLoss(pipe.Forward(x, t, ids), target);
            double a = sw.Elapsed.TotalSeconds;
            loss.Backward();
            double b = sw.Elapsed.TotalSeconds;
            GradClip.ClipByGlobalNorm(pipe.NamedParameters().Select(p => p.Param), 1f);
            opt.StepOnce();
            double c = sw.Elapsed.TotalSeconds;
            if (i >= 0) { fwd += a; bwd += b - a; upd += c - b; }
        }
        flops = Gemm.FlopCounter;
        // Steady-state allocation: new pooled arrays (should be 0), bytes the GC handed out and gen0 collections.
        Console.Error.WriteLine($"per step: {(double)(BufferPool.Allocations - poolAllocs) / iters:F1} new pool arrays, " +
            $"{(GC.GetTotalAllocatedBytes() - gcBytes) / iters / 1e6:F2} MB GC-allocated, {(double)(GC.CollectionCount(0) - gcs) / iters:F2} gen0 GCs");
        double step = (fwd + bwd + upd) / iters;
        Console.WriteLine($"| {preset}{(grounding > 0 ? $" + grounding {grounding}" : "")}{(placement > 0 ? $" + placement {placement}" : "")} train step, batch {batch} | {step * 1000:F0} ms | {batch / step:F1} images/s | fwd {fwd / iters * 1000:F0} ms, bwd {bwd / iters * 1000:F0} ms, optim {upd / iters * 1000:F0} ms | {flops / iters / 1e9 / batch:F2} GFLOP/image (GEMM) | {flops / iters / step / 1e9:F1} GFLOP/s |");
    }
}
