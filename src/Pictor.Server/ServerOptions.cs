namespace Pictor.Server;

/// <summary>
/// How the server runs and what it accepts: every limit a request can hit, each named in the error it gets. Defaults
/// fit one 2-core machine: one worker (a job already uses every core) and a short queue.
/// </summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind; loopback unless the operator says otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (tests).</summary>
    public int Port { get; init; } = 8080;
    /// <summary>Jobs generating at once.</summary>
    public int Workers { get; init; } = 1;
    /// <summary>Jobs waiting beyond the running ones; one more gets 429.</summary>
    public int Queue { get; init; } = 8;
    /// <summary>When set, /v1 requests need "Authorization: Bearer ApiKey".</summary>
    public string? ApiKey { get; init; }
    /// <summary>A job's time from admission to its last image, queueing included; past it the job is cancelled
    /// (503).</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>How long a "url" response's PNG stays downloadable.</summary>
    public TimeSpan UrlLifetime { get; init; } = TimeSpan.FromHours(1);
    /// <summary>The most PNGs kept for "url" responses; the oldest go first.</summary>
    public int MaxStoredImages { get; init; } = 1000;
    /// <summary>Characters in a prompt or negative prompt (OpenAI's dall-e-2 limit is 1000).</summary>
    public int MaxPromptChars { get; init; } = 1000;
    /// <summary>Images per request (n).</summary>
    public int MaxImages { get; init; } = 8;
    /// <summary>Denoising steps per request.</summary>
    public int MaxSteps { get; init; } = 250;
    /// <summary>Bytes in a request body (413 past it).</summary>
    public int MaxBodyBytes { get; init; } = 64 * 1024;
    /// <summary>Bytes in an edits or variations body, image, mask and fields together (413 past it; OpenAI's
    /// dall-e-2 edits take a PNG under 4 MB).</summary>
    public int MaxUploadBytes { get; init; } = 4 * 1024 * 1024;
    /// <summary>Pixels a side of an uploaded image or mask (413 past it), read from its header before it is
    /// decoded.</summary>
    public int MaxImageSide { get; init; } = 1024;
    /// <summary>How long a progress stream waits for a job id it does not know yet (the page opens the stream before
    /// it posts the request).</summary>
    public TimeSpan EventsWait { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Checks the values once, where they enter; each error names the option and what it takes.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new ArgumentException(message);
        }
        Check(Port is >= 0 and <= 65535, $"--port must be 0 to 65535, got {Port}");
        Check(Workers >= 1, $"--workers must be 1 or more, got {Workers}");
        Check(Queue >= 0, $"--queue must be 0 or more, got {Queue}");
        Check(ApiKey == null || ApiKey.Length >= 8, "--api-key must have at least 8 characters; use a random one");
        Check(Deadline > TimeSpan.Zero, $"the deadline must be positive, got {Deadline}");
        Check(MaxImages is >= 1 and <= Pipelines.GenerationRequest.MaxCount,
            $"the image limit must be 1 to {Pipelines.GenerationRequest.MaxCount}, got {MaxImages}");
    }
}
