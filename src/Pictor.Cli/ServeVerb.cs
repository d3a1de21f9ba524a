using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Pictor.Server;

namespace Pictor.Cli;

/// <summary>`pictor serve`: the models under --models behind an OpenAI-compatible HTTP API and a web page, until
/// Ctrl+C or SIGTERM (which stop taking work and let running jobs finish).</summary>
internal static class ServeVerb
{
    public static Command Serve()
    {
        var models = CliOptions.Text("--models", "the folder of model directories to serve (each one loaded once)",
            fallback: "models");
        var host = CliOptions.Text("--host", "the address to listen on (loopback unless you say otherwise)",
            fallback: "127.0.0.1");
        var port = CliOptions.Int("--port", "the TCP port", 8080, 0, 65535);
        var workers = CliOptions.Int("--workers", "jobs generating at once (one job already uses every core)", 1, 1,
            64);
        var queue = CliOptions.Int("--queue", "jobs waiting beyond the running ones; the next gets 429", 8, 0, 10_000);
        var key = CliOptions.Text("--api-key", "require 'Authorization: Bearer KEY' on /v1 requests");
        var deadline = CliOptions.Int("--deadline", "seconds a job may take, queueing included (then 503)", 300, 1,
            86_400);
        var c = new Command("serve", "Serve the models over HTTP: OpenAI's Images API (POST /v1/images/generations, "
            + "/v1/images/edits, /v1/images/variations, GET /v1/models), progress events and a web page at /")
        {
            models, host, port, workers, queue, key, deadline,
        };
        c.SetAction(p =>
        {
            var options = new ServerOptions
            {
                Host = p.GetValue(host)!, Port = p.GetValue(port), Workers = p.GetValue(workers),
                Queue = p.GetValue(queue), ApiKey = p.GetValue(key),
                Deadline = TimeSpan.FromSeconds(p.GetValue(deadline)),
            };
            options.Validate();
            var catalog = ModelCatalog.Load(GenerateVerbs.ResolveModel(p.GetValue(models)!), Console.Error.WriteLine);
            using var app = PictorServer.Create(options, catalog);
            app.Start();
            foreach (var url in app.Urls) Console.Error.WriteLine($"serve: listening on {url} (Ctrl+C stops)");
            app.WaitForShutdown();
            Console.Error.WriteLine("serve: stopped");
            return 0;
        });
        return c;
    }
}
