using Pictor.Cli;

namespace Pictor.Cli.Tests;

/// <summary>pictor edit / inpaint -> verify on the shipped shapes model: IDENTICAL with the right inputs, a one-line
/// error without them or with others.</summary>
[Collection("Console")]
public class EditCliTests
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
    public void Edit_and_inpaint_round_trip_through_verify()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-cli-edit").FullName;
        string src = Path.Combine(dir, "src.png"), mask = Path.Combine(dir, "mask.png");
        string ed = Path.Combine(dir, "ed.png"), inp = Path.Combine(dir, "inp.png");
        var r = Run("generate", "a red square left of a blue circle", "--model", "models/shapes", "--steps", "4",
            "--out", src);
        Assert.True(r.Code == 0, r.Err);
        var m = Imaging.Image.Solid(32, 32, 0, 0, 0);
        for (int y = 8; y < 24; y++)
            for (int x = 16; x < 32; x++) { int i = 4 * (y * 32 + x); m.Rgba[i] = m.Rgba[i + 1] = m.Rgba[i + 2] = 255; }
        m.Save(mask);

        r = Run("edit", src, "--prompt", "a red square left of a green circle", "--strength", "0.5", "--model",
            "models/shapes", "--steps", "4", "--seed", "2", "--out", ed);
        Assert.True(r.Code == 0, r.Err);
        r = Run("verify", ed, "--source", src);
        Assert.True(r.Code == 0, r.Out + r.Err); Assert.Contains("IDENTICAL", r.Out);
        r = Run("verify", ed);
        Assert.Equal(2, r.Code); Assert.Contains("pass the source it was made from with --source", r.Err);

        r = Run("inpaint", src, "--mask", mask, "--prompt", "a red square left of a green triangle", "--model",
            "models/shapes", "--steps", "3", "--resample", "1", "--sampler", "ddpm", "--out", inp);
        Assert.True(r.Code == 0, r.Err);
        r = Run("verify", inp, "--source", src, "--mask", mask);
        Assert.True(r.Code == 0, r.Out + r.Err); Assert.Contains("IDENTICAL", r.Out);
        r = Run("verify", inp, "--source", ed, "--mask", mask);
        Assert.Equal(2, r.Code); Assert.Contains("pass the source image it was made from", r.Err);
        r = Run("verify", src, "--source", src);
        Assert.Equal(2, r.Code); Assert.Contains("is a plain generation, not an edit", r.Err);

        r = Run("edit", src, "--prompt", "x", "--strength", "0", "--model", "models/shapes", "--out", ed);
        Assert.Equal(2, r.Code); Assert.Contains("strength must be in (0, 1]", r.Err);
        Imaging.Image.Solid(48, 48, 0, 0, 0).Save(mask);
        r = Run("inpaint", src, "--mask", mask, "--prompt", "x", "--model", "models/shapes", "--out", inp);
        Assert.Equal(2, r.Code);
        Assert.Contains("the mask is 48x48 but the model makes 32x32; resize it, or pass --resize", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
        r = Run("eval", "edits", "--model", "models/shapes", "--plot", "strength.svg");
        Assert.Equal(2, r.Code); Assert.Contains("--plot must name a .png file, got 'strength.svg'", r.Err);
    }
}
