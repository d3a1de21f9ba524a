using Pictor.Engine;
using Pictor.Engine.IO;

namespace Pictor.Nn;

/// <summary>
/// Base of every layer and model: owns named parameters and child modules, so a model's parameters have dotted names
/// ("blocks.0.attn.q.weight") exactly like a PyTorch state dict. Train/eval mode propagates to children.
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Tensor Param)> parameters = new();
    private readonly List<(string Name, Module Child)> children = new();
    private readonly HashSet<Tensor> buffers = new(ReferenceEqualityComparer.Instance);

    public bool Training { get; private set; } = true;

    /// <summary>Registers a trainable parameter (RequiresGrad = true) under <paramref name="name"/>.</summary>
    protected Tensor Param(string name, Tensor value)
    {
        if (parameters.Any(p => p.Name == name) || children.Any(c => c.Name == name))
            Throw.Argument($"{GetType().Name}: '{name}' registered twice");
        value.RequiresGrad = true;
        parameters.Add((name, value));
        return value;
    }

    /// <summary>Registers state that is saved and loaded with the parameters but never trained by an optimiser
    /// (RequiresGrad stays false, <see cref="SetFrozen"/> leaves it alone): PyTorch's register_buffer, e.g. a VQ
    /// codebook updated by moving averages.</summary>
    protected Tensor Buffer(string name, Tensor value)
    {
        if (parameters.Any(p => p.Name == name) || children.Any(c => c.Name == name))
            Throw.Argument($"{GetType().Name}: '{name}' registered twice");
        value.RequiresGrad = false;
        parameters.Add((name, value));
        buffers.Add(value);
        return value;
    }

    protected T Child<T>(string name, T module) where T : Module
    {
        if (parameters.Any(p => p.Name == name) || children.Any(c => c.Name == name))
            Throw.Argument($"{GetType().Name}: '{name}' registered twice");
        children.Add((name, module));
        return module;
    }

    /// <summary>All parameters with dotted names, depth-first in registration order (stable, like PyTorch).</summary>
    public IEnumerable<(string Name, Tensor Param)> NamedParameters(string prefix = "")
    {
        foreach (var (n, p) in parameters) yield return (prefix + n, p);
        foreach (var (n, c) in children)
            foreach (var np in c.NamedParameters(prefix + n + ".")) yield return np;
    }

    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Param);

    /// <summary>The direct children with their names, in registration order (what an exporter walks: the ONNX writer
    /// maps each child it knows and refuses the rest by name).</summary>
    public IReadOnlyList<(string Name, Module Child)> NamedChildren => children;

    /// <summary>True when <paramref name="t"/> was registered with <see cref="Buffer"/> here or in a child.</summary>
    public bool IsBuffer(Tensor t) => buffers.Contains(t) || children.Any(c => c.Child.IsBuffer(t));

    /// <summary>Parameters that currently train (not frozen).</summary>
    public IEnumerable<Tensor> TrainableParameters() => Parameters().Where(p => p.RequiresGrad);

    public long ParameterCount() => Parameters().Sum(p => (long)p.Numel);

    public void Train(bool on = true)
    {
        Training = on;
        foreach (var (_, c) in children) c.Train(on);
    }

    public void Eval() => Train(false);

    /// <summary>Freezes (or unfreezes) every parameter of this module: frozen ones get no gradient and no
    /// update.</summary>
    public void SetFrozen(bool frozen)
    {
        foreach (var p in Parameters())
        {
            if (IsBuffer(p)) continue;
            p.RequiresGrad = !frozen;
            if (frozen) p.Grad = null;
        }
    }

    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.Grad?.Span.Clear();
    }

    /// <summary>Name -> parameter map.</summary>
    public Dictionary<string, Tensor> StateDict() => NamedParameters().ToDictionary(p => p.Name, p => p.Param);

    /// <summary>Copies values from <paramref name="file"/>; every parameter must be present with the same
    /// shape.</summary>
    public void LoadStateDict(SafeTensorsFile file, string prefix = "", bool strict = true)
    {
        var expected = new HashSet<string>();
        foreach (var (name, p) in NamedParameters())
        {
            var key = prefix + name;
            expected.Add(key);
            if (!file.Contains(key))
            {
                if (strict)
                    Throw.Argument($"'{file.Source}' has no parameter '{key}'; was it saved from a model with a "
                        + $"different config?");
                continue;
            }
            var info = file.Info(key);
            if (!info.Shape.AsSpan().SequenceEqual(p.Shape))
                Throw.Argument($"parameter '{key}': file has shape {Shape.Format(info.Shape)}, the model expects "
                    + $"{Shape.Format(p.Shape)}; the model config differs from the checkpoint's");
            file.ReadFloat32(key).CopyTo(p.Span);
        }
        if (strict)
        {
            var extra = file.Tensors.Select(t => t.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)
                && !expected.Contains(n)).ToList();
            if (extra.Count > 0)
                Throw.Argument($"'{file.Source}' has parameters this model lacks: {string.Join(", ", extra.Take(10))}; "
                    + $"the model config differs from the checkpoint's");
        }
    }

    public void Save(string path, DType dtype = DType.F32, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var w = new SafeTensorsWriter();
        foreach (var (n, p) in NamedParameters()) w.Add(n, p, dtype);
        w.Write(path, metadata);
    }
}
