using Pictor.Engine;

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

    public Ema(Module model, float decay = 0.999f)
    {
        if (decay is < 0f or > 1f) Throw.Argument($"EMA decay must be in [0, 1], got {decay}");
        Decay = decay;
        foreach (var (n, p) in model.NamedParameters()) items.Add((n, p, p.ToArray()));
    }

    public void Update()
    {
        foreach (var (_, p, s) in items)
        {
            var w = p.Span;
            for (int i = 0; i < s.Length; i++) s[i] = Decay * s[i] + (1f - Decay) * w[i];
        }
    }

    public IReadOnlyDictionary<string, float[]> Shadow => items.ToDictionary(i => i.Name, i => i.Shadow);

    /// <summary>Copies the averaged weights into the model (e.g. before sampling or saving the EMA model).</summary>
    public void CopyTo(Module model)
    {
        var map = model.StateDict();
        foreach (var (n, _, s) in items) s.CopyTo(map[n].Span);
    }
}
