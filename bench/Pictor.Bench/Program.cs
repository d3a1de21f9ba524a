using System.Globalization;

namespace Pictor.Bench;

/// <summary>Benchmarks. Figures and the exact commands live in bench/RESULTS.md.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        try { return Run(args); }
        catch (Exception e) when (e is IOException or ArgumentException or FormatException)
        {
            // Bad input (a missing model directory, a malformed argument): the message says what to fix; no stack trace.
            Console.Error.WriteLine($"Pictor.Bench: {e.Message}");
            return 1;
        }
    }

    private static string FixturesDir => Path.Combine(AppContext.BaseDirectory, "../../../../../tests/fixtures");

    private static int Run(string[] args)
    {
        string what = args.Length > 0 ? args[0] : "gemm";
        int iters = args.Length > 1 && int.TryParse(args[1], out int it) ? it : 15;
        switch (what)
        {
            case "gemm":
                GemmBench.Run([256, 512, 1024, 2048], iters);
                return 0;
            case "models":
                Console.WriteLine($"# Pictor, {Pictor.Engine.Kernels.Parallelism.Threads} threads, GEMM {Pictor.Engine.Kernels.Gemm.Backend}, OPENBLAS_CORETYPE={Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)"}, median of {iters}");
                Console.WriteLine("| benchmark | time | throughput | work | achieved |");
                Console.WriteLine("|---|---|---|---|---|");
                ModelBench.UnetTrain(32, iters);
                ModelBench.UnetSample(16, 50, cfg: false, Math.Max(3, iters / 3));
                ModelBench.UnetSample(16, 50, cfg: true, Math.Max(3, iters / 3));
                ModelBench.ArTrain(64, iters);
                ModelBench.ArSample(16, cache: true, iters);
                ModelBench.ArSample(16, cache: false, Math.Max(3, iters / 3));
                return 0;
            case "diffusion-train": DiffusionBench.Train(args.Length > 1 ? args[1] : "xs", args.Length > 2 ? int.Parse(args[2]) : 32, args.Length > 3 ? int.Parse(args[3]) : 5, args.Length > 4 ? args[4] : null, args.Length > 5 ? float.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture) : 0f, args.Length > 6 ? float.Parse(args[6], System.Globalization.CultureInfo.InvariantCulture) : 0f); return 0;
            case "serve": return RaceServer.Serve(args.Length > 1 ? args[1] : "");
            case "unet-train": ModelBench.UnetTrain(32, iters); return 0;
            case "unet-train-memory": ModelBench.UnetTrainMemory(32); return 0;
            case "unet-sample": ModelBench.UnetSample(16, 10, cfg: false, iters); return 0;
            case "dalle": DalleBench.Run(iters); return 0;
            case "onnx-race": OnnxRace.Run(args.Length > 1 ? iters : 7, args.Length > 2 ? args[2] : "models"); return 0;
            case "conv": ConvBench.Run(args.Length > 1 ? iters : 7); return 0;
            case "text-probe": TextProbe.Run(args.Length > 1 ? args[1] : "models/shapes", args.Length > 2 ? int.Parse(args[2]) : 4000); return 0;
            case "transpose": TransposeBench.Run(args.Length > 1 ? iters : 21); return 0;
            case "conv-parts": ConvBench.Parts(args.Length > 1 ? iters : 200, args.Length > 2 ? int.Parse(args[2]) : 32, args.Length > 3 ? int.Parse(args[3]) : 64); return 0;
            case "ar-sample": ModelBench.ArSample(16, cache: true, iters); ModelBench.ArSample(16, cache: false, Math.Max(3, iters / 3)); return 0;
            case "fuzz-png":
                // fuzz-png [cases] [seed] [suite dir]
                int cases = args.Length > 1 && int.TryParse(args[1], out int c) ? c : 10_000;
                ulong seed = args.Length > 2 && ulong.TryParse(args[2], out ulong s) ? s : 1;
                string dir = args.Length > 3 ? args[3] : Path.Combine(AppContext.BaseDirectory, "../../../../../tests/fixtures/pngsuite");
                return PngFuzz.Run(dir, cases, seed);
            case "fuzz-image":
            {
                // fuzz-image FORMAT [cases] [seed]: FORMAT jpeg, webp, png, png-ours, gif, bmp or tiff
                if (args.Length < 2) throw new ArgumentException("use 'fuzz-image FORMAT [cases] [seed]'");
                int n = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10_000;
                ulong s0 = args.Length > 3 ? ulong.Parse(args[3], CultureInfo.InvariantCulture) : 1;
                return ImageFuzz.Run(args[1], n, s0, Path.Combine(FixturesDir, "images"),
                    Path.Combine(FixturesDir, "pngsuite"));
            }
            case "png-compare":
                // png-compare [repeats]: our PNG decoder against Skia's on speed and PngSuite
                PngCompare.Run(Path.Combine(FixturesDir, "pngsuite"), args.Length > 1 ? iters : 20);
                return 0;
            default:
                Console.Error.WriteLine($"unknown benchmark '{what}'; available: gemm, models, diffusion-train, " +
                    "serve ROW, unet-train, unet-train-memory, unet-sample, ar-sample, dalle, conv, conv-parts, " +
                    "transpose, text-probe, fuzz-png, fuzz-image, png-compare");
                return 2;
        }
    }
}
