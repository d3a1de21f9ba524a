using System.Diagnostics.CodeAnalysis;

namespace Pictor.Engine;

/// <summary>Small throw helpers so validation at public boundaries stays one line (STYLE habit 4).</summary>
public static class Throw
{
    [DoesNotReturn] public static void Argument(string message) => throw new ArgumentException(message);
    [DoesNotReturn] public static T Argument<T>(string message) => throw new ArgumentException(message);
    [DoesNotReturn] public static void InvalidOperation(string message) => throw new InvalidOperationException(message);
    [DoesNotReturn] public static T InvalidOperation<T>(string message) => throw new InvalidOperationException(message);
    [DoesNotReturn] public static void Format(string message) => throw new FormatException(message);

    public static void IfShapeMismatch(ReadOnlySpan<int> found, ReadOnlySpan<int> expected, string what)
    {
        if (!found.SequenceEqual(expected))
            Argument($"{what}: shape is {Shape.Format(found)}, expected {Shape.Format(expected)}");
    }
}
