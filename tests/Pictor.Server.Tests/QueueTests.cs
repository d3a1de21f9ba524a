using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Pictor.Imaging;
using static Pictor.Server.Tests.TestServers;

namespace Pictor.Server.Tests;

/// <summary>Bounded work: the queue's 429, cancellation by disconnect, deadline and shutdown; progress
/// events.</summary>
[Collection("Server")]
public sealed class QueueTests
{
    private const int Long = 1000;   // steps (the schedule's most), with LongN images: a job that surely is still
    private const int LongN = 64;    // running when the test looks (about a minute here); tests cancel it

    /// <summary>Reads a job's server-sent events until <paramref name="until"/> says stop (or the stream
    /// ends).</summary>
    private static async Task<List<(string Kind, JsonElement Data)>> ReadEvents(HttpClient client, string job,
        Func<string, bool> until, CancellationToken cancel = default)
    {
        var events = new List<(string, JsonElement)>();
        using var r = await client.GetAsync($"/v1/jobs/{job}/events", HttpCompletionOption.ResponseHeadersRead, cancel);
        Assert.Equal("text/event-stream", r.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await r.Content.ReadAsStreamAsync(cancel));
        string? kind = null;
        while (await reader.ReadLineAsync(cancel) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) kind = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add((kind!, JsonDocument.Parse(line[6..]).RootElement.Clone()));
                if (until(kind!)) break;
            }
        }
        return events;
    }

    private static HttpRequestMessage Post(object body, string? job = null)
    {
        var m = new HttpRequestMessage(HttpMethod.Post, "/v1/images/generations") { Content = Json(body) };
        if (job != null) m.Headers.Add("X-Pictor-Job-Id", job);
        return m;
    }

    private static async Task WaitIdle(HttpClient client)
    {
        var clock = Stopwatch.StartNew();
        while ((await ReadJson(await client.GetAsync("/health"))).GetProperty("running").GetInt32() > 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "the job did not stop");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Progress_events_carry_step_total_and_a_png_preview_then_done()
    {
        using var factory = new PictorFactory(Options(), Tiny());
        using var client = factory.CreateClient();
        string job = Guid.NewGuid().ToString();
        // The stream is opened first, as the page does: the server waits for the job id to be admitted.
        var events = ReadEvents(client, job, k => k is "done" or "failed");
        var r = await client.SendAsync(Post(new { prompt = "a small red circle", steps = 40 }, job));
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        Assert.Equal(job, r.Headers.GetValues("X-Pictor-Job-Id").Single());
        var seen = await events.WaitAsync(TimeSpan.FromSeconds(30));
        var progress = seen.Where(e => e.Kind == "progress").ToList();
        Assert.NotEmpty(progress);
        Assert.All(progress, p => Assert.Equal(40, p.Data.GetProperty("total").GetInt32()));
        Assert.Equal(40, progress[^1].Data.GetProperty("step").GetInt32());
        var withPreview = progress.Where(p => p.Data.TryGetProperty("preview", out _)).ToList();
        Assert.InRange(withPreview.Count, 10, 21);   // about 20 previews a job, not one per step
        var preview = Image.Load(Convert.FromBase64String(withPreview[^1].Data.GetProperty("preview").GetString()!));
        Assert.Equal(16, preview.Width);
        Assert.Equal("done", seen[^1].Kind);
        // A job id in use is refused; an id that never comes is a 404 after the wait.
        await Error(await client.SendAsync(Post(new { prompt = "x", steps = 1 }, job)), 400);
        using var quick = new PictorFactory(Options() with { EventsWait = TimeSpan.FromMilliseconds(100) }, Tiny());
        await Error(await quick.CreateClient().GetAsync("/v1/jobs/0123456789abcdef/events"), 404);
    }

    [Fact]
    public async Task A_full_queue_answers_429_at_once_with_a_retry_after_from_the_measured_rate()
    {
        using var factory = new PictorFactory(Options(workers: 1, queue: 1), Tiny());
        using var client = factory.CreateClient();
        // Measure: one short job, so the estimate rests on a measured rate.
        Assert.True((await client.SendAsync(Post(new { prompt = "x", steps = 20 }))).IsSuccessStatusCode);
        using var cancel = new CancellationTokenSource();
        string a = Guid.NewGuid().ToString(), b = Guid.NewGuid().ToString();
        var started = ReadEvents(client, a, k => k is "started" or "progress");
        var running = client.SendAsync(Post(new { prompt = "x", n = LongN, steps = Long }, a), cancel.Token);
        await started.WaitAsync(TimeSpan.FromSeconds(30));
        var queued = client.SendAsync(Post(new { prompt = "x", n = LongN, steps = Long }, b), cancel.Token);
        await ReadEvents(client, b, k => k == "queued").WaitAsync(TimeSpan.FromSeconds(30));
        var clock = Stopwatch.StartNew();
        var r = await client.SendAsync(Post(new { prompt = "x", steps = 10 }));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"429 took {clock.Elapsed}");
        var e = await Error(r, 429);
        Assert.Equal("rate_limit_exceeded", e.GetProperty("code").GetString());
        int retry = int.Parse(r.Headers.GetValues("Retry-After").Single(), CultureInfo.InvariantCulture);
        // Two jobs of 50,000 steps ahead at the measured seconds per step: far more than a constant's second or two.
        Assert.True(retry > 10, $"Retry-After {retry}");
        Assert.Contains($"retry after {retry} s", e.GetProperty("message").GetString());
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        await WaitIdle(client);
    }

    [Fact]
    public async Task The_rate_is_calibrated_at_start_and_measured_by_finished_jobs()
    {
        using var factory = new PictorFactory(Options(), Tiny());
        using var client = factory.CreateClient();
        var rate = (await ReadJson(await client.GetAsync("/health"))).GetProperty("seconds_per_step")
            .GetProperty("tiny");
        double calibrated = rate.GetProperty("calibrated").GetDouble();
        Assert.Equal(0, rate.GetProperty("finished").GetInt32());
        Assert.Equal(calibrated, rate.GetProperty("measured").GetDouble());
        Assert.InRange(calibrated, 1e-5, 1.0);   // a tiny model's step, timed: not a guessed second
        Assert.True((await client.SendAsync(Post(new { prompt = "x", steps = 100 }))).IsSuccessStatusCode);
        rate = (await ReadJson(await client.GetAsync("/health"))).GetProperty("seconds_per_step").GetProperty("tiny");
        Assert.Equal(1, rate.GetProperty("finished").GetInt32());
        // The one-step calibration predicts a one-image job's steps within a small factor.
        double measured = rate.GetProperty("measured").GetDouble();
        Assert.InRange(calibrated / measured, 0.2, 5);
    }

    [Fact]
    public async Task Retry_after_before_any_job_has_finished_follows_the_running_jobs_measured_pace()
    {
        using var factory = new PictorFactory(Options(workers: 1, queue: 0), Tiny());
        using var client = factory.CreateClient();
        string job = Guid.NewGuid().ToString();
        const int Steps = 400;
        var progressed = ReadEvents(client, job, k => k == "progress");
        var running = client.SendAsync(Post(new { prompt = "x", n = 24, steps = Steps }, job));
        await progressed.WaitAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(1500);   // a share of the job done: its pace is measured
        var clock = Stopwatch.StartNew();
        var r = await client.SendAsync(Post(new { prompt = "x", steps = 10 }));
        await Error(r, 429);
        int retry = int.Parse(r.Headers.GetValues("Retry-After").Single(), CultureInfo.InvariantCulture);
        var done = await running.WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(done.IsSuccessStatusCode);
        double actual = clock.Elapsed.TotalSeconds;
        Assert.True(retry >= actual / 3 && retry <= 3 * actual + 1,
            $"Retry-After {retry} s, the running job finished {actual:0.0} s later");
    }

    [Fact]
    public async Task Two_workers_run_two_jobs_of_one_model_at_once_with_the_librarys_images()
    {
        var models = Tiny();
        using var factory = new PictorFactory(Options(workers: 2, queue: 0), models);
        using var client = factory.CreateClient();
        string a = Guid.NewGuid().ToString(), b = Guid.NewGuid().ToString();
        var eventsA = ReadEvents(client, a, k => k is "done" or "failed");
        var eventsB = ReadEvents(client, b, k => k is "done" or "failed");
        var bodyA = new { prompt = "a small red circle", n = 3, steps = 150, seed = 11 };
        var bodyB = new { prompt = "two blue squares", n = 2, steps = 150, seed = 40, sampler = "ddim" };
        var ra = client.SendAsync(Post(bodyA, a));
        var rb = client.SendAsync(Post(bodyB, b));
        int most = 0;   // both ran at once: /health counts two running
        while (!(ra.IsCompleted && rb.IsCompleted) && most < 2)
            most = Math.Max(most, (await ReadJson(await client.GetAsync("/health"))).GetProperty("running").GetInt32());
        Assert.Equal(2, most);
        var pngsA = await Pngs(await ra);
        var pngsB = await Pngs(await rb);
        var seenA = await eventsA.WaitAsync(TimeSpan.FromSeconds(30));
        var seenB = await eventsB.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(("done", "done"), (seenA[^1].Kind, seenB[^1].Kind));
        var model = models.Default;
        var libA = model.Generate(new Pipelines.GenerationRequest(bodyA.prompt) { Count = 3, Steps = 150, Seed = 11 });
        var libB = model.Generate(new Pipelines.GenerationRequest(bodyB.prompt)
        {
            Count = 2, Steps = 150, Seed = 40, Sampler = "ddim",
        });
        for (int i = 0; i < 3; i++) Assert.Equal(libA.Images[i].Image.Rgba, Image.Load(pngsA[i]).Rgba);
        for (int i = 0; i < 2; i++) Assert.Equal(libB.Images[i].Image.Rgba, Image.Load(pngsB[i]).Rgba);
    }

    [Fact]
    public async Task A_client_that_disconnects_cancels_its_job_within_a_step()
    {
        using var factory = new PictorFactory(Options(), Tiny());
        using var client = factory.CreateClient();
        string job = Guid.NewGuid().ToString();
        using var cancel = new CancellationTokenSource();
        var progress = ReadEvents(client, job, k => k == "progress");
        var request = client.SendAsync(Post(new { prompt = "x", n = LongN, steps = Long }, job), cancel.Token);
        await progress.WaitAsync(TimeSpan.FromSeconds(30));
        var tail = ReadEvents(client, job, k => k is "done" or "failed");
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        var clock = Stopwatch.StartNew();
        await WaitIdle(client);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the job ran on for {clock.Elapsed}");
        var seen = await tail.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("failed", seen[^1].Kind);
        Assert.Contains("client disconnected", seen[^1].Data.GetProperty("message").GetString());
        Assert.True(seen.Last(e => e.Kind == "progress").Data.GetProperty("step").GetInt32() < Long);
    }

    [Fact]
    public async Task A_job_past_its_deadline_is_a_503_that_says_so()
    {
        using var factory = new PictorFactory(Options() with { Deadline = TimeSpan.FromMilliseconds(500) }, Tiny());
        using var client = factory.CreateClient();
        var e = await Error(await client.SendAsync(Post(new { prompt = "x", n = LongN, steps = Long })), 503);
        Assert.Equal("deadline_exceeded", e.GetProperty("code").GetString());
        Assert.Contains("deadline of 0.5 s", e.GetProperty("message").GetString());
        await WaitIdle(client);
    }

    [Fact]
    public async Task Stopping_refuses_new_work_and_lets_the_running_job_finish()
    {
        var (app, url) = await Kestrel(Options(workers: 1, queue: 2), Tiny());
        using var client = new HttpClient { BaseAddress = url };
        string job = Guid.NewGuid().ToString();
        var started = ReadEvents(client, job, k => k is "started" or "progress");
        var running = client.SendAsync(Post(new { prompt = "x", steps = 300 }, job));
        await started.WaitAsync(TimeSpan.FromSeconds(30));
        var stopping = app.StopAsync();
        var r = await running.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync("/health"));
        await app.DisposeAsync();
    }

    [Fact]
    public async Task The_catalog_loads_every_model_directory_once_and_skips_other_folders()
    {
        string dir = Directory.CreateTempSubdirectory("pictor-serve-").FullName;
        try
        {
            TinyPipeline().Save(Path.Combine(dir, "tiny-a"));
            TinyPipeline(2).Save(Path.Combine(dir, "tiny-b"));
            Directory.CreateDirectory(Path.Combine(dir, "notes"));
            var lines = new List<string>();
            var catalog = ModelCatalog.Load(dir, lines.Add);
            Assert.Equal(["tiny-a", "tiny-b"], catalog.Models.Select(m => m.Name));
            Assert.Equal("tiny-a", catalog.Default.Name);
            Assert.Contains("loaded tiny-a: diffusion, 16x16", lines);
            using var factory = new PictorFactory(Options(), catalog);
            var r = await factory.CreateClient().PostAsync("/v1/images/generations",
                Json(new { prompt = "x", model = "tiny-b", steps = 2 }));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Contains("Model: tiny-b", System.Text.Encoding.Latin1.GetString(Convert.FromBase64String(
                (await ReadJson(r)).GetProperty("data")[0].GetProperty("b64_json").GetString()!)));
            Assert.Contains("no text-to-image model to serve", Assert.Throws<ArgumentException>(
                () => ModelCatalog.Load(Path.Combine(dir, "notes"))).Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
