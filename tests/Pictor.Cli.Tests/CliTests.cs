using Pictor.Cli;

namespace Pictor.Cli.Tests;

/// <summary>The verbs end to end through Program.Main: exit codes, outputs and error messages.</summary>
[Collection("Console")]
public class CliTests
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
    public void Unknown_verbs_and_options_are_clear_errors()
    {
        var r = Run("frobnicate");
        Assert.Equal(2, r.Code); Assert.Contains("unknown verb 'frobnicate'", r.Err);
        r = Run("data", "shapes", "--out", "/tmp/x", "--colour", "red");
        Assert.Equal(2, r.Code); Assert.Contains("unknown option '--colour' for 'data shapes'; it takes --out, --count, --seed, --size", r.Err);
        r = Run("data", "shapes", "--count", "5");
        Assert.Equal(2, r.Code); Assert.Contains("'data shapes' needs --out", r.Err);
        r = Run("data", "shapes", "--out", "/tmp/x", "--count", "many");
        Assert.Contains("--count must be a whole number, got 'many'", r.Err);
        r = Run("data", "shapes", "--out", "/tmp/x", "--size", "48");
        Assert.Contains("--size must be 32 or 64, got 48", r.Err);
        Assert.Equal(0, Run("help").Code);
    }

    [Fact]
    public void Shapes_tokenizer_and_image_verbs_work_together()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-cli").FullName;
        var r = Run("data", "shapes", "--out", Path.Combine(dir, "shapes"), "--count", "60", "--seed", "3");
        Assert.Equal(0, r.Code);
        Assert.Contains("wrote 54 train and 6 val images (32x32)", r.Out);
        r = Run("tokenizer", "train", "--data", Path.Combine(dir, "shapes"), "--vocab", "300", "--out", Path.Combine(dir, "tok"));
        Assert.Equal(0, r.Code);
        Assert.True(File.Exists(Path.Combine(dir, "tok", "merges.txt")));
        r = Run("data", "pack", "--data", Path.Combine(dir, "shapes", "train"), "--size", "16", "--out", Path.Combine(dir, "train.bin"));
        Assert.Equal(0, r.Code); Assert.Contains("packed 54 images at 16x16", r.Out);
        using (var ds = Pictor.Imaging.Datasets.PackedDataset.Open(Path.Combine(dir, "train.bin"))) Assert.Equal(54, ds.Count);
        var png = Path.Combine(dir, "shapes", "train", "000000.png");
        r = Run("image", "info", png);
        Assert.Equal(0, r.Code); Assert.Contains("32x32, Rgb, 8-bit", r.Out);
        r = Run("image", "convert", png, Path.Combine(dir, "c.png"));
        Assert.Equal(0, r.Code);
        Assert.Contains("RGBA, 8-bit", r.Out);
        r = Run("image", "info", Path.Combine(dir, "c.png"));
        Assert.Contains("Rgba, 8-bit", r.Out);
        File.WriteAllBytes(Path.Combine(dir, "bad.png"), [1, 2, 3]);
        r = Run("image", "info", Path.Combine(dir, "bad.png"));
        Assert.Equal(2, r.Code); Assert.Contains("not a PNG file", r.Err);
        r = Run("image", "grid", "--out", Path.Combine(dir, "g.png"), "--columns", "2", "--scale", "2", png, png, png);
        Assert.Equal(0, r.Code); Assert.Contains("g.png: 134x134, 3 images", r.Out);
    }
}
