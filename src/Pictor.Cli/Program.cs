using System.CommandLine;
using System.CommandLine.Parsing;
using Pictor.Engine.Kernels;

namespace Pictor.Cli;

/// <summary>
/// Thin verbs on System.CommandLine: parse, call the library, print; no maths here. Exit codes: 0 done, 1 a runtime
/// error (a missing or corrupt file, a failed check), 2 a usage error (an unknown verb or option, a value out of
/// range), 130 interrupted. Every error is one line on standard error; --verbose adds the stack trace.
/// </summary>
public static class Program
{
    private static CancellationTokenSource cancel = new();

    /// <summary>Cancelled by Ctrl+C during generation and evaluation (training handles Ctrl+C itself, with a
    /// checkpoint).</summary>
    internal static CancellationToken Cancel => cancel.Token;

    private static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "print the stack trace of an error", Recursive = true,
    };

    /// <summary>Every verb, declared once: `pictor --help` lists them and `pictor VERB --help` their options.</summary>
    public static RootCommand Commands()
    {
        var root = new RootCommand("pictor - text-to-image generation in C#, trained and run on the CPU")
        {
            GenerateVerbs.Generate(), GenerateVerbs.Verify(), TrainVerbs.Train(), TrainVerbs.Export(), EvalVerbs.Eval(),
            DataVerbs.Data(), DataVerbs.Tokenizer(), DataVerbs.ImageVerb(), DoctorVerbs.Doctor(), DoctorVerbs.Info(),
            CompletionVerb.Completion(), ServeVerb.Serve(), InsideVerbs.Inspect(), InsideVerbs.Explain(),
            TrainVerbs.Plan(),
            EditVerbs.Edit(), EditVerbs.Inpaint(), EditVerbs.Complete(), UnclipVerbs.Vary(), UnclipVerbs.Interpolate(),
        };
        root.Add(Verbose);
        return root;
    }

    public static int Main(string[] args)
    {
        var root = Commands();
        if (args.Length > 0 && args[0] == "help") args = [.. args.Skip(1), "--help"];   // 'pictor help [VERB]'
        var parse = root.Parse(args);
        bool verbose = parse.GetValue(Verbose);
        if (parse.Errors.Count > 0)
        {
            Console.Error.WriteLine($"pictor: {Describe(parse)}");
            return 2;
        }
        cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCtrlC = (_, e) =>
        {
            if (cancel.IsCancellationRequested) return;   // a second Ctrl+C ends the process at once
            e.Cancel = true; cancel.Cancel();
        };
        Console.CancelKeyPress += onCtrlC;
        try
        {
            return parse.Invoke(new InvocationConfiguration
            {
                EnableDefaultExceptionHandler = false, Output = Console.Out, Error = Console.Error,
            });
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("pictor: interrupted; nothing was written");
            return 130;
        }
        catch (Exception e) when (e is ArgumentException)
        {
            Console.Error.WriteLine($"pictor: {OneLine(e.Message)}");
            if (verbose) Console.Error.WriteLine(e);
            return 2;
        }
        catch (Exception e)
        {
            bool known = e is IOException or FormatException or InvalidOperationException or UnauthorizedAccessException
                or NotSupportedException;
            Console.Error.WriteLine(known ? $"pictor: {OneLine(e.Message)}"
                : $"pictor: internal error ({e.GetType().Name}): {OneLine(e.Message)}; run again with "
                    + $"--verbose for the "
                  + "stack trace and report it");
            if (verbose) Console.Error.WriteLine(e);
            return 1;
        }
        finally { Console.CancelKeyPress -= onCtrlC; }
    }

    /// <summary>The first parse error as one line that names the verb and how to see what it takes.</summary>
    private static string Describe(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        string path = string.Join(" ", parse.CommandResult.Command.Parents.OfType<Command>()
            .Where(c => c is not RootCommand).Reverse().Select(c => c.Name).Append(command.Name)
            .Where(n => n != parse.RootCommandResult.Command.Name));
        string help = path.Length == 0 ? "'pictor --help'" : $"'pictor {path} --help'";
        if (parse.UnmatchedTokens.Count > 0)
        {
            string t = parse.UnmatchedTokens[0];
            if (t.StartsWith('-'))
                return $"unknown option '{t}' for '{(path.Length == 0 ? "pictor" : path)}'; it takes "
                    + string.Join(", ", command.Options.Where(o => !o.Hidden && o.Name != "--help").Select(o => o.Name))
                    + $" (see {help})";
            if (command.Subcommands.Count > 0)
                return $"unknown verb '{t}'{(path.Length == 0 ? "" : $" for '{path}'")}; use "
                    + string.Join(", ", command.Subcommands.Select(c => c.Name)) + $" (see {help})";
            return $"unexpected argument '{t}' for '{path}' (see {help})";
        }
        var error = parse.Errors[0].Message;
        var required = System.Text.RegularExpressions.Regex.Match(error, "^Option '([^']+)' is required");
        if (required.Success) return $"'{path}' needs {required.Groups[1].Value} (see {help})";
        if (command.Subcommands.Count > 0 && command.Action == null)
            return $"'{(path.Length == 0 ? "pictor" : path)}' needs a verb: "
                + string.Join(", ", command.Subcommands.Select(c => c.Name)) + $" (see {help})";
        return $"{OneLine(error)} (see {help})";
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");

    /// <summary>The engine's state in a few lines (what `doctor` checks, without the checks).</summary>
    internal static string EngineSummary() =>
        $"threads {Parallelism.Threads}, "
        + $"SIMD Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}, "
        + $"Vector256 {System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated}";
}
