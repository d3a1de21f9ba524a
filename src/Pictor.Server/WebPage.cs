using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Pictor.Server;

/// <summary>The web page at / and its script and style, served from the assembly's embedded wwwroot (no files beside
/// the server, no CDN).</summary>
internal static class WebPage
{
    private static readonly (string Path, string Resource, string Type)[] Files =
    [
        ("/", "wwwroot/index.html", "text/html; charset=utf-8"),
        ("/app.js", "wwwroot/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "wwwroot/style.css", "text/css; charset=utf-8"),
    ];

    public static void Map(IEndpointRouteBuilder e)
    {
        foreach (var (path, resource, type) in Files)
        {
            byte[] bytes = Read(resource);
            e.MapGet(path, () => Results.Bytes(bytes, type));
        }
    }

    private static byte[] Read(string resource)
    {
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"the server assembly lacks {resource}; rebuild it");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}
