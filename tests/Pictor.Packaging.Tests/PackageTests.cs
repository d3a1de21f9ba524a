using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using Pictor.Imaging.Png;

namespace Pictor.Packaging.Tests;

/// <summary>
/// The packages as someone outside the solution uses them: scripts/pack.sh packs the six libraries into a fresh
/// folder, samples/HelloPictor is restored from that folder alone (Pictor.*) plus the machine's NuGet cache (everything
/// else, so nothing is downloaded) into a fresh packages folder (so a stale 0.1.0 in ~/.nuget/packages cannot be
/// used), built and run with the shipped emoji model. Everything it writes is under one temp folder, deleted after.
/// </summary>
public class PackageTests
{
    private static readonly string Root = FindRoot();
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(15);

    [Fact]
    public void Packed_libraries_build_and_run_the_sample()
    {
        string tmp = Path.Combine(Path.GetTempPath(), "pictor-pack-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(tmp);
        try
        {
            string feed = Path.Combine(tmp, "feed"), packages = Path.Combine(tmp, "packages");
            Run("bash", Path.Combine(Root, "scripts", "pack.sh"), feed, Path.Combine(tmp, "pack-artifacts"));

            string[] ids = ["Pictor.Engine", "Pictor.Nn", "Pictor.Text", "Pictor.Imaging", "Pictor.Models", "Pictor.Pipelines"];
            Assert.Equal(ids.Order().Select(i => i + ".0.1.0.nupkg"),
                Directory.GetFiles(feed, "*.nupkg").Select(Path.GetFileName).Order());
            foreach (var id in ids) CheckPackage(Path.Combine(feed, id + ".0.1.0.nupkg"), id);

            // Pictor.* only from the fresh feed; third-party packages from the global packages folder, used as a source.
            string cache = Run("dotnet", "nuget", "locals", "global-packages", "-l").Split("global-packages:", 2)[1].Trim();
            string config = Path.Combine(tmp, "nuget.config");
            File.WriteAllText(config, $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources><clear /><add key="feed" value="{feed}" /><add key="cache" value="{cache}" /></packageSources>
                  <packageSourceMapping>
                    <packageSource key="feed"><package pattern="Pictor.*" /></packageSource>
                    <packageSource key="cache"><package pattern="*" /></packageSource>
                  </packageSourceMapping>
                </configuration>
                """);
            string sample = Path.Combine(tmp, "sample");
            Run("dotnet", "build", Path.Combine(Root, "samples", "HelloPictor", "HelloPictor.csproj"), "-c", "Release", "-nologo",
                "--artifacts-path", sample, $"-p:RestorePackagesPath={packages}", $"-p:RestoreConfigFile={config}");
            string restored = File.ReadAllText(Path.Combine(packages, "pictor.pipelines", "0.1.0", ".nupkg.metadata"));
            Assert.Contains(feed.Replace("\\", "\\\\"), restored);                              // the package came from the feed

            string png = Path.Combine(tmp, "hello.png"), prompt = "grinning face, noto style";
            string output = Run("dotnet", Path.Combine(sample, "bin", "HelloPictor", "release", "HelloPictor.dll"),
                Path.Combine(Root, "models", "emoji"), prompt, png);
            Assert.Contains("step 20/20", output);
            var img = PngDecoder.DecodeFile(png);
            Assert.Equal((32, 32), (img.Width, img.Height));
            var meta = GenerationParameters.FromPng(img);
            Assert.NotNull(meta);
            Assert.Equal(prompt, meta.Prompt);
        }
        finally
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>The readme and licence are in the package, and the nuspec names the licence, the readme, the
    /// description and the git commit it was built from.</summary>
    private static void CheckPackage(string nupkg, string id)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var names = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("PACKAGE.md", names);
        Assert.Contains("LICENSE", names);
        Assert.Contains($"lib/net10.0/{id}.dll", names);
        using var reader = new StreamReader(zip.GetEntry(id + ".nuspec")!.Open());
        string nuspec = reader.ReadToEnd();
        Assert.Contains("<license type=\"expression\">MIT</license>", nuspec);
        Assert.Contains("<readme>PACKAGE.md</readme>", nuspec);
        Assert.Matches("<description>.{20,}</description>", nuspec);
        if (Directory.Exists(Path.Combine(Root, ".git")) || File.Exists(Path.Combine(Root, ".git")))   // a git checkout
            Assert.Matches(new Regex("<repository type=\"git\"[^>]* commit=\"[0-9a-f]{40}\""), nuspec);
    }

    /// <summary>Runs a command to the end and returns its output; on failure the exception carries all of it.</summary>
    private static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Root,
        };
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";   // no build nodes left holding this process's pipes
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment.Remove("NUGET_PACKAGES");           // RestorePackagesPath decides where packages go
        var output = new StringBuilder();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        var clock = Stopwatch.StartNew();
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        string command = file + " " + string.Join(' ', args);
        if (!p.WaitForExit(Limit))
        {
            p.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"timed out after {Limit}: {command}\n{output}");
        }
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"exit code {p.ExitCode} from: {command}\n{output}");
        Console.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: {command}");
        return output.ToString();
    }

    private static string FindRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d != null && !File.Exists(Path.Combine(d.FullName, "Pictor.slnx"))) d = d.Parent;
        return d?.FullName ?? throw new DirectoryNotFoundException("Pictor.slnx not found above " + AppContext.BaseDirectory);
    }
}
