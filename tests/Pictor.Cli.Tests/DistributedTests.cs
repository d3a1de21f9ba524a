using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Pictor.Engine.IO;

namespace Pictor.Cli.Tests;

/// <summary>
/// Data-parallel training under a real MPICH mpiexec (scripts/setup-mpi.sh installs it): two ranks with the global
/// batch split between them train the same weights as one process with the whole batch, for every trainer; resume under
/// MPI is exact (and works with another number of ranks); a rank that dies ends the job, with no checkpoint half
/// written.
/// </summary>
public class DistributedTests
{
    private const string Mpiexec = "mpiexec.mpich";
    private static readonly string Dll = typeof(Program).Assembly.Location;
    private static readonly Lazy<string> Data = new(() =>
    {
        var dir = Path.Combine(Directory.CreateTempSubdirectory("pictor-mpi-data").FullName, "shapes");
        Assert.Equal(0, Run(0, "data", "shapes", "--out", dir, "--count", "48", "--seed", "5").Code);
        return dir;
    });

    private static string[] Common(int steps, int batch = 8) =>
    [
        "--data", Data.Value, "--preset", "tiny", "--size", "16", "--batch", batch.ToString(CultureInfo.InvariantCulture),
        "--steps", steps.ToString(CultureInfo.InvariantCulture),
        "--val-every", "1", "--ckpt-every", "1", "--keep", "10", "--val-images", "4", "--warmup", "1",
    ];

    private static string[] FamilyArgs(string family, string dir) => family switch
    {
        // the draws the shard must replay: caption choice, mirroring, caption dropout, steps, noise; min-SNR weights
        "diffusion" => ["--hflip", "0.5", "--min-snr", "5"],
        "dalle" => ["--vqvae", Vq(dir), "--context", "12"],
        _ => [],
    };

    [SkippableTheory]
    [InlineData("diffusion")]
    [InlineData("clip")]
    [InlineData("vqvae")]
    [InlineData("dalle")]
    [InlineData("vae")]
    [InlineData("gan")]
    public void Two_ranks_train_the_same_weights_as_one_process_with_the_whole_batch(string family)
    {
        SkipWithoutMpi();
        var dir = Directory.CreateTempSubdirectory($"pictor-mpi-{family}").FullName;
        string one = Path.Combine(dir, "one"), two = Path.Combine(dir, "two");
        string[] args = ["train", family, .. Common(5), .. FamilyArgs(family, dir)];
        var r1 = Run(0, [.. args, "--out", one]);
        Assert.True(r1.Code == 0, r1.Err);
        var r2 = Run(2, [.. args, "--out", two]);
        Assert.True(r2.Code == 0, r2.Out + r2.Err);
        Assert.Contains("data-parallel: MPICH", r2.Err);
        Assert.Contains("4 of each batch of 8 images per rank", r2.Err);
        Assert.Single(Regex.Matches(r2.Out, "stopped at step 5"));   // rank 0 alone prints
        // the loss curve (train and val at every step) and the weights after 5 steps
        var (c1, c2) = (LossCurve(one), LossCurve(two));
        Assert.Equal(5, c1.Count);
        // a GAN's two networks step against each other, so float rounding of the split batch grows faster; its
        // generator loss is a mean score near 0, where relative error is large for the same absolute one; and with
        // Adam's beta1 = 0 a first step moves a weight by lr times the sign of its gradient, which rounding can flip
        // where the gradient is near 0 (a wrong split of the batch would still be off by far more: a factor of 2)
        double tol = family == "gan" ? 1e-4 : 1e-5, wtol = family == "gan" ? 1e-3 : 1e-5;
        for (int i = 0; i < c1.Count; i++)
        {
            Assert.True(Close(c1[i].Train, c2[i].Train, tol), $"{family} step {i + 1}: train loss {c1[i].Train} vs {c2[i].Train}");
            Assert.True(Close(c1[i].Val, c2[i].Val, tol), $"{family} step {i + 1}: val loss {c1[i].Val} vs {c2[i].Val}");
        }
        var worst = WorstRelative(Checkpoint(one, 5), Checkpoint(two, 5));
        Assert.True(worst.Rel <= wtol, $"{family}: weights differ by {worst.Rel:G3} relative in {worst.Name}");
    }

    [SkippableFact]
    public void Resume_under_mpi_is_exact_and_another_rank_count_continues_the_same_run()
    {
        SkipWithoutMpi();
        var dir = Directory.CreateTempSubdirectory("pictor-mpi-resume").FullName;
        string whole = Path.Combine(dir, "whole"), cut = Path.Combine(dir, "cut"), moved = Path.Combine(dir, "moved");
        string[] args = ["train", "diffusion", .. Common(5)];
        Assert.Equal(0, Run(2, [.. args, "--out", whole]).Code);
        var r = Run(2, [.. args, "--out", cut, "--stop-at-step", "3"]);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("stopped at step 3", r.Out);
        CopyDir(cut, moved);
        r = Run(2, "train", "diffusion", "--resume", cut);
        Assert.True(r.Code == 0, r.Err);
        // the same tensors (not the same file bytes: the metadata records each run's wall time, trained_seconds)
        Assert.Equal(SafeTensorsFile.Read(Checkpoint(whole, 5)).Tensors.Select(t => (t.Name, t.Numel)),
            SafeTensorsFile.Read(Checkpoint(cut, 5)).Tensors.Select(t => (t.Name, t.Numel)));
        var same = WorstRelative(Checkpoint(whole, 5), Checkpoint(cut, 5), everything: true);
        Assert.True(same.Rel == 0, $"resumed 2-rank run differs from the uninterrupted one in {same.Name} ({same.Rel:G3})");
        // the same run continued by one process: the checkpoint holds no rank state
        r = Run(0, "train", "diffusion", "--resume", moved);
        Assert.True(r.Code == 0, r.Err);
        var near = WorstRelative(Checkpoint(whole, 5), Checkpoint(moved, 5));
        Assert.True(near.Rel <= 1e-5, $"1-process resume of a 2-rank run: {near.Name} differs by {near.Rel:G3}");
    }

    [SkippableFact]
    public void A_killed_rank_ends_the_job_and_leaves_only_whole_checkpoints()
    {
        SkipWithoutMpi();
        var dir = Directory.CreateTempSubdirectory("pictor-mpi-kill").FullName;
        string run = Path.Combine(dir, "run");
        var psi = Mpi(2, ["train", "diffusion", .. Common(1_000_000), "--out", run]);
        using var p = Process.Start(psi)!;
        var err = new System.Text.StringBuilder();
        using var going = new ManualResetEventSlim();
        int rank1 = 0;
        p.ErrorDataReceived += (_, e) =>
        {
            lock (err) err.AppendLine(e.Data);
            if (e.Data != null && Regex.Match(e.Data, @"ranks: 0 = pid \d+ on \S+, 1 = pid (\d+)") is { Success: true } m)
                rank1 = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            if (e.Data?.StartsWith("step 3:", StringComparison.Ordinal) == true) going.Set();   // checkpoints exist
        };
        var stdout = p.StandardOutput.ReadToEndAsync();
        p.BeginErrorReadLine();
        if (!going.Wait(TimeSpan.FromSeconds(180))) { Kill(p); Assert.Fail("the 2-rank run never reached step 3: " + err); }
        Assert.True(rank1 > 0, "rank 0 did not log the rank-to-pid map: " + err);
        using (var kill = Process.Start("kill", ["-KILL", rank1.ToString(CultureInfo.InvariantCulture)])) kill.WaitForExit();
        if (!p.WaitForExit(60_000)) { Kill(p); Assert.Fail("the job did not end within 60 s of rank 1 dying"); }
        p.WaitForExit();
        string all = stdout.Result + err;
        Assert.NotEqual(0, p.ExitCode);
        // mpiexec names the dead process by pid; the map above says it was rank 1
        Assert.Contains($"PID {rank1} ", all);
        var ckpts = Directory.GetFiles(Path.Combine(run, "checkpoints"), "step-*.safetensors");
        Assert.NotEmpty(ckpts);
        foreach (var c in ckpts) Assert.True(SafeTensorsFile.Read(c).Contains("model.unet.conv_in.weight"), c);
    }

    [SkippableFact]
    public void A_batch_that_does_not_split_over_the_ranks_is_one_line_naming_the_fix()
    {
        SkipWithoutMpi();
        var dir = Directory.CreateTempSubdirectory("pictor-mpi-batch").FullName;
        var r = Run(2, ["train", "diffusion", .. Common(2, batch: 5), "--out", Path.Combine(dir, "run")]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains("--batch 5 does not split over 2 processes; use a multiple of 2", r.Err);
        Assert.False(File.Exists(Path.Combine(dir, "run", "train.json")), "nothing is written for a refused run");
    }

    // ------------------------------------------------------------------------------------------------ helpers

    private static void SkipWithoutMpi() =>
        Skip.If(Which(Mpiexec) == null, $"{Mpiexec} is not installed; scripts/setup.sh installs it (apt-get install mpich)");

    private static string Vq(string dir)
    {
        string vq = Path.Combine(dir, "vq");
        var r = Run(0, ["train", "vqvae", .. Common(2), "--out", vq]);
        Assert.True(r.Code == 0, r.Err);
        return vq;
    }

    private static string Checkpoint(string run, int step) => Path.Combine(run, "checkpoints", $"step-{step:D7}.safetensors");

    private static List<(double Train, double Val)> LossCurve(string run) =>
        File.ReadAllLines(Path.Combine(run, "log.csv")).Skip(1).Select(l => l.Split(','))
            .Select(f => (double.Parse(f[1], CultureInfo.InvariantCulture), double.Parse(f[2], CultureInfo.InvariantCulture))).ToList();

    private static bool Close(double a, double b, double rel) => Math.Abs(a - b) <= rel * Math.Max(Math.Abs(a), 1e-12);

    /// <summary>The largest max|a - b| / max|a| over the model's tensors (every float tensor with
    /// <paramref name="everything"/>: EMA and AdamW moments too). Attention key biases are left out of the inexact
    /// comparison: softmax ignores a shift shared by all keys, so their gradient is zero in exact arithmetic, and AdamW
    /// turns its rounding noise into full-size steps that no summation order reproduces.</summary>
    private static (double Rel, string Name) WorstRelative(string a, string b, bool everything = false)
    {
        var fa = SafeTensorsFile.Read(a); var fb = SafeTensorsFile.Read(b);
        (double, string) worst = (0, "");
        foreach (var t in fa.Tensors.Where(t => t.DType == DType.F32 && (everything || t.Name.StartsWith("model.", StringComparison.Ordinal)
                                                                          && !t.Name.EndsWith(".k.bias", StringComparison.Ordinal))))
        {
            var x = fa.ReadFloat32(t.Name); var y = fb.ReadFloat32(t.Name);
            double diff = 0, scale = 1e-12;
            for (int i = 0; i < x.Length; i++) { diff = Math.Max(diff, Math.Abs(x[i] - y[i])); scale = Math.Max(scale, Math.Abs(x[i])); }
            if (diff / scale > worst.Item1 || worst.Item2 == "") worst = (diff / scale, t.Name);
        }
        return worst;
    }

    private static void CopyDir(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(d.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(f, f.Replace(from, to));
    }

    private static ProcessStartInfo Mpi(int ranks, string[] args)
    {
        var psi = new ProcessStartInfo(ranks > 0 ? Mpiexec : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (ranks > 0) { psi.ArgumentList.Add("-n"); psi.ArgumentList.Add(ranks.ToString(CultureInfo.InvariantCulture)); psi.ArgumentList.Add("dotnet"); }
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("PICTOR_THREADS");
        return psi;
    }

    /// <summary>The CLI as one process (<paramref name="ranks"/> 0) or under mpiexec -n ranks.</summary>
    private static (int Code, string Out, string Err) Run(int ranks, params string[] args)
    {
        using var p = Process.Start(Mpi(ranks, args))!;
        var err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(300_000)) { Kill(p); throw new TimeoutException($"pictor {string.Join(' ', args)} ran over 300 s"); }
        return (p.ExitCode, stdout, err.Result);
    }

    private static void Kill(Process p) { try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } }

    private static string? Which(string exe) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, exe)).FirstOrDefault(File.Exists);
}
