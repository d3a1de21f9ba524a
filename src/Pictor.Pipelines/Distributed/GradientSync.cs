using System.Diagnostics;
using Pictor.Engine;

namespace Pictor.Pipelines.Distributed;

/// <summary>
/// Sums the gradients of every parameter over the ranks (the allreduce of data-parallel SGD; Goyal et al. 2017), in a
/// few large buckets so the per-call latency is paid a handful of times per step, not once per tensor. A parameter no
/// rank touched keeps no gradient (as in one process, so AdamW skips it alike); one touched on some ranks only gets
/// the sum on every rank. With one rank it does nothing.
/// </summary>
public sealed class GradientSync
{
    /// <summary>Floats per bucket: 4 M (16 MiB), a few buckets for the shipped models.</summary>
    public const int BucketFloats = 1 << 22;
    private readonly ICollective world;
    private readonly Tensor[] ps;
    private readonly float[] bucket;

    public GradientSync(ICollective world, IEnumerable<Tensor> parameters)
    {
        this.world = world; ps = parameters.ToArray();
        long total = ps.Sum(p => (long)p.Numel);
        bucket = world.Size == 1 ? [] : new float[Math.Min(BucketFloats, total + ps.Length)];
    }

    /// <summary>Bytes each rank sends per step (the scale model's input: about 2 x this over the wire for a ring
    /// allreduce).</summary>
    public long BytesPerStep => 4L * (ps.Sum(p => (long)p.Numel) + ps.Length);

    /// <summary>Time spent in <see cref="Run"/> so far (the allreduce's share of the step, for the log).</summary>
    public TimeSpan Elapsed => clock.Elapsed;
    private readonly Stopwatch clock = new();

    public void Run()
    {
        if (world.Size == 1) return;
        clock.Start();
        try { Reduce(); }
        finally { clock.Stop(); }
    }

    private void Reduce()
    {
        // which parameters have a gradient anywhere: one float per parameter, reduced first
        var present = new float[ps.Length];
        for (int i = 0; i < ps.Length; i++) present[i] = ps[i].Grad != null ? 1f : 0f;
        world.AllreduceSum(present);
        for (int i = 0; i < ps.Length; i++)
            if (present[i] > 0 && ps[i].Grad == null)
                ps[i].Grad = TensorScope.Outside(() => Tensor.Zeros(ps[i].Shape));   // kept past the step's scope
        int start = 0;
        while (start < ps.Length)
        {
            // pack parameters start..end-1 (a parameter larger than a bucket goes alone, in slices)
            int end = start, used = 0;
            while (end < ps.Length && (present[end] == 0 || used + ps[end].Numel <= bucket.Length))
            {
                if (present[end] > 0) used += ps[end].Numel;
                end++;
            }
            if (end == start) { ReduceAlone(ps[start].Grad!.Span); start++; continue; }
            int o = 0;
            for (int i = start; i < end; i++)
                if (present[i] > 0) { ps[i].Grad!.Span.CopyTo(bucket.AsSpan(o)); o += ps[i].Numel; }
            world.AllreduceSum(bucket.AsSpan(0, o));
            o = 0;
            for (int i = start; i < end; i++)
                if (present[i] > 0) { bucket.AsSpan(o, ps[i].Numel).CopyTo(ps[i].Grad!.Span); o += ps[i].Numel; }
            start = end;
        }
    }

    private void ReduceAlone(Span<float> g)
    {
        for (int o = 0; o < g.Length; o += bucket.Length)
        {
            int n = Math.Min(bucket.Length, g.Length - o);
            g.Slice(o, n).CopyTo(bucket);
            world.AllreduceSum(bucket.AsSpan(0, n));
            bucket.AsSpan(0, n).CopyTo(g.Slice(o, n));
        }
    }
}
