using System.Diagnostics;

namespace Pictor.Cli.Tests;

/// <summary>A training process told to stop by SIGTERM (docker stop, systemd, a scheduler) checkpoints and exits cleanly,
/// in a real child process: the signal cannot be sent to the test runner itself.</summary>
public class SignalTests
{
    [Fact]
    public async Task Sigterm_stops_training_after_the_step_with_a_checkpoint()
    {
        if (OperatingSystem.IsWindows()) return;   // no SIGTERM to send there
        var dir = Directory.CreateTempSubdirectory("pictor-sigterm").FullName;
        string data = Path.Combine(dir, "shapes"), run = Path.Combine(dir, "run");
        string dll = typeof(Program).Assembly.Location;
        Assert.Equal(0, Start(dll, "data", "shapes", "--out", data, "--count", "24", "--seed", "1").WaitForExitCode(60));
        // Far more steps than the test waits for, and no checkpoint interval it could reach: only the signal saves one.
        using var p = Start(dll, "train", "diffusion", "--data", data, "--out", run, "--preset", "tiny", "--size", "16", "--steps", "1000000",
                            "--batch", "2", "--val-every", "1000000", "--ckpt-every", "1000000", "--val-images", "2");
        var err = new System.Text.StringBuilder();
        using var started = new ManualResetEventSlim();
        p.ErrorDataReceived += (_, e) => { lock (err) err.AppendLine(e.Data); if (e.Data?.StartsWith("step ") == true && e.Data.Contains("/1000000")) started.Set(); };   // the progress line is throttled: any step
        var outTask = p.StandardOutput.ReadToEndAsync();
        p.BeginErrorReadLine();
        if (!started.Wait(TimeSpan.FromSeconds(120))) { p.Kill(); Assert.Fail("training never reported a step: " + err); }
        using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString()])) kill.WaitForExit();
        if (!p.WaitForExit(60_000)) { p.Kill(); Assert.Fail("the process did not stop within 60 s of SIGTERM"); }
        string stdout = await outTask;
        Assert.True(p.ExitCode == 0, $"exit code {p.ExitCode}: {err}");
        Assert.Contains("SIGTERM: stopping after this step", err.ToString());
        Assert.Matches(@"stopped at step \d+ \(interrupted\)", stdout);
        Assert.Single(Directory.GetFiles(Path.Combine(run, "checkpoints")));
    }

    private static Process Start(string dll, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }
}

internal static class ProcessExtensions
{
    public static int WaitForExitCode(this Process p, int seconds)
    {
        p.StandardOutput.ReadToEnd(); p.StandardError.ReadToEnd();
        if (!p.WaitForExit(seconds * 1000)) { p.Kill(); throw new TimeoutException($"'{p.StartInfo.FileName}' ran over {seconds} s"); }
        return p.ExitCode;
    }
}
