namespace Pictor.Bench;

/// <summary>Benchmarks. Figures and the exact commands live in bench/RESULTS.md.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        string what = args.Length > 0 ? args[0] : "gemm";
        int iters = args.Length > 1 && int.TryParse(args[1], out int it) ? it : 15;
        switch (what)
        {
            case "gemm":
                GemmBench.Run([256, 512, 1024, 2048], iters);
                return 0;
            default:
                Console.Error.WriteLine($"unknown benchmark '{what}'; available: gemm");
                return 2;
        }
    }
}
