using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Pictor.Server;

/// <summary>
/// Puts the server together: the services (options, models, queue, image store), the middleware (OpenAI-shaped
/// errors, the API key) and the routes. <see cref="Create"/> makes the Kestrel application `pictor serve` runs; tests
/// host the same pieces in memory through <see cref="AddPictor"/>, <see cref="UsePictor"/> and
/// <see cref="MapPictor"/>.
/// </summary>
public static class PictorServer
{
    /// <summary>The Kestrel application on options.Host:options.Port.</summary>
    public static WebApplication Create(ServerOptions options, ModelCatalog models)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(Address(options.Host), options.Port);
            k.Limits.MaxRequestBodySize = Math.Max(Math.Max(options.MaxBodyBytes, options.MaxUploadBytes),
                1024 * 1024);
        });
        builder.Services.AddPictor(options, models);
        var app = builder.Build();
        app.UsePictor();
        app.MapPictor();
        return app;
    }

    /// <summary>The address a host name binds: "localhost" is loopback, "*" or "0.0.0.0" every interface.</summary>
    private static IPAddress Address(string host) => host switch
    {
        "localhost" => IPAddress.Loopback,
        "*" or "0.0.0.0" => IPAddress.Any,
        _ => IPAddress.TryParse(host, out var a) ? a : throw new ArgumentException(
            $"--host must be an IP address (127.0.0.1, 0.0.0.0, ::1) or localhost, got '{host}'"),
    };

    public static IServiceCollection AddPictor(this IServiceCollection services, ServerOptions options,
        ModelCatalog models)
    {
        options.Validate();
        services.AddSingleton(options).AddSingleton(models).AddSingleton(TimeProvider.System)
            .AddSingleton<JobQueue>().AddSingleton<ImageStore>().AddHostedService<Drain>();
        // Running jobs finish on shutdown: the host waits for their requests up to the deadline.
        services.Configure<HostOptions>(h => h.ShutdownTimeout = options.Deadline + TimeSpan.FromSeconds(5));
        return services;
    }

    /// <summary>Errors in OpenAI's shape, then the API key for /v1 (progress streams excepted: their job ids are
    /// unguessable, and a browser's EventSource cannot send a header).</summary>
    public static IApplicationBuilder UsePictor(this IApplicationBuilder app)
    {
        app.Use(async (ctx, next) =>
        {
            try { await next(ctx); }
            catch (ApiError e) when (!ctx.Response.HasStarted) { await e.WriteAsync(ctx.Response); }
            catch (BadHttpRequestException e) when (!ctx.Response.HasStarted && e.StatusCode == 413)
            {
                await new ApiError(413, $"the request body is over the server's limit; {e.Message}",
                    code: "request_too_large").WriteAsync(ctx.Response);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { }
            catch (Exception e) when (!ctx.Response.HasStarted)
            {
                await new ApiError(500, $"internal error ({e.GetType().Name}): {e.Message.ReplaceLineEndings(" ")}; "
                    + "report it with the request that caused it").WriteAsync(ctx.Response);
            }
        });
        app.Use(async (ctx, next) =>
        {
            var key = ctx.RequestServices.GetRequiredService<ServerOptions>().ApiKey;
            var path = ctx.Request.Path;
            bool guarded = path.StartsWithSegments("/v1") && !(path.StartsWithSegments("/v1/jobs")
                && path.Value!.EndsWith("/events", StringComparison.Ordinal));
            if (key != null && guarded && !Authorized(ctx.Request, key))
                throw new ApiError(401, "missing or wrong API key; send the header 'Authorization: Bearer KEY' with "
                    + "the key the server was started with (--api-key)", code: "invalid_api_key");
            await next(ctx);
        });
        return app;
    }

    /// <summary>Compares the bearer token with the key in constant time (both hashed first, so their lengths do
    /// not show either).</summary>
    private static bool Authorized(HttpRequest request, string key)
    {
        string header = request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        string given = header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase) ? header[Bearer.Length..] : "";
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)),
            SHA256.HashData(Encoding.UTF8.GetBytes(key)));
    }

    public static IEndpointRouteBuilder MapPictor(this IEndpointRouteBuilder e)
    {
        e.MapPost("/v1/images/generations", ImagesApi.Generations);
        e.MapPost("/v1/images/edits", ImagesApi.Edits);
        e.MapPost("/v1/images/variations", ImagesApi.Variations);
        e.MapGet("/images/{id}.png", ImagesApi.StoredImage);
        e.MapGet("/v1/models", (ModelCatalog m) => Results.Json(new
        {
            @object = "list", data = m.Models.Select(Describe),
        }));
        e.MapGet("/v1/models/{id}", (string id, ModelCatalog m) => m.Find(id) is { } model
            ? Results.Json(Describe(model))
            : throw new ApiError(404, $"the model '{id}' does not exist; this server has "
                + string.Join(", ", m.Models.Select(x => x.Name)), "model", "model_not_found"));
        e.MapGet("/v1/jobs/{id}/events", Events);
        e.MapGet("/health", (JobQueue q, ModelCatalog m) => Results.Json(new
        {
            status = q.Accepting ? "ok" : "stopping", models = m.Models.Select(x => x.Name), workers = q.Workers,
            running = q.Running, waiting = q.Waiting, capacity = q.Capacity,
            estimated_wait = q.EstimatedWait(),
            seconds_per_step = m.Models.ToDictionary(x => x.Name, x => new
            {
                measured = q.Rate.SecondsPerUnit(x), calibrated = q.Rate.Calibrated(x), finished = q.Rate.Finished(x),
            }),
        }, statusCode: q.Accepting ? 200 : 503));
        WebPage.Map(e);
        e.MapFallback((HttpContext ctx) => throw new ApiError(404, $"no route {ctx.Request.Method} "
            + $"{ctx.Request.Path}; the API has POST /v1/images/generations, /v1/images/edits and "
            + "/v1/images/variations, GET /v1/models, GET /health and GET /v1/jobs/{id}/events", code: "unknown_url"));
        return e;
    }

    private static object Describe(Pipelines.TextToImage m) => new
    {
        id = m.Name, @object = "model", created = 0, owned_by = "pictor", family = m.Family,
        size = $"{m.ImageSize}x{m.ImageSize}", default_sampler = m.DefaultSampler, default_steps = m.DefaultSteps,
        default_guidance = m.DefaultGuidance, reranking = m.Clip != null, edits = Edits(m),
        variations = m.Pipeline is Pipelines.Unclip.UnclipPipeline || Edits(m).Contains("img2img"),
    };

    /// <summary>The edits the model's family runs (POST /v1/images/edits), by their metadata names.</summary>
    private static string[] Edits(Pipelines.TextToImage m)
    {
        try
        {
            var editor = Pipelines.Editing.ImageEditors.For(m.Pipeline);
            return Enum.GetValues<Imaging.Png.EditOperation>().Where(op => editor.Refuse(op, m.Pipeline) == null)
                .Select(Imaging.Png.EditParameters.Name).ToArray();
        }
        catch (ArgumentException) { return []; }
    }

    /// <summary>GET /v1/jobs/{id}/events: the job's progress as server-sent events (queued, started, progress with
    /// step, total and a base64 PNG preview, then done or failed). A job not admitted yet is waited for.</summary>
    private static async Task Events(HttpContext ctx, string id, JobQueue queue, ServerOptions options)
    {
        var abort = ctx.RequestAborted;
        var until = DateTime.UtcNow + options.EventsWait;
        Job? job;
        while ((job = queue.Find(id)) == null && DateTime.UtcNow < until)
            await Task.Delay(50, abort);
        if (job == null)
            throw new ApiError(404, $"no job '{id}' (waited {options.EventsWait.TotalSeconds:0} s); the id comes from "
                + $"the {ImagesApi.JobHeader} header of a generation request", code: "job_not_found");
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        var events = job.Listen();
        try
        {
            await foreach (var ev in events.ReadAllAsync(abort))
            {
                string data = JsonSerializer.Serialize(ev.Data, ImagesApi.Json);
                await ctx.Response.WriteAsync($"event: {ev.Kind}\ndata: {data}\n\n", abort);
                await ctx.Response.Body.FlushAsync(abort);
            }
        }
        finally { job.Unlisten(events); }
    }

    /// <summary>On shutdown, stops taking work at once (new requests get 503) and cancels waiting jobs; running jobs
    /// finish while the host waits for their requests.</summary>
    private sealed class Drain(IHostApplicationLifetime lifetime, JobQueue queue) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            lifetime.ApplicationStopping.Register(queue.StopAccepting);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
