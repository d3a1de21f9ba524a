using Pictor.Cli;
using Pictor.Imaging;

namespace Pictor.Cli.Tests;

/// <summary>The seeing-inside verbs end to end on the shipped models: generate --filmstrip, inspect, explain.</summary>
[Collection("Console")]
public class InsideCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        var (so, se) = (Console.Out, Console.Error);
        Console.SetOut(o); Console.SetError(e);
        try { return (Program.Main(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(so); Console.SetError(se); }
    }

    [Fact]
    public void Filmstrip_ends_with_the_written_image()
    {
        string dir = Directory.CreateTempSubdirectory("pictor-strip").FullName;
        try
        {
            string img = Path.Combine(dir, "face.png"), strip = Path.Combine(dir, "strip.png");
            var r = Run("generate", "grinning face, noto style", "--model", "models/emoji", "--steps", "6",
                "--frames", "3", "--out", img, "--filmstrip", strip);
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains("3 frames, steps 2, 4, 6", r.Out);
            var face = Image.Load(img);
            var s = Image.Load(strip);
            Assert.Equal(3 * face.Width + 4 * 2, s.Width);
            int x0 = 2 + 2 * (face.Width + 2);   // the last frame's left edge
            for (int y = 0; y < face.Height; y++)
                Assert.Equal(face.Rgba.AsSpan(y * face.Width * 4, face.Width * 4).ToArray(),
                    s.Rgba.AsSpan(((y + 2) * s.Width + x0) * 4, face.Width * 4).ToArray());
            r = Run("generate", "x", "--model", "models/emoji-dalle", "--out", img, "--filmstrip", strip);
            Assert.Equal(2, r.Code);
            Assert.Contains("use a diffusion model", r.Err);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Inspect_prints_the_hash_and_explain_writes_its_picture()
    {
        var r = Run("inspect", "models/emoji-dalle");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("pictor-dalle", r.Out);
        Assert.Contains("codebook   512 codes", r.Out);
        Assert.Contains("verified   yes", r.Out);
        string png = Path.Combine(Path.GetTempPath(), $"pictor-explain-{Guid.NewGuid():N}.png");
        try
        {
            r = Run("explain", "a red circle", "--model", "models/shapes", "--steps", "3", "--cell", "16",
                "--out", png);
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains("words a | red | circle; resolutions 16x16, 8x8", r.Out);
            Assert.Equal(44 + 4 * 18 + 2, Image.Load(png).Width);
        }
        finally { File.Delete(png); }
    }
}
