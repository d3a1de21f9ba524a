using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Pictor.Engine;
using Pictor.Engine.IO;

namespace Pictor.Nn.Optim;

/// <summary>AdamW hyper-parameters (PyTorch defaults except weight decay, which diffusion/GPT recipes set).</summary>
public sealed record AdamWConfig(
    float LearningRate = 1e-3f,
    float Beta1 = 0.9f,
    float Beta2 = 0.999f,
    float Eps = 1e-8f,
    float WeightDecay = 0.01f);   // decoupled: p -= lr * wd * p, applied before the Adam step

/// <summary>
/// AdamW (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", 2019, Algorithm 2), exactly as
/// torch.optim.AdamW computes it:
///   p_t = p_{t-1} - lr wd p_{t-1}
///   m_t = b1 m_{t-1} + (1 - b1) g;   v_t = b2 v_{t-1} + (1 - b2) g^2
///   p_t = p_t - lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)
/// Parameters without a gradient (frozen or unused) are skipped. State (step, m, v) saves and loads for exact resume.
/// </summary>
public sealed class AdamW
{
    private readonly List<(string Name, Tensor P, float[] M, float[] V, bool Decay)> groups = new();
    public AdamWConfig Config { get; }
    public float LearningRate { get; set; }
    public long Step { get; private set; }

    /// <param name="noDecay">Parameters excluded from weight decay (e.g. biases, norms, embeddings).</param>
    public AdamW(IEnumerable<(string Name, Tensor Param)> parameters, AdamWConfig config,
        Func<string, Tensor, bool>? noDecay = null)
    {
        Config = config;
        LearningRate = config.LearningRate;
        foreach (var (n, p) in parameters)
            groups.Add((n, p, new float[p.Numel], new float[p.Numel], !(noDecay?.Invoke(n, p) ?? false)));
    }

    public void ZeroGrad()
    {
        foreach (var g in groups) g.P.Grad?.Span.Clear();
    }

    public void StepOnce()
    {
        Step++;
        float b1 = Config.Beta1, b2 = Config.Beta2, lr = LearningRate;
        float bc1 = 1f - MathF.Pow(b1, Step), bc2 = 1f - MathF.Pow(b2, Step);
        float stepSize = lr / bc1, bc2Sqrt = MathF.Sqrt(bc2);
        foreach (var (_, p, m, v, decay) in groups)
        {
            if (p.Grad == null || !p.RequiresGrad) continue;
            var w = p.Span; var g = p.Grad.Span;
            if (decay && Config.WeightDecay != 0f) TensorPrimitives.Multiply(w, 1f - lr * Config.WeightDecay, w);
            for (int i = 0; i < w.Length; i++)
            {
                float gi = g[i];
                m[i] = b1 * m[i] + (1f - b1) * gi;
                v[i] = b2 * v[i] + (1f - b2) * gi * gi;
                // PyTorch: denom = sqrt(v) / sqrt(bc2) + eps;  p -= (lr / bc1) * m / denom
                float denom = MathF.Sqrt(v[i]) / bc2Sqrt + Config.Eps;
                w[i] -= stepSize * m[i] / denom;
            }
        }
    }

    /// <summary>Adds the optimiser state to a checkpoint writer under <paramref name="prefix"/> ("optim.", or
    /// another for a second optimiser in the same checkpoint).</summary>
    public void SaveState(SafeTensorsWriter w, Dictionary<string, string> meta, string prefix = "optim.")
    {
        meta[prefix + "step"] = Step.ToString();
        meta[prefix + "lr"] = LearningRate.ToString("R");
        foreach (var (n, p, m, v, _) in groups)
        {
            w.Add(prefix + "m." + n, m, p.Shape);
            w.Add(prefix + "v." + n, v, p.Shape);
        }
    }

    public void LoadState(SafeTensorsFile f, string prefix = "optim.")
    {
        long step = 0;
        if (!f.Metadata.TryGetValue(prefix + "step", out var s) || !long.TryParse(s, out step))
            Throw.Argument($"'{f.Source}' has no optimiser state (metadata {prefix}step); it is not a "
                + $"training checkpoint of this trainer");
        Step = step;
        if (f.Metadata.TryGetValue(prefix + "lr", out var lr))
            LearningRate = float.Parse(lr, System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (n, p, m, v, _) in groups)
        {
            f.ReadFloat32(prefix + "m." + n).CopyTo(m, 0);
            f.ReadFloat32(prefix + "v." + n).CopyTo(v, 0);
        }
    }
}
