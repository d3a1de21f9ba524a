using System.Diagnostics;
using Pictor.Engine;
using Pictor.Engine.Kernels;

namespace Pictor.Cli;

/// <summary>Thin verbs: parse, call the library, print. No maths here.</summary>
public static class Program
{
    private const string Help = """
        pictor - text-to-image generation in C#, trained and run on the CPU

        Usage: pictor <verb> [options]

        Verbs available now:
          info                 engine status: GEMM backend, threads, OpenBLAS library, SIMD width
          selftest             a 512x512x512 GEMM through every backend, checked against the reference
          data shapes          --out DIR [--count N] [--seed S] [--size 32|64] [--mix S:P:C]: procedural scenes with ground truth (mix: scene kinds' weights, default 1:1:1)
          data emoji           --out DIR [--from DIR] [--split style|emoji] [--categories LIST] [--skin-tones all|none]: Noto + Twemoji images with emojibase captions (npm pack); val holds out one style of some emoji (style, default) or whole emoji (emoji: zero-shot); --categories keeps some emoji-datasource categories, e.g. "Smileys & Emotion,Animals & Nature,Food & Drink"
          data pack            --data DIR [--size 32] --out FILE: decode an image folder once into a memory-mapped cache
          tokenizer train      --data DIR [--vocab 4096] --out DIR: byte-level BPE on a dataset's captions
          image info           IN.png: size, type, text chunks and generation parameters
          image convert        IN.png OUT.png: any valid PNG to 8-bit RGBA
          train diffusion      --data DIR --out RUN [--preset tiny|xs|xs-rel-place|s] [--steps N] [--batch B] [--lr X] [--max-minutes M]
                               or --resume RUN: DDPM training with validation, checkpoints, EMA, sample grids
          train vqvae          --data DIR --out RUN [--preset tiny|s|dvae-tiny|dvae-s]: the DALL-E image tokenizer (VQ or Gumbel dVAE)
          train dalle          --data DIR --vqvae RUN --out RUN [--preset tiny|xs|s]: the transformer over text + image tokens
          train clip           --data DIR --out RUN [--preset tiny|xs|s]: contrastive text/image encoders (retrieval accuracy)
          export               RUN [--step N|best|last] --out DIR: one checkpoint's EMA weights as a model directory (default last; the run's model/ holds the step that validated best)
          generate             "PROMPT" --out FILE.png [--model DIR] [--cfg S] [--negative TEXT] [--seed N] [-n N] [--grid]
                               --cfg: guidance scale, default the model's default_cfg (3 when its config.json has none)
                               diffusion: [--sampler dpm++|ddim|ddpm] [--steps 20] [--eta X]; DALL-E: [--temperature T] [--top-k K] [--top-p P]
                               reranking: [--candidates 32 --keep 4 --clip DIR]
          verify               FILE.png [--model DIR]: regenerate from the PNG's metadata and compare pixels
          eval shapes          --model DIR [--sampler] [--steps] [--cfg] [--seed 0] [--repeats K] [--report FILE.json] [--grid FILE.png]
          eval clip            --model DIR --clip DIR --data DIR [--images 100] [--candidates 100] [--report FILE.json]
          help                 this text

        Coming with the next issues: serve.
        """;

    public static int Main(string[] args)
    {
        try
        {
            string verb = args.Length == 0 ? "help" : args[0];
            var rest = args.Skip(1).ToArray();
            if (rest.Any(a => a is "--help" or "-h")) { Console.WriteLine(VerbHelp(args)); return 0; }
            switch (verb)
            {
                case "help" or "--help" or "-h": Console.WriteLine(Help); return 0;
                case "info": NoOptions(verb, rest); return Info();
                case "selftest": NoOptions(verb, rest); return SelfTest();
                case "data": return DataVerbs.Data(rest);
                case "tokenizer": return DataVerbs.Tokenizer(rest);
                case "image": return DataVerbs.ImageVerb(rest);
                case "train": return TrainVerbs.Train(rest);
                case "export": return TrainVerbs.Export(rest);
                case "generate": return GenerateVerbs.Generate(rest);
                case "verify": return GenerateVerbs.Verify(rest);
                case "eval": return EvalVerbs.Eval(rest);
                default:
                    Console.Error.WriteLine($"pictor: unknown verb '{verb}'. Run 'pictor help' for the list.");
                    return 2;
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or InvalidOperationException)
        {
            Console.Error.WriteLine($"pictor: {e.Message}");
            return 2;
        }
    }

    /// <summary>The lines of <see cref="Help"/> for `pictor VERB [SUBVERB] --help`: the verb's own line(s) with their
    /// continuations, or every line of the verb family ("train", "data", ...), or the whole text for an unknown verb.</summary>
    internal static string VerbHelp(string[] args)
    {
        var lines = Help.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        List<string> Lines(string key)
        {
            var r = new List<string>();
            for (int i = 0; i < lines.Count; i++)
            {
                var t = lines[i].TrimStart();
                if (t.Length == 0 || lines[i].Length - t.Length > 12 || !(t == key || t.StartsWith(key + " ", StringComparison.Ordinal))) continue;
                r.Add(lines[i]);
                for (int j = i + 1; j < lines.Count && lines[j].Length - lines[j].TrimStart().Length > 12; j++) r.Add(lines[j]);   // continuation lines
            }
            return r;
        }
        var found = args.Length > 1 && !args[1].StartsWith('-') ? Lines($"{args[0]} {args[1]}") : [];
        if (found.Count == 0) found = Lines(args[0]);
        return found.Count == 0 ? Help : "Usage: pictor <verb> [options]\n" + string.Join("\n", found);
    }

    private static void NoOptions(string verb, string[] rest)
    {
        if (rest.Length > 0) throw new ArgumentException($"'{verb}' takes no options, got '{rest[0]}'. Run 'pictor help'.");
    }

    private static int Info()
    {
        Console.WriteLine($"GEMM backend   {Gemm.Backend}{(Gemm.Hybrid ? $" + managed Vector512 for large products (OpenBLAS core {OpenBlasInfo.CoreName} lacks AVX-512)" : "")}");
        Console.WriteLine($"OpenBLAS       {(OpenBlasInfo.Available ? OpenBlasInfo.Path : "not found (apt-get install libopenblas0-pthread)")}");
        Console.WriteLine($"threads        {Parallelism.Threads}");
        Console.WriteLine($"SIMD           Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}, Vector256 {System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated}");
        Console.WriteLine($"OPENBLAS_CORETYPE {Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)"}");
        return 0;
    }

    private static int SelfTest()
    {
        const int n = 512;
        var rng = new Rng(1);
        var a = new float[n * n]; var b = new float[n * n];
        rng.FillNormal(a); rng.FillNormal(b);
        var want = new float[n * n];
        Gemm.Sgemm(GemmBackend.Reference, false, false, n, n, n, 1f, a, n, b, n, 0f, want, n);
        var backends = OpenBlasInfo.Available ? new[] { GemmBackend.Simd, GemmBackend.OpenBlas } : new[] { GemmBackend.Simd };
        bool ok = true;
        foreach (var be in backends)
        {
            var c = new float[n * n];
            Gemm.Sgemm(be, false, false, n, n, n, 1f, a, n, b, n, 0f, c, n);   // warm-up (JIT, thread start)
            var sw = Stopwatch.StartNew();
            Gemm.Sgemm(be, false, false, n, n, n, 1f, a, n, b, n, 0f, c, n);
            double ms = sw.Elapsed.TotalMilliseconds;
            double maxDiff = 0;
            for (int i = 0; i < c.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(c[i] - want[i]));
            bool pass = maxDiff < 1e-3;
            ok &= pass;
            Console.WriteLine($"{be,-9} {(pass ? "OK" : "MISMATCH")} maxdiff {maxDiff:G3}  ({2.0 * n * n * n / ms / 1e6:F1} GFLOP/s after one warm-up call; bench/gemm.sh measures properly)");
        }
        return ok ? 0 : 1;
    }
}
