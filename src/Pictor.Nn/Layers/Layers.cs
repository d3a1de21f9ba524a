using Pictor.Engine;

namespace Pictor.Nn;

/// <summary>y = x W^T + b; W [Out, In] as in PyTorch's nn.Linear.</summary>
public sealed class Linear : Module
{
    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public int In { get; }
    public int Out { get; }

    public Linear(Rng rng, int inFeatures, int outFeatures, bool bias = true)
    {
        In = inFeatures; Out = outFeatures;
        Weight = Param("weight", Init.DefaultUniform(rng, inFeatures, outFeatures, inFeatures));
        if (bias) Bias = Param("bias", Init.DefaultUniform(rng, inFeatures, outFeatures));
    }

    public Tensor Forward(Tensor x) => Ops.Linear(x, Weight, Bias);   // (.., In) -> (.., Out)
}

/// <summary>2-D convolution, weight [O, C/groups, K, K], as PyTorch's nn.Conv2d.</summary>
public sealed class Conv2d : Module
{
    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public int Stride { get; }
    public int Padding { get; }
    public int Groups { get; }

    public Conv2d(Rng rng, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0,
        int groups = 1, bool bias = true)
    {
        if (inChannels % groups != 0 || outChannels % groups != 0)
            Throw.Argument($"Conv2d: channels {inChannels} -> {outChannels} must divide by groups {groups}");
        Stride = stride; Padding = padding; Groups = groups;
        int fanIn = inChannels / groups * kernel * kernel;
        Weight = Param("weight", Init.DefaultUniform(rng, fanIn, outChannels, inChannels / groups, kernel, kernel));
        if (bias) Bias = Param("bias", Init.DefaultUniform(rng, fanIn, outChannels));
    }

    // (B, C, H, W) -> (B, O, OH, OW)
    public Tensor Forward(Tensor x) => Ops.Conv2d(x, Weight, Bias, Stride, Padding, Groups);
}

public sealed class GroupNorm : Module
{
    public int Groups { get; }
    public float Eps { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }

    public GroupNorm(int groups, int channels, float eps = 1e-5f)
    {
        Groups = groups; Eps = eps;
        Weight = Param("weight", Init.Ones(channels));
        Bias = Param("bias", Init.Zeros(channels));
    }

    public Tensor Forward(Tensor x) => Ops.GroupNorm(x, Groups, Weight, Bias, Eps);

    /// <summary>silu(Forward(x)), fused when no gradient is recorded.</summary>
    public Tensor ForwardSilu(Tensor x) => Ops.GroupNormSilu(x, Groups, Weight, Bias, Eps);
}

public sealed class LayerNorm : Module
{
    public float Eps { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }

    public LayerNorm(int features, float eps = 1e-5f)
    {
        Eps = eps;
        Weight = Param("weight", Init.Ones(features));
        Bias = Param("bias", Init.Zeros(features));
    }

    public Tensor Forward(Tensor x) => Ops.LayerNorm(x, Weight, Bias, Eps);
}

/// <summary>Lookup table [V, D], initialised N(0, 1) as PyTorch's nn.Embedding (override with Init.Normal).</summary>
public sealed class Embedding : Module
{
    public Tensor Weight { get; }

    public Embedding(Rng rng, int count, int dim, float std = 1f)
    {
        Weight = Param("weight", Init.Normal(rng, std, count, dim));
    }

    public Tensor Forward(IntTensor ids) => Ops.Embedding(ids, Weight);   // (..) -> (.., D)
}

/// <summary>Two linear layers with an activation between: D -> hidden -> D (the transformer feed-forward).</summary>
public sealed class Mlp : Module
{
    public Linear Fc1 { get; }
    public Linear Fc2 { get; }
    public Activation Act { get; }

    public Mlp(Rng rng, int dim, int hidden, Activation act = Activation.Gelu, int? outDim = null)
    {
        Fc1 = Child("fc1", new Linear(rng, dim, hidden));
        Fc2 = Child("fc2", new Linear(rng, hidden, outDim ?? dim));
        Act = act;
    }

    public Tensor Forward(Tensor x) => Fc2.Forward(Activations.Apply(Act, Fc1.Forward(x)));
}

public enum Activation { Gelu, GeluTanh, Silu, Relu }

public static class Activations
{
    public static Tensor Apply(Activation a, Tensor x) => a switch
    {
        Activation.Gelu => Ops.Gelu(x),
        Activation.GeluTanh => Ops.Gelu(x, tanhApproximation: true),
        Activation.Silu => Ops.Silu(x),
        _ => Ops.Relu(x),
    };
}
