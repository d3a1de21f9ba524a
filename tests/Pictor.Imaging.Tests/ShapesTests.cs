using System.Text.Json;
using System.Text.RegularExpressions;
using Pictor.Engine;
using Pictor.Imaging.Datasets;

namespace Pictor.Imaging.Tests;

public class ShapesTests
{
    private const string Colour = "(red|green|blue|yellow|purple|orange|cyan|white)";
    private const string ShapeRe = "(circle|square|triangle)";
    private static readonly Regex Grammar = new(
        $"^(a (small|large) {Colour} {ShapeRe}( on the left| on the right| at the top| at the bottom)?" +
        $"|a {Colour} {ShapeRe} (left of|right of|above|below) a {Colour} {ShapeRe}" +
        $"|(two|three) {Colour} {ShapeRe}s)$");

    [Fact]
    public void Captions_follow_the_grammar_and_ground_truth_agrees()
    {
        var rng = new Rng(3);
        var kinds = new HashSet<SceneKind>();
        for (int i = 0; i < 600; i++)
        {
            var s = Shapes.Generate(rng, 32, heldOut: null);
            kinds.Add(s.Kind);
            Assert.Matches(Grammar, s.Caption);
            foreach (var o in s.Objects)
            {
                Assert.InRange(o.Bbox[0], 0, 32); Assert.InRange(o.Bbox[2], 0, 32);
                Assert.InRange(o.Bbox[1], 0, 32); Assert.InRange(o.Bbox[3], 0, 32);
                Assert.Contains($"{Shapes.Name(o.Colour)} {Shapes.Name(o.Shape)}", s.Caption);
            }
            switch (s.Kind)
            {
                case SceneKind.Single:
                    var c = s.Objects[0];
                    if (s.Position == "on the left") Assert.True(c.Cx < 16);
                    if (s.Position == "on the right") Assert.True(c.Cx > 16);
                    if (s.Position == "at the top") Assert.True(c.Cy < 16);
                    if (s.Position == "at the bottom") Assert.True(c.Cy > 16);
                    Assert.Equal(c.Size == ShapeSize.Small ? 8 : 14, c.Diameter);
                    break;
                case SceneKind.Pair:
                    var (a, b) = (s.Objects[0], s.Objects[1]);
                    double main = s.Relation switch { "left of" => b.Cx - a.Cx, "right of" => a.Cx - b.Cx, "above" => b.Cy - a.Cy, _ => a.Cy - b.Cy };
                    Assert.True(main >= 8, $"'{s.Caption}': centres {main:F1} px apart");
                    AssertNoOverlap(s.Objects);
                    break;
                default:
                    Assert.Equal(s.Caption.StartsWith("two", StringComparison.Ordinal) ? 2 : 3, s.Objects.Length);
                    Assert.Single(s.Objects.Select(o => (o.Colour, o.Shape)).Distinct());
                    AssertNoOverlap(s.Objects);
                    break;
            }
        }
        Assert.Equal(3, kinds.Count);
    }

    private static void AssertNoOverlap(ShapeObject[] objs)
    {
        for (int i = 0; i < objs.Length; i++)
            for (int j = i + 1; j < objs.Length; j++)
            {
                var p = objs[i].Bbox; var q = objs[j].Bbox;
                Assert.False(p[0] < q[2] && q[0] < p[2] && p[1] < q[3] && q[1] < p[3], "objects overlap");
            }
    }

    [Fact]
    public void Render_is_antialiased_on_black_with_exact_palette_inside()
    {
        var o = new ShapeObject(ShapeColour.Red, ShapeKind.Circle, ShapeSize.Large, 16, 16, 14);
        var img = Shapes.Render(new ShapeScene("a large red circle", SceneKind.Single, [o]), 32);
        Assert.Equal(new byte[] { 220, 40, 40, 255 }, img.Rgba.AsSpan(4 * (16 * 32 + 16), 4).ToArray());   // centre
        Assert.Equal(new byte[] { 0, 0, 0, 255 }, img.Rgba.AsSpan(0, 4).ToArray());                        // corner
        // some edge pixel is a blend (neither background nor full colour)
        Assert.Contains(Enumerable.Range(0, 32 * 32), i => img.Rgba[4 * i] is > 0 and < 220);
        var tri = new ShapeObject(ShapeColour.White, ShapeKind.Triangle, ShapeSize.Large, 16, 16, 14);
        Assert.True(Shapes.Contains(tri, 16, 10)); Assert.False(Shapes.Contains(tri, 10, 10)); Assert.True(Shapes.Contains(tri, 10, 22));
    }

    [Fact]
    public void Dataset_holds_out_pairs_from_train_and_is_deterministic()
    {
        var d1 = Directory.CreateTempSubdirectory("pictor-shapes").FullName;
        var d2 = Directory.CreateTempSubdirectory("pictor-shapes").FullName;
        var (train, val) = Shapes.WriteDataset(d1, 200, seed: 9);
        Shapes.WriteDataset(d2, 200, seed: 9);
        Assert.Equal((180, 20), (train, val));
        var trainLines = File.ReadAllLines(Path.Combine(d1, "train", "metadata.jsonl"));
        var valLines = File.ReadAllLines(Path.Combine(d1, "val", "metadata.jsonl"));
        Assert.Equal(180, trainLines.Length); Assert.Equal(20, valLines.Length);
        bool HasHeldOut(string line) => JsonDocument.Parse(line).RootElement.GetProperty("objects").EnumerateArray().Any(o =>
            Shapes.IsHeldOut(Enum.Parse<ShapeColour>(o.GetProperty("colour").GetString()!, true), Enum.Parse<ShapeKind>(o.GetProperty("shape").GetString()!, true)));
        Assert.DoesNotContain(trainLines, HasHeldOut);
        Assert.True(valLines.Count(HasHeldOut) >= 10);
        Assert.Equal(trainLines, File.ReadAllLines(Path.Combine(d2, "train", "metadata.jsonl")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(d1, "train", "000007.png")), File.ReadAllBytes(Path.Combine(d2, "train", "000007.png")));
        var first = JsonDocument.Parse(trainLines[0]).RootElement;
        Assert.Equal("000000.png", first.GetProperty("file_name").GetString());
        Assert.Equal(32, Image.Load(Path.Combine(d1, "train", "000000.png")).Width);
    }

    [Fact]
    public void Size_64_doubles_everything()
    {
        var s = Shapes.Generate(new Rng(1), 64, null);
        Assert.All(s.Objects, o => Assert.Contains(o.Diameter, new[] { 16.0, 28.0 }));
        Assert.Throws<ArgumentException>(() => Shapes.Generate(new Rng(1), 48, null));
    }

    [Fact]
    public void Uniform_mix_draws_the_same_kinds_as_one_draw_of_three()
    {
        // The reproduce commands of shipped models predate --mix: the default must not move the random stream.
        var a = new Rng(11); var b = new Rng(11);
        for (int i = 0; i < 2000; i++) Assert.Equal((SceneKind)b.NextInt(3), ShapesMix.Uniform.Draw(a));
        var c = new Rng(5); var d = new Rng(5);
        for (int i = 0; i < 50; i++) Assert.Equal(Shapes.Generate(c, 32, false).Caption, Shapes.Generate(d, 32, false, ShapesMix.Parse("1:1:1")).Caption);
    }

    [Fact]
    public void Mix_weights_set_the_scene_kinds_frequencies()
    {
        var rng = new Rng(2);
        var counts = new int[3];
        const int n = 6000;
        for (int i = 0; i < n; i++) counts[(int)new ShapesMix(1, 3, 2).Draw(rng)]++;
        Assert.InRange(counts[0] / (double)n, 1 / 6.0 - 0.02, 1 / 6.0 + 0.02);
        Assert.InRange(counts[1] / (double)n, 3 / 6.0 - 0.02, 3 / 6.0 + 0.02);
        Assert.InRange(counts[2] / (double)n, 2 / 6.0 - 0.02, 2 / 6.0 + 0.02);
        // Scenes that fail placement (or, in training, hold a held-out pair) are drawn again from the kind up, and
        // pairs fail most: 1:1:1 yields about 36/27/38 %, 1:4:2 about 17/47/36 %.
        double PairShare(ShapesMix m) { var r = new Rng(4); return Enumerable.Range(0, 3000).Count(_ => Shapes.Generate(r, 32, false, m).Kind == SceneKind.Pair) / 3000.0; }
        Assert.InRange(PairShare(ShapesMix.Uniform), 0.22, 0.31);
        Assert.InRange(PairShare(new ShapesMix(1, 4, 2)), 0.43, 0.53);
        for (int i = 0; i < 200; i++) Assert.Equal(SceneKind.Pair, Shapes.Generate(rng, 32, null, new ShapesMix(0, 1, 0)).Kind);
        var d = Directory.CreateTempSubdirectory("pictor-shapes-mix").FullName;
        Shapes.WriteDataset(d, 40, seed: 1, mix: new ShapesMix(0, 0, 1));
        foreach (var split in new[] { "train", "val" })
            Assert.All(File.ReadAllLines(Path.Combine(d, split, "metadata.jsonl")), l => Assert.Matches("\"(two|three) ", l));
    }

    [Theory]
    [InlineData("1:2"), InlineData("a:b:c"), InlineData("0:0:0"), InlineData("-1:1:1"), InlineData("1:1:1001"), InlineData("")]
    public void Bad_mix_is_a_clear_error(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => ShapesMix.Parse(text));
        Assert.Contains("--mix", e.Message);
        Assert.Matches(@"(such as|e\.g\.) \d+:\d+:\d+", e.Message);   // says what a good value looks like
    }
}
