using System.Text;
using Pictor.Imaging;
using static Pictor.Server.Tests.TestServers;

namespace Pictor.Server.Tests;

/// <summary>Every route, error and limit of the API, in memory on the tiny model.</summary>
[Collection("Server")]
public sealed class ApiTests : IDisposable
{
    private readonly ManualClock clock = new();
    private readonly PictorFactory factory;
    private readonly HttpClient client;

    public ApiTests()
    {
        factory = new PictorFactory(Options() with { UrlLifetime = TimeSpan.FromMinutes(10), MaxBodyBytes = 4096 },
            Tiny(), clock);
        client = factory.CreateClient();
    }

    public void Dispose()
    {
        client.Dispose();
        factory.Dispose();
    }

    [Fact]
    public async Task Generation_returns_b64_pngs_with_metadata_and_a_job_id()
    {
        var r = await client.PostAsync("/v1/images/generations",
            Json(new { prompt = "a small red circle", n = 2, size = "16x16", steps = 3, seed = 7 }));
        var body = await ReadJson(r);
        Assert.True(r.IsSuccessStatusCode, body.ToString());
        Assert.Matches("^[0-9a-f]{32}$", r.Headers.GetValues("X-Pictor-Job-Id").Single());
        Assert.True(body.GetProperty("created").GetInt64() > 1_700_000_000);
        var data = body.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        for (int i = 0; i < 2; i++)
        {
            byte[] png = Convert.FromBase64String(data[i].GetProperty("b64_json").GetString()!);
            var img = Image.Load(png);
            Assert.Equal((16, 16), (img.Width, img.Height));
            string text = Encoding.Latin1.GetString(png);
            Assert.Contains("parameters", text);   // the A1111 chunk `pictor verify` reads
            Assert.Contains($"Seed: {7 + i}", text);
            Assert.Equal((ulong)(7 + i), data[i].GetProperty("seed").GetUInt64());
        }
        // Same request, same seed: the same bytes (the metadata says how to regenerate them).
        var again = await ReadJson(await client.PostAsync("/v1/images/generations",
            Json(new { prompt = "a small red circle", n = 2, steps = 3, seed = 7 })));
        Assert.Equal(data[1].GetProperty("b64_json").GetString(),
            again.GetProperty("data")[1].GetProperty("b64_json").GetString());
    }

    [Fact]
    public async Task Url_responses_serve_the_png_for_a_bounded_time()
    {
        var body = await ReadJson(await client.PostAsync("/v1/images/generations",
            Json(new { prompt = "two blue squares", response_format = "url", steps = 2 })));
        var url = new Uri(body.GetProperty("data")[0].GetProperty("url").GetString()!);
        Assert.False(body.GetProperty("data")[0].TryGetProperty("b64_json", out _));
        var png = await client.GetAsync(url.PathAndQuery);
        Assert.Equal("image/png", png.Content.Headers.ContentType?.MediaType);
        Assert.Equal(16, Image.Load(await png.Content.ReadAsByteArrayAsync()).Width);
        clock.Now += TimeSpan.FromMinutes(11);
        var e = await Error(await client.GetAsync(url.PathAndQuery), 404);
        Assert.Contains("expired", e.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("{\"prompt\": \"x\", \"size\": \"1024x1024\"}", "size", "it draws 16x16 images only")]
    [InlineData("{\"prompt\": \"x\", \"n\": 65}", "n", "between 1 and 64 (this server's limit")]
    [InlineData("{\"prompt\": \"x\", \"steps\": 1001}", "steps", "between 1 and 1000 (this server")]
    [InlineData("{\"prompt\": \"x\", \"steps\": \"ten\"}", "steps", "steps must be a whole number, got \"ten\"")]
    [InlineData("{\"prompt\": \"x\", \"step\": 3}", "step", "unknown field 'step'")]
    [InlineData("{\"n\": 1}", "prompt", "the prompt is missing")]
    [InlineData("{\"prompt\": \"x\", \"response_format\": \"jpeg\"}", "response_format", "\"b64_json\" or \"url\"")]
    [InlineData("{\"prompt\": \"x\", \"sampler\": \"plms\"}", null, "unknown sampler 'plms'")]
    [InlineData("{\"prompt\": \"x\", \"guidance\": 99}", null, "guidance (--cfg) must be between 0 and 50")]
    [InlineData("{\"prompt\": \"x\", \"candidates\": 4}", null, "reranking (candidates) needs a CLIP model")]
    [InlineData("[1, 2]", null, "not an object")]
    [InlineData("{\"prompt\": ", null, "not valid JSON")]
    public async Task Bad_requests_are_400s_that_name_the_field_and_the_fix(string body, string? param,
        string message)
    {
        var r = await client.PostAsync("/v1/images/generations", new StringContent(body, Encoding.UTF8,
            "application/json"));
        var e = await Error(r, 400);
        Assert.Contains(message, e.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", e.GetProperty("type").GetString());
        if (param != null) Assert.Equal(param, e.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Limits_on_prompt_length_body_size_and_tokens_name_the_limit()
    {
        var e = await Error(await client.PostAsync("/v1/images/generations",
            Json(new { prompt = new string('a', 1001) })), 400);
        Assert.Contains("prompt has 1001 characters; this server's limit is 1000",
            e.GetProperty("message").GetString());
        e = await Error(await client.PostAsync("/v1/images/generations",
            Json(new { prompt = "x", negative_prompt = new string('b', 5000) })), 413);
        Assert.Contains("over this server's limit of 4096 bytes", e.GetProperty("message").GetString());
        // The model's own text context: the library's one-line message, as a 400.
        e = await Error(await client.PostAsync("/v1/images/generations",
            Json(new { prompt = string.Join(" ", Enumerable.Repeat("circle", 40)) })), 400);
        Assert.Contains("shorten it or pass --truncate (Truncate = true; over HTTP \"truncate\": true)",
            e.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Unknown_model_route_and_image_are_404s()
    {
        var e = await Error(await client.PostAsync("/v1/images/generations",
            Json(new { prompt = "x", model = "dall-e-3" })), 404);
        Assert.Equal("model_not_found", e.GetProperty("code").GetString());
        Assert.Contains("this server has tiny", e.GetProperty("message").GetString());
        await Error(await client.GetAsync("/v1/models/dall-e-3"), 404);
        await Error(await client.GetAsync("/v1/nothing"), 404);
        await Error(await client.GetAsync("/images/0123.png"), 404);
    }

    [Fact]
    public async Task Png_bytes_in_memory_are_the_bytes_save_writes()
    {
        var body = await ReadJson(await client.PostAsync("/v1/images/generations",
            Json(new { prompt = "a small red circle", steps = 2, seed = 3 })));
        Assert.True(body.TryGetProperty("data", out _), body.ToString());
        byte[] png = Convert.FromBase64String(body.GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        var text = new Dictionary<string, string> { ["parameters"] = "x", ["pictor"] = "{}" };
        string path = Path.GetTempFileName();
        try
        {
            foreach (var img in new[] { Image.Load(png), Image.Solid(3, 2, 1, 2, 3, 128) })
            {
                img.Save(path, text);
                Assert.Equal(File.ReadAllBytes(path), img.ToPng(text));
            }
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public async Task Models_health_and_the_web_page()
    {
        var models = await ReadJson(await client.GetAsync("/v1/models"));
        Assert.Equal("list", models.GetProperty("object").GetString());
        var m = models.GetProperty("data")[0];
        string? Field(string name) => m.GetProperty(name).GetString();
        Assert.Equal(("tiny", "model", "16x16", "diffusion"), (Field("id"), Field("object"), Field("size"),
            Field("family")));
        Assert.Equal("tiny", (await ReadJson(await client.GetAsync("/v1/models/tiny"))).GetProperty("id").GetString());
        var health = await ReadJson(await client.GetAsync("/health"));
        Assert.Equal("ok", health.GetProperty("status").GetString());
        Assert.Equal(3, health.GetProperty("capacity").GetInt32());
        var page = await client.GetAsync("/");
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        string html = await page.Content.ReadAsStringAsync();
        Assert.Contains("Generate", html);
        Assert.DoesNotContain("http", html.Replace("http-equiv", ""));   // nothing from outside the server
        Assert.Contains("EventSource", await client.GetStringAsync("/app.js"));
        Assert.Contains("#gallery", await client.GetStringAsync("/style.css"));
    }
}

/// <summary>--api-key: /v1 needs the bearer token; the page, health and progress streams do not.</summary>
[Collection("Server")]
public sealed class ApiKeyTests
{
    [Fact]
    public async Task Requests_without_the_key_get_401_and_with_it_work()
    {
        using var factory = new PictorFactory(Options() with { ApiKey = "s3cret-key" }, Tiny());
        using var client = factory.CreateClient();
        var e = await Error(await client.GetAsync("/v1/models"), 401);
        Assert.Equal("invalid_api_key", e.GetProperty("code").GetString());
        Bearer(client, "s3cret-kez");
        await Error(await client.PostAsync("/v1/images/generations", Json(new { prompt = "x" })), 401);
        Bearer(client, "s3cret-key");
        Assert.True((await client.GetAsync("/v1/models")).IsSuccessStatusCode);
        using var anonymous = factory.CreateClient();
        Assert.True((await anonymous.GetAsync("/health")).IsSuccessStatusCode);
        Assert.True((await anonymous.GetAsync("/")).IsSuccessStatusCode);
    }

    [Fact]
    public void Options_are_checked_where_they_enter()
    {
        Assert.Contains("--api-key must have at least 8", Assert.Throws<ArgumentException>(
            () => new ServerOptions { ApiKey = "short" }.Validate()).Message);
        Assert.Contains("--workers must be 1 or more", Assert.Throws<ArgumentException>(
            () => new ServerOptions { Workers = 0 }.Validate()).Message);
        Assert.Contains("--host must be an IP address", Assert.Throws<ArgumentException>(
            () => PictorServer.Create(new ServerOptions { Host = "example" }, Tiny())).Message);
    }
}
