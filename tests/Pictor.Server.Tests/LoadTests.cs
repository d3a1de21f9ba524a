using System.Diagnostics;
using System.Net;
using Xunit.Abstractions;
using static Pictor.Server.Tests.TestServers;

namespace Pictor.Server.Tests;

/// <summary>A bounded load at 4x capacity on a loopback port: a fixed number of requests in a fixed time.</summary>
[Collection("Server")]
public sealed class LoadTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Four_times_capacity_completes_every_accepted_job_and_refuses_the_rest_with_retry_after()
    {
        var options = Options(workers: 1, queue: 1);   // capacity 2: one running, one waiting
        var (app, url) = await Kestrel(options, Tiny());
        await using var _ = app;
        using var client = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(2) };
        long before = Process.GetCurrentProcess().PeakWorkingSet64;
        int concurrent = 4 * (options.Workers + options.Queue), waves = 5, ok = 0, refused = 0;
        var clock = Stopwatch.StartNew();
        for (int w = 0; w < waves; w++)
        {
            var responses = await Task.WhenAll(Enumerable.Range(0, concurrent).Select(i => client.PostAsync(
                "/v1/images/generations", Json(new { prompt = "a small red circle", steps = 30, seed = i }))));
            foreach (var r in responses)
            {
                if (r.StatusCode == HttpStatusCode.OK)
                {
                    ok++;
                    var data = (await ReadJson(r)).GetProperty("data");
                    Assert.Equal(1, data.GetArrayLength());
                    Assert.True(r.Headers.Contains("Server-Timing"));
                }
                else
                {
                    var e = await Error(r, 429);
                    Assert.Equal("rate_limit_exceeded", e.GetProperty("code").GetString());
                    Assert.True(r.Headers.RetryAfter?.Delta?.TotalSeconds >= 1, "429 without Retry-After");
                    refused++;
                }
            }
        }
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), $"the load took {clock.Elapsed}");
        Assert.Equal(concurrent * waves, ok + refused);
        // each wave: at least one in (the whole capacity only when the worker takes the first job before the rest
        // arrive, which a loaded host does not promise: 9 of 10 was seen at load average 10), some refused
        Assert.InRange(ok, waves, concurrent * waves - 1);
        var health = await ReadJson(await client.GetAsync("/health"));
        Assert.Equal((0, 0), (health.GetProperty("running").GetInt32(), health.GetProperty("waiting").GetInt32()));
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        output.WriteLine($"{concurrent * waves} requests at 4x capacity in {clock.Elapsed.TotalSeconds:F1} s: {ok} "
            + $"done, {refused} refused with 429; peak RSS {peak / 1048576} MiB (before {before / 1048576} MiB)");
        Assert.True(peak - before < 1L << 30, $"peak RSS grew by {(peak - before) / 1048576} MiB");
    }
}
