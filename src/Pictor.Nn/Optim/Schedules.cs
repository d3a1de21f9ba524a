using Pictor.Engine;
using Pictor.Engine.IO;

namespace Pictor.Nn.Optim;

/// <summary>
/// Linear warm-up then cosine decay (as nanoGPT's get_lr): for step &lt; warmup, lr = max lr * (step + 1) / warmup;
/// after, lr = min + 0.5 (max - min)(1 + cos(pi * progress)) with progress from 0 to 1 over the remaining steps;
/// past the end, min.
/// </summary>
public sealed record WarmupCosine(float MaxLr, float MinLr, int WarmupSteps, int TotalSteps)
{
    public float At(long step)
    {
        if (step < WarmupSteps) return MaxLr * (step + 1) / WarmupSteps;
        if (step >= TotalSteps) return MinLr;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return (float)(MinLr + 0.5 * (MaxLr - MinLr) * (1 + Math.Cos(Math.PI * progress)));
    }
}

/// <summary>Clipping by global gradient norm (PyTorch's clip_grad_norm_).</summary>
public static class GradClip
{
    /// <summary>Scales all gradients by maxNorm / (norm + 1e-6) when their global L2 norm exceeds maxNorm.
    /// Returns the norm before clipping.</summary>
    public static float ClipByGlobalNorm(IEnumerable<Tensor> parameters, float maxNorm)
    {
        var ps = parameters.Where(p => p.Grad != null).ToList();
        double sq = 0;
        foreach (var p in ps)
            foreach (float g in p.Grad!.Span) sq += (double)g * g;
        float norm = (float)Math.Sqrt(sq);
        float coef = maxNorm / (norm + 1e-6f);
        if (coef < 1f)
            foreach (var p in ps) System.Numerics.Tensors.TensorPrimitives.Multiply(p.Grad!.Span, coef, p.Grad.Span);
        return norm;
    }
}

/// <summary>Exponential moving average of weights: shadow = decay * shadow + (1 - decay) * param.</summary>
public sealed class Ema
{
    private readonly List<(string Name, Tensor Param, float[] Shadow)> items = new();
    public float Decay { get; }

    public Ema(Module model, float decay = 0.999f) : this(model.NamedParameters(), decay) { }

    public Ema(IEnumerable<(string Name, Tensor Param)> parameters, float decay = 0.999f)
    {
        if (decay is < 0f or > 1f) Throw.Argument($"EMA decay must be in [0, 1], got {decay}");
        Decay = decay;
        foreach (var (n, p) in parameters) items.Add((n, p, p.ToArray()));
    }

    public void Update() => Update(Decay);

    /// <summary>One update with an explicit decay (e.g. the warm-up min(decay, (1 + step) / (10 + step)) of
    /// Tarvainen and Valpola's mean teacher, as diffusion trainers use, so early averages are not dominated by the
    /// random initialisation).</summary>
    public void Update(float decay)
    {
        foreach (var (_, p, s) in items)
        {
            var w = p.Span;
            for (int i = 0; i < s.Length; i++) s[i] = decay * s[i] + (1f - decay) * w[i];
        }
    }

    /// <summary>The warm-up decay at optimiser step <paramref name="step"/> (1-based).</summary>
    public float WarmupDecay(long step) => Math.Min(Decay, (1f + step) / (10f + step));

    public IReadOnlyDictionary<string, float[]> Shadow => items.ToDictionary(i => i.Name, i => i.Shadow);

    /// <summary>Copies the averaged weights into the model (e.g. before sampling or saving the EMA model).</summary>
    public void CopyTo(Module model)
    {
        var map = model.StateDict();
        foreach (var (n, _, s) in items) s.CopyTo(map[n].Span);
    }

    /// <summary>Adds the shadow weights to a checkpoint writer as PREFIX + name.</summary>
    public void SaveState(SafeTensorsWriter w, string prefix = "ema.")
    {
        foreach (var (n, p, s) in items) w.Add(prefix + n, s, p.Shape);
    }

    public void LoadState(SafeTensorsFile f, string prefix = "ema.")
    {
        foreach (var (n, p, s) in items)
        {
            if (!f.Contains(prefix + n))
                Throw.Argument($"'{f.Source}' has no EMA tensor '{prefix + n}'; it is not a checkpoint of this model");
            var v = f.ReadFloat32(prefix + n);
            if (v.Length != s.Length)
                Throw.Argument($"EMA tensor '{prefix + n}' in '{f.Source}' has {v.Length} values, the model "
                    + $"expects {s.Length}");
            v.CopyTo(s, 0);
        }
    }
}
