using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Pictor.Server;

/// <summary>
/// The PNGs of "url" responses, each under an unguessable id for <see cref="ServerOptions.UrlLifetime"/>, at most
/// <see cref="ServerOptions.MaxStoredImages"/> of them (the oldest are dropped first): a bounded time and a bounded
/// memory, as OpenAI's URLs expire.
/// </summary>
public sealed class ImageStore(ServerOptions options, TimeProvider clock)
{
    private readonly ConcurrentDictionary<string, (byte[] Png, DateTimeOffset Expires)> images =
        new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> order = new();

    public int Count => images.Count;

    /// <summary>Keeps <paramref name="png"/>; returns its id (32 hex digits).</summary>
    public string Add(byte[] png)
    {
        Prune();
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        images[id] = (png, clock.GetUtcNow() + options.UrlLifetime);
        order.Enqueue(id);
        while (images.Count > options.MaxStoredImages && order.TryDequeue(out var oldest))
            images.TryRemove(oldest, out _);
        return id;
    }

    /// <summary>The PNG for <paramref name="id"/>, or null when it is unknown or has expired.</summary>
    public byte[]? Get(string id)
    {
        if (!images.TryGetValue(id, out var e)) return null;
        if (e.Expires > clock.GetUtcNow()) return e.Png;
        images.TryRemove(id, out _);
        return null;
    }

    private void Prune()
    {
        var now = clock.GetUtcNow();
        while (order.TryPeek(out var id) && (!images.TryGetValue(id, out var e) || e.Expires <= now))
        {
            order.TryDequeue(out _);
            images.TryRemove(id, out _);
        }
    }
}
