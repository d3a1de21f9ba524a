using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Pipelines;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Unclip;
using Pictor.Pipelines.Vq;
using Pictor.Text;

namespace Pictor.Server.Tests;

/// <summary>The server tests share the machine's two cores: one class at a time.</summary>
[CollectionDefinition("Server", DisableParallelization = true)]
public sealed class ServerCollection;

/// <summary>What the tests start: a tiny diffusion model made in memory (16x16, milliseconds a step) and the server
/// around it, in memory (WebApplicationFactory) or on a loopback port (Kestrel).</summary>
internal static class TestServers
{
    /// <summary>Copied from tests/Pictor.Pipelines.Tests/PipelineTests.cs (Tokenizer, Tiny): the tiny preset on a
    /// four-caption tokenizer.</summary>
    public static DiffusionPipeline TinyPipeline(ulong seed = 1)
    {
        var tok = BpeTokenizer.Train(["a small red circle", "two blue squares", "a green triangle left of a white "
            + "circle", "a large yellow square at the top"], 300);
        return new DiffusionPipeline(DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12), tok, new Rng(seed));
    }

    public static ModelCatalog Tiny() => new([new TextToImage(TinyPipeline(), "tiny")]);

    /// <summary>Copied from tests/Pictor.Pipelines.Tests/EditingTests.cs (TinyDalle): a 16x16 DALL-E model on the
    /// tiny VQ-VAE (a 4x4 token grid).</summary>
    public static DallePipeline TinyDalle()
    {
        var tok = BpeTokenizer.Train(["a small red circle", "two blue squares", "a green triangle left of a white "
            + "circle", "a large yellow square at the top"], 300);
        var vq = new VqModel("tiny", 16, VqModel.FromPreset("tiny"), new Rng(2));
        var setup = DalleSetup.FromPreset("tiny", 16, tok.VocabSize, 12, vq.Config.Codes, vq.Grid);
        return new DallePipeline(setup, tok, vq, new Rng(3));
    }

    /// <summary>A 16x16 unCLIP model in memory: a tiny CLIP on the same captions and the tiny prior and
    /// decoder (untrained: the tests check plumbing and determinism, not pictures).</summary>
    public static UnclipPipeline TinyUnclip()
    {
        var tok = BpeTokenizer.Train(["a small red circle", "two blue squares", "a green triangle left of a white "
            + "circle", "a large yellow square at the top"], 300);
        var clip = new ClipPipeline("tiny", 16, ClipPipeline.FromPreset("tiny", tok.VocabSize, 12), tok, new Rng(4));
        return new UnclipPipeline(UnclipConfig.FromPreset("tiny", clip, ""), clip, new Rng(5));
    }

    /// <summary>Random opaque pixels, the same for the same seed.</summary>
    public static Image Noise(int size, ulong seed)
    {
        var img = new Image(size, size);
        var rng = new Rng(seed);
        for (int i = 0; i < img.Rgba.Length; i++) img.Rgba[i] = i % 4 == 3 ? (byte)255 : (byte)rng.NextInt(256);
        return img;
    }

    /// <summary>A multipart form as OpenAI's clients send it: PNG files and text fields.</summary>
    public static MultipartFormDataContent Form(Image? image, Image? mask = null, params (string, string)[] fields)
    {
        var form = new MultipartFormDataContent();
        if (image != null) form.Add(PngPart(image.ToPng()), "image", "image.png");
        if (mask != null) form.Add(PngPart(mask.ToPng()), "mask", "mask.png");
        foreach (var (name, value) in fields) form.Add(new StringContent(value), name);
        return form;
    }

    public static ByteArrayContent PngPart(byte[] png)
    {
        var part = new ByteArrayContent(png);
        part.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        return part;
    }

    /// <summary>The PNGs of an images response, checked for success.</summary>
    public static async Task<List<byte[]>> Pngs(HttpResponseMessage r)
    {
        var body = await ReadJson(r);
        Assert.True(r.IsSuccessStatusCode, body.ToString());
        return body.GetProperty("data").EnumerateArray()
            .Select(d => Convert.FromBase64String(d.GetProperty("b64_json").GetString()!)).ToList();
    }

    /// <summary>Options for tests: limits high enough for long-running jobs that tests then cancel.</summary>
    public static ServerOptions Options(int workers = 1, int queue = 2) => new()
    {
        Workers = workers, Queue = queue, MaxImages = 64, MaxSteps = 1000, Port = 0,
    };

    public static StringContent Json(object body) =>
        new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    public static async Task<JsonElement> ReadJson(HttpResponseMessage r) =>
        JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone();

    /// <summary>The error object of an OpenAI-shaped error response, checked for its four fields.</summary>
    public static async Task<JsonElement> Error(HttpResponseMessage r, int status)
    {
        string text = await r.Content.ReadAsStringAsync();
        Assert.True((int)r.StatusCode == status, $"expected {status}, got {(int)r.StatusCode}: {text}");
        var e = JsonDocument.Parse(text).RootElement.GetProperty("error");
        foreach (var f in new[] { "message", "type", "param", "code" }) Assert.True(e.TryGetProperty(f, out _), f);
        return e.Clone();
    }

    public static void Bearer(HttpClient c, string key) =>
        c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

    /// <summary>The same server on Kestrel at 127.0.0.1 on a free port, started; its base address.</summary>
    public static async Task<(WebApplication App, Uri Base)> Kestrel(ServerOptions options, ModelCatalog models)
    {
        var app = PictorServer.Create(options with { Host = "127.0.0.1", Port = 0 }, models);
        await app.StartAsync();
        return (app, new Uri(app.Urls.First()));
    }
}

/// <summary>The server in memory, built from the same pieces `pictor serve` uses, with the clock replaceable.</summary>
internal sealed class PictorFactory(ServerOptions options, ModelCatalog models, TimeProvider? clock = null)
    : WebApplicationFactory<PictorFactory>   // the entry point: the test assembly's (the server is a library)
{
    protected override IHostBuilder CreateHostBuilder() => Host.CreateDefaultBuilder()
        .ConfigureLogging(l => l.SetMinimumLevel(LogLevel.Warning)).ConfigureWebHostDefaults(web =>
        web.ConfigureServices(s =>
            {
                s.AddRouting().AddPictor(options, models);
                if (clock != null) s.Replace(ServiceDescriptor.Singleton(clock));
            })
            .Configure(app =>
            {
                app.UsePictor();
                app.UseRouting();
                app.UseEndpoints(e => e.MapPictor());
            }));

    protected override void ConfigureWebHost(IWebHostBuilder builder) =>
        builder.UseContentRoot(AppContext.BaseDirectory);
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualClock : TimeProvider
{
    public DateTimeOffset Now { get; set; } = DateTimeOffset.UnixEpoch.AddYears(56);
    public override DateTimeOffset GetUtcNow() => Now;
}
