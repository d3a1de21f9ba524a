namespace Pictor.Engine;

/// <summary>One recorded op: its inputs and the function that turns dY into input gradients (accumulating,
/// +=).</summary>
public sealed class Node
{
    public string Op { get; }
    internal Tensor[] Inputs { get; }
    internal Action<Tensor> BackwardFn { get; }

    internal Node(string op, Tensor[] inputs, Action<Tensor> backward)
    {
        Op = op;
        Inputs = inputs;
        BackwardFn = backward;
    }

    public override string ToString() => Op;
}

/// <summary>
/// Reverse-mode automatic differentiation. Ops call <see cref="Record"/> on their output when any input requires
/// grad; <see cref="Backward"/> visits the graph in reverse topological order, so each tensor's gradient is complete
/// before it is propagated to its inputs.
/// </summary>
public static class Autograd
{
    [ThreadStatic] private static int noGradDepth;

    /// <summary>False inside a <see cref="NoGrad"/> scope (and while a backward pass runs).</summary>
    public static bool IsEnabled => noGradDepth == 0;

    /// <summary>Ops inside the returned scope record nothing (sampling, evaluation, optimiser updates).</summary>
    public static NoGradScope NoGrad() => new();

    public readonly struct NoGradScope : IDisposable
    {
        public NoGradScope() { noGradDepth++; }
        public void Dispose() => noGradDepth--;
    }

    internal static bool Needs(Tensor a) => noGradDepth == 0 && a.RequiresGrad;
    internal static bool Needs(Tensor a, Tensor b) => noGradDepth == 0 && (a.RequiresGrad || b.RequiresGrad);
    internal static bool Needs(ReadOnlySpan<Tensor?> ts)
    {
        if (noGradDepth != 0) return false;
        foreach (var t in ts) if (t != null && t.RequiresGrad) return true;
        return false;
    }

    /// <summary>Marks <paramref name="output"/> as produced by <paramref name="op"/> from <paramref
    /// name="inputs"/>.</summary>
    internal static Tensor Record(Tensor output, string op, Tensor[] inputs, Action<Tensor> backward)
    {
        output.GradFn = new Node(op, inputs, backward);
        output.RequiresGrad = true;
        return output;
    }

    /// <summary>
    /// The gradient buffer of <paramref name="t"/>, created zeroed on first use. A leaf's buffer lives outside any
    /// TensorScope (it outlives the step); an intermediate's is pooled with the step.
    /// </summary>
    internal static Tensor GradBuffer(Tensor t)
    {
        if (t.Grad != null) return t.Grad;
        t.Grad = t.IsLeaf ? TensorScope.Outside(() => Tensor.Zeros(t.Shape)) : Tensor.Zeros(t.Shape);
        return t.Grad;
    }

    /// <summary>Backpropagates from <paramref name="root"/>: leaves (parameters, inputs with RequiresGrad) accumulate
    /// into .Grad; intermediate tensors' gradients are freed as soon as they are propagated, unless the tensor has
    /// <see cref="Tensor.RetainGrad"/> set.</summary>
    public static void Backward(Tensor root, Tensor? gradOutput)
    {
        if (!root.RequiresGrad)
            Throw.InvalidOperation("Backward() on a tensor that does not require grad: no parameter with RequiresGrad "
                + "= true was used to compute it (or it was computed under NoGrad)");
        if (gradOutput == null && root.Numel != 1)
            Throw.InvalidOperation($"Backward() without a gradient needs a scalar; this tensor has shape "
                + $"{Shape.Format(root.Shape)}. Reduce it (Sum/Mean) or pass gradOutput");
        if (gradOutput != null) Throw.IfShapeMismatch(gradOutput.Shape, root.Shape, "Backward gradOutput");

        var order = TopologicalOrder(root);
        var g = GradBuffer(root);
        if (gradOutput == null) g.Span[0] += 1f;
        else Ops.AddInto(gradOutput, g);

        using var _ = NoGrad();
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var t = order[i];
            if (t.Grad == null) continue;  // no path from the root reached it
            t.GradFn!.BackwardFn(t.Grad);
            // Every consumer of t has run (reverse topological order), so t's gradient is spent: give its buffer back
            // to the pool now, where the next node's gradient can reuse it, instead of holding every intermediate
            // gradient until the step's scope ends (PyTorch likewise keeps .grad only on leaves unless retain_grad()).
            if (!t.RetainGrad) { t.Grad.ReleaseStorage(); t.Grad = null; }
        }
    }

    /// <summary>Tensors with a GradFn reachable from <paramref name="root"/>, inputs before outputs.</summary>
    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor t, int next)>();
        if (root.GradFn == null) return order;
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.GradFn!.Inputs;
            if (next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var c = inputs[next];
                if (c.GradFn != null && visited.Add(c)) stack.Push((c, 0));
            }
            else order.Add(t);
        }
        return order;
    }
}
