namespace Pictor.Engine.Kernels;

/// <summary>Public view of whether OpenBLAS loaded, and from where.</summary>
public static class OpenBlasInfo
{
    public static bool Available => OpenBlas.IsAvailable;
    public static string? Path => OpenBlas.LibraryPath;
    public static string CoreName => OpenBlas.CoreName;
}
