using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Pipelines.Eval;

namespace Pictor.Pipelines.Tests;

/// <summary>The edit benchmark's scoring on edits with known answers: the unedited source (nothing changed), the
/// ideal edit (the scene re-rendered with the new object, pasted inside the mask), and edits that disturb a kept
/// object.</summary>
public class EditsEvalTests
{
    /// <summary>The scene with the target object renamed as the case says, rendered, inside the mask only.</summary>
    private static Image IdealEdit(EditCase e, int size)
    {
        var objects = e.Scene.Objects.ToArray();
        objects[e.Target] = objects[e.Target] with { Colour = e.Colour, Shape = e.Shape };
        var after = Shapes.Render(e.Scene with { Objects = objects }, size);
        var img = new Image(size, size);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                bool inside = x >= e.X0 && x < e.X1 && y >= e.Y0 && y < e.Y1;
                int p = 4 * (y * size + x);
                Array.Copy((inside ? after : e.Source).Rgba, p, img.Rgba, p, 4);
            }
        return img;
    }

    private static string Describe(EditVerdict v, Image img) => $"'{v.Case.Prompt}' mask [{v.Case.X0}, {v.Case.Y0}, "
        + $"{v.Case.X1}, {v.Case.Y1}] found {string.Join("; ", ShapesChecker.Analyse(img))}";

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    public void Each_mask_covers_its_objects_box_and_no_pixel_of_another(int size)
    {
        static (int, int, int, int) Px(double[] b) => ((int)Math.Floor(b[0]), (int)Math.Floor(b[1]),
            (int)Math.Ceiling(b[2]), (int)Math.Ceiling(b[3]));
        int grown = 0;
        foreach (var e in EditsEval.CaseSet(size))
        {
            var (tx0, ty0, tx1, ty1) = Px(e.Scene.Objects[e.Target].Bbox);
            Assert.True(e.X0 <= Math.Max(0, tx0) && e.Y0 <= Math.Max(0, ty0) && e.X1 >= Math.Min(size, tx1)
                && e.Y1 >= Math.Min(size, ty1), $"'{e.Prompt}': mask [{e.X0}, {e.Y0}, {e.X1}, {e.Y1}] misses the box");
            foreach (var k in e.Scene.Objects.Where((_, i) => i != e.Target))
            {
                var (kx0, ky0, kx1, ky1) = Px(k.Bbox);
                Assert.True(kx0 >= e.X1 || kx1 <= e.X0 || ky0 >= e.Y1 || ky1 <= e.Y0,
                    $"'{e.Prompt}': mask [{e.X0}, {e.Y0}, {e.X1}, {e.Y1}] reaches [{kx0}, {ky0}, {kx1}, {ky1}]");
            }
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    Assert.Equal(x >= e.X0 && x < e.X1 && y >= e.Y0 && y < e.Y1 ? 255 : 0, e.Mask.Rgba[4 * (y * size + x)]);
            if (e.X1 - e.X0 == tx1 - tx0 + 2 * EditsEval.Margin) grown++;
        }
        Assert.True(grown > EditsEval.Cases / 2, $"only {grown} masks have the full margin across");
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    public void The_unedited_source_keeps_everything_outside_and_fails_the_edit(int size)
    {
        // Before (b) read the source, a kept triangle failed here: the scene places it by its box's centre, and the
        // checker reports its centroid, h/6 lower.
        foreach (var e in EditsEval.CaseSet(size))
        {
            var v = EditsEval.Score(e, e.Source);
            Assert.True(v.OutsideOk, Describe(v, e.Source));
            Assert.False(v.TargetOk, Describe(v, e.Source));
            Assert.Equal(0, v.MaxChange);
        }
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    public void The_ideal_edit_scores_on_a_and_b(int size)
    {
        var verdicts = EditsEval.CaseSet(size).Select(e => (V: EditsEval.Score(e, IdealEdit(e, size)), e)).ToList();
        var wrong = verdicts.Where(p => !p.V.TargetOk || !p.V.OutsideOk)
            .Select(p => Describe(p.V, IdealEdit(p.e, size)));
        Assert.Empty(wrong);
        Assert.All(verdicts, p => Assert.Equal(0, p.V.MaxChange));
    }

    [Fact]
    public void A_kept_object_recoloured_moved_or_removed_fails_b()
    {
        var e = EditsEval.CaseSet(32).First(c => c.Scene.Kind == SceneKind.Pair);
        var kept = e.Scene.Objects[0];
        var recoloured = kept with { Colour = kept.Colour == ShapeColour.Red ? ShapeColour.Blue : ShapeColour.Red };
        var moved = kept with { Cx = kept.Cx + (kept.Cx < 16 ? -3 : 3) };
        foreach (var changed in new[] { recoloured, moved })
        {
            var img = Shapes.Render(e.Scene with { Objects = [changed, e.Scene.Objects[1]] }, 32);
            Assert.False(EditsEval.Score(e, img).OutsideOk, Describe(EditsEval.Score(e, img), img));
        }
        var removed = Shapes.Render(e.Scene with { Objects = [e.Scene.Objects[1]] }, 32);
        Assert.False(EditsEval.Score(e, removed).OutsideOk);
        Assert.True(EditsEval.Score(e, removed).MaxChange > 0);
    }

    [Fact]
    public void The_plot_puts_a_high_and_b_low_where_their_strengths_are()
    {
        static EditsReport R(double a, double b) => new("img2img", new Accuracy(a, 60), new Accuracy(b, 60), 0, 0, []);
        var img = EditsPlot.Render([0.9f, 0.3f], [R(0.9, 0.1), R(0.2, 0.7)], inpaint: null);
        List<(int X, int Y)> Where(byte r, byte g, byte b) => Enumerable.Range(0, img.Width * img.Height)
            .Where(i => img.Rgba[4 * i] == r && img.Rgba[4 * i + 1] == g && img.Rgba[4 * i + 2] == b)
            .Select(i => (i % img.Width, i / img.Width)).ToList();
        var a = Where(40, 90, 220); var b = Where(240, 130, 20);
        Assert.NotEmpty(a); Assert.NotEmpty(b);
        // Strength 0.3 is at 30 % of the x axis and 0.9 at 90 %; accuracy 1 at the top. (a) rises from 0.2 to 0.9:
        // its leftmost pixels are low, its rightmost high; (b) falls from 0.7 to 0.1.
        var aLeft = a.MinBy(p => p.X); var aRight = a.MaxBy(p => p.X);
        var bLeft = b.MinBy(p => p.X); var bRight = b.MaxBy(p => p.X);
        Assert.InRange(aLeft.X, 0.25 * img.Width, 0.35 * img.Width);
        Assert.InRange(aRight.X, 0.85 * img.Width, 0.95 * img.Width);
        Assert.True(aLeft.Y > aRight.Y && bLeft.Y < bRight.Y, $"a {aLeft}->{aRight}, b {bLeft}->{bRight}");
        Assert.InRange(aRight.Y, 0, 0.2 * img.Height); Assert.InRange(bRight.Y, 0.75 * img.Height, img.Height);
        var dotted = EditsPlot.Render([0.5f], [R(0.5, 0.5)], inpaint: R(0.95, 0.05));
        Assert.NotEqual(img.Rgba, dotted.Rgba);
        Assert.Contains("2 strengths for 1", Assert.Throws<ArgumentException>(() =>
            EditsPlot.Render([0.3f, 0.5f], [R(1, 1)], null)).Message);
    }
}
