using System.Diagnostics;
using System.Text.Json;
using Pictor.Imaging;
using Xunit.Abstractions;
using static Pictor.Server.Tests.TestServers;

namespace Pictor.Server.Tests;

/// <summary>
/// Real clients outside .NET: OpenAI's npm library and Debian's chromium (headless, driven by puppeteer-core), each
/// against a Kestrel server on a loopback port. scripts/setup.sh installs node, chromium and the packages
/// (tests/Pictor.Server.Tests/js); where one is missing the test is skipped and says which.
/// </summary>
[Collection("Server")]
public sealed class NodeClientTests(ITestOutputHelper output)
{
    private static readonly string Js = Path.Combine(RepoRoot(), "tests", "Pictor.Server.Tests", "js");

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Pictor.slnx"))) return d.FullName;
        throw new DirectoryNotFoundException("no Pictor.slnx above the test's folder");
    }

    private static string? OnPath(string name) => (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static string Node()
    {
        string? node = OnPath("node");
        Skip.If(node == null, "node is not installed; scripts/setup.sh installs it (apt-get install nodejs npm)");
        Skip.IfNot(Directory.Exists(Path.Combine(Js, "node_modules", "openai")),
            $"the npm packages are missing; run 'npm ci' in {Js} (scripts/setup.sh does)");
        return node!;
    }

    /// <summary>Runs a script in js/ and returns its one JSON line.</summary>
    private async Task<JsonElement> Run(string node, params string[] args)
    {
        var start = new ProcessStartInfo(node) { WorkingDirectory = Js, RedirectStandardOutput = true,
            RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { p.Kill(true); throw; }
        string o = await stdout, e = await stderr;
        output.WriteLine($"node {string.Join(' ', args)}: exit {p.ExitCode}\n{o}{e}");
        Assert.True(p.ExitCode == 0, $"node {args[0]} failed ({p.ExitCode}): {e}");
        return JsonDocument.Parse(o.Trim().Split('\n')[^1]).RootElement.Clone();
    }

    [SkippableFact]
    public async Task The_npm_openai_library_generates_an_image_and_reads_a_429()
    {
        string node = Node();
        var (app, url) = await Kestrel(Options(workers: 1, queue: 0) with { ApiKey = "npm-client-key" }, Tiny());
        await using var _ = app;
        string baseUrl = url.ToString().TrimEnd('/');
        var ok = await Run(node, "openai-client.mjs", baseUrl, "npm-client-key", "tiny", "generate");
        Assert.True(ok.GetProperty("ok").GetBoolean(), ok.ToString());
        Assert.Equal(("PNG", 16), (ok.GetProperty("signature").GetString(), ok.GetProperty("width").GetInt32()));

        using var busy = new HttpClient { BaseAddress = url };
        Bearer(busy, "npm-client-key");
        using var cancel = new CancellationTokenSource();
        var running = busy.PostAsync("/v1/images/generations", Json(new { prompt = "x", n = 64, steps = 1000 }),
            cancel.Token);
        while ((await ReadJson(await busy.GetAsync("/health"))).GetProperty("running").GetInt32() == 0)
            await Task.Delay(20);
        var refused = await Run(node, "openai-client.mjs", baseUrl, "npm-client-key", "tiny", "busy");
        Assert.Equal(429, refused.GetProperty("status").GetInt32());
        Assert.Equal("rate_limit_exceeded", refused.GetProperty("code").GetString());
        Assert.True(int.Parse(refused.GetProperty("retryAfter").GetString()!,
            System.Globalization.CultureInfo.InvariantCulture) >= 1);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    [SkippableFact]
    public async Task Chromium_generates_edits_and_varies_an_image_on_the_page_and_saves_a_screenshot()
    {
        string node = Node();
        string? chromium = OnPath("chromium");
        Skip.If(chromium == null, "chromium is not installed; scripts/setup.sh installs it (apt-get install chromium)");
        Skip.IfNot(Directory.Exists(Path.Combine(Js, "node_modules", "puppeteer-core")),
            $"puppeteer-core is missing; run 'npm ci' in {Js} (scripts/setup.sh does)");
        var (app, url) = await Kestrel(Options(), Tiny());
        await using var _ = app;
        string shot = Path.Combine(Path.GetTempPath(), $"pictor-web-{Guid.NewGuid():N}.png");
        try
        {
            var r = await Run(node, "browser.mjs", url.ToString().TrimEnd('/'), chromium!, shot);
            Assert.True(r.GetProperty("ok").GetBoolean(), r.ToString());
            var image = r.GetProperty("image");
            Assert.Equal((16, 16), (image.GetProperty("width").GetInt32(), image.GetProperty("height").GetInt32()));
            Assert.Equal("pictor-7.png", image.GetProperty("download").GetString());
            // The gallery's edit (a dragged rectangle: inpainting) and variations actions each made an image.
            foreach (var (name, caption) in new[] { ("edited", "inpainted: two blue squares"),
                ("varied", "variation of: a small red circle") })
            {
                var made = r.GetProperty(name);
                Assert.Equal((16, 16), (made.GetProperty("width").GetInt32(), made.GetProperty("height").GetInt32()));
                Assert.StartsWith(caption, made.GetProperty("caption").GetString());
            }
            var bar = r.GetProperty("progress");
            Assert.Equal(bar.GetProperty("max").GetDouble(), bar.GetProperty("value").GetDouble());
            var screenshot = Image.Load(shot);
            Assert.Equal(900, screenshot.Width);   // the whole page: the viewport's width, at least its height
            Assert.True(screenshot.Height >= 800, $"screenshot {screenshot.Width}x{screenshot.Height}");
        }
        finally { File.Delete(shot); }
    }
}
