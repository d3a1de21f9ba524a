using System.ClientModel;
using System.ClientModel.Primitives;
using OpenAI;
using OpenAI.Images;
using static Pictor.Server.Tests.TestServers;

namespace Pictor.Server.Tests;

/// <summary>OpenAI's own .NET library, unchanged, pointed at the server on a loopback port by base URL.</summary>
[Collection("Server")]
public sealed class OpenAiClientTests
{
    private static ImageClient Client(Uri server) => new("tiny", new ApiKeyCredential("client-key-123"),
        new OpenAIClientOptions
        {
            Endpoint = new Uri(server, "/v1"),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),   // it retries a 429 by default; this test reads it
        });

    [Fact]
    public async Task The_openai_library_generates_an_image_and_reads_a_429()
    {
        var (app, url) = await Kestrel(Options(workers: 1, queue: 0) with { ApiKey = "client-key-123" }, Tiny());
        await using var _ = app;
        var client = Client(url);
        GeneratedImage image = await client.GenerateImageAsync("a small red circle", new ImageGenerationOptions
        {
            ResponseFormat = GeneratedImageFormat.Bytes, Size = new GeneratedImageSize(16, 16),
        });
        var png = Imaging.Image.Load(image.ImageBytes.ToArray());
        Assert.Equal((16, 16), (png.Width, png.Height));
        var byUrl = await client.GenerateImageAsync("two blue squares",
            new ImageGenerationOptions { ResponseFormat = GeneratedImageFormat.Uri });
        using var http = new HttpClient();
        Assert.Equal(16, Imaging.Image.Load(await http.GetByteArrayAsync(byUrl.Value.ImageUri)).Width);

        // A job holds the only worker (no queue): the library's next call gets 429 with Retry-After.
        using var busy = new HttpClient { BaseAddress = url };
        Bearer(busy, "client-key-123");
        using var cancel = new CancellationTokenSource();
        var running = busy.PostAsync("/v1/images/generations", Json(new { prompt = "x", n = 64, steps = 1000 }),
            cancel.Token);
        await WaitRunning(busy);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.GenerateImageAsync("x"));
        Assert.Equal(429, e.Status);
        var raw = e.GetRawResponse()!;
        Assert.True(raw.Headers.TryGetValue("Retry-After", out var retry) && int.Parse(retry!,
            System.Globalization.CultureInfo.InvariantCulture) >= 1, $"Retry-After {retry}");
        Assert.Contains("the server is busy", e.Message);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    private static async Task WaitRunning(HttpClient c)
    {
        for (int i = 0; i < 1000; i++)
        {
            if ((await ReadJson(await c.GetAsync("/health"))).GetProperty("running").GetInt32() > 0) return;
            await Task.Delay(20);
        }
        Assert.Fail("the job never started");
    }
}
