using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Pictor.Server;

/// <summary>
/// An error in OpenAI's shape, {"error": {"message", "type", "param", "code"}}, with its HTTP status. Handlers throw
/// it; one middleware writes it. Messages say what was wrong and how to fix it.
/// </summary>
public sealed class ApiError(int status, string message, string? param = null, string? code = null,
    string? type = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    /// <summary>OpenAI's types: invalid_request_error (4xx from the request), server_error (5xx).</summary>
    public string Type { get; } = type ?? (status >= 500 ? "server_error" : "invalid_request_error");
    /// <summary>Seconds for a Retry-After header (429, 503 while busy).</summary>
    public int? RetryAfter { get; init; }

    public static ApiError BadRequest(string message, string? param = null, string? code = null) =>
        new(StatusCodes.Status400BadRequest, message, param, code);

    /// <summary>Writes the error as the response (status, Retry-After, JSON body).</summary>
    public async Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        if (RetryAfter is { } s) response.Headers.RetryAfter = s.ToString(CultureInfo.InvariantCulture);
        response.ContentType = "application/json";
        var body = new { error = new { message = Message, type = Type, param = Param, code = Code } };
        await response.WriteAsync(JsonSerializer.Serialize(body), response.HttpContext.RequestAborted);
    }
}
