namespace Pictor.Engine;

/// <summary>
/// Recycles float arrays by exact length. Tensors created inside a <see cref="TensorScope"/> rent from it and give
/// their storage back when the scope ends, so a training step of fixed shapes reuses the same arrays every step.
/// </summary>
public static class BufferPool
{
    // Exact-length buckets: a step of fixed shapes asks for the same lengths every time.
    private static readonly Dictionary<int, Stack<float[]>> Buckets = new();
    private static readonly Lock Gate = new();

    /// <summary>Arrays handed out that were newly allocated (not recycled); a steady-state step adds none.</summary>
    public static long Allocations { get; private set; }

    /// <summary>Arrays rented by the calling thread, recycled or new (per thread, so tests can count an op's buffers
    /// while other tests run).</summary>
    public static long RentalsOnThisThread => rentalsOnThisThread;

    /// <summary>Bytes of arrays handed out and not yet returned, and the most there were since <see cref="ResetPeak"/>
    /// (what a step holds at once: benchmarks print it beside the peak resident set).</summary>
    public static long InUseBytes { get; private set; }
    public static long PeakInUseBytes { get; private set; }
    /// <summary>Bytes of every array the pool ever allocated (it never frees them until <see cref="Clear"/>).</summary>
    public static long FootprintBytes { get; private set; }

    /// <summary>Diagnostics: called with the length of every rental (the memory benchmark attributes a step's buffers
    /// to the ops that rented them). Null in normal use.</summary>
    public static Action<int>? RentHook { get; set; }
    public static void ResetPeak() { lock (Gate) PeakInUseBytes = InUseBytes; }
    [ThreadStatic] private static long rentalsOnThisThread;

    public static float[] Rent(int length, bool clear)
    {
        if (length == 0) return [];
        RentHook?.Invoke(length);
        rentalsOnThisThread++;
        lock (Gate)
        {
            InUseBytes += 4L * length;
            if (InUseBytes > PeakInUseBytes) PeakInUseBytes = InUseBytes;
            if (Buckets.TryGetValue(length, out var stack) && stack.Count > 0)
            {
                var a = stack.Pop();
                if (clear) Array.Clear(a);
                return a;
            }
            Allocations++;
            FootprintBytes += 4L * length;
        }
        return new float[length];
    }

    public static void Return(float[] array)
    {
        if (array.Length == 0) return;
        lock (Gate)
        {
            InUseBytes -= 4L * array.Length;
            if (!Buckets.TryGetValue(array.Length, out var stack)) Buckets[array.Length] = stack = new Stack<float[]>();
            stack.Push(array);
        }
    }

    /// <summary>Drops every pooled array (for tests and after a change of shapes).</summary>
    public static void Clear()
    {
        lock (Gate) { Buckets.Clear(); FootprintBytes = 0; }
    }
}

/// <summary>
/// A region whose intermediate tensors borrow pooled storage; disposing it returns that storage. Tensors you need
/// after the scope (a loss value to print, a sample) must be copied out first or passed to <see cref="Keep"/>.
/// Scopes nest; parameters and their gradients are created outside any scope and are never pooled.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? current;
    private readonly TensorScope? parent;
    private readonly List<Tensor> owned = new();
    private bool disposed;

    private TensorScope() { parent = current; current = this; }

    public static TensorScope Begin() => new();

    internal static TensorScope? Current => current;

    /// <summary>Runs <paramref name="body"/> with no scope active, so tensors it makes are ordinary GC
    /// arrays.</summary>
    public static T Outside<T>(Func<T> body)
    {
        var saved = current;
        current = null;
        try { return body(); }
        finally { current = saved; }
    }

    internal void Track(Tensor t) => owned.Add(t);

    /// <summary>Exempts <paramref name="t"/> from being recycled: it is moved to the parent scope, or to the
    /// GC.</summary>
    public Tensor Keep(Tensor t)
    {
        if (owned.Remove(t))
        {
            if (parent != null) parent.Track(t);
            else t.DetachFromPool();
        }
        return t;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (current != this)
            Throw.InvalidOperation("TensorScope disposed out of order; dispose inner scopes first (use 'using')");
        current = parent;
        foreach (var t in owned) t.ReleaseStorage();
        owned.Clear();
    }
}
