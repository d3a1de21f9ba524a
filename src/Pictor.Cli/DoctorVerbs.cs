using System.CommandLine;
using System.Globalization;
using Pictor.Engine.Diagnostics;
using Pictor.Engine.Kernels;
using Pictor.Pipelines;
using Spectre.Console;

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
            string coreType = Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)";
            Console.WriteLine($"OPENBLAS_CORETYPE {coreType}");
            return 0;
        });
        return c;
    }

    public static Command Doctor()
    {
        var models = CliOptions.Text("--models", "the folder of model directories to check", fallback: "models");
        var c = new Command("doctor", "Check the runtime, the GEMM backend, every op against its references, the "
            + "shipped models and one image's generation time; exit 1 on any failure") { models };
        c.SetAction(p =>
        {
            var rows = Pictor.Pipelines.Doctor.Run(GenerateVerbs.ResolveModel(p.GetValue(models)!));
            var table = new Table().AddColumn("section").AddColumn("check").AddColumn("ok").AddColumn("detail")
                .AddColumn(new TableColumn("time").RightAligned());
            foreach (var r in rows)
            {
                double? sec = r.Duration?.TotalSeconds;
                string time = sec is { } t ? t.ToString(t < 10 ? "F3" : "F1", CultureInfo.InvariantCulture) + " s" : "";
                table.AddRow(Markup.Escape(r.Section.ToString()), Markup.Escape(r.Name),
                    r.Ok ? "[green]ok[/]" : "[red]FAIL[/]", Markup.Escape(r.Detail), time);
            }
            // A table on a terminal; on a pipe or in CI, the same table without colour, as wide as its content.
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(Console.Out),
                Ansi = ConsoleProgress.Interactive && !Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
            });
            if (Console.IsOutputRedirected) console.Profile.Width = 200;
            console.Write(table);
            int failed = rows.Count(r => !r.Ok);
            Console.WriteLine(failed == 0 ? $"doctor: all {rows.Count} checks passed"
                : $"doctor: {failed} of {rows.Count} checks FAILED (see the rows marked FAIL)");
            return failed == 0 ? 0 : 1;
        });
        return c;
    }
}
