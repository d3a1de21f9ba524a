using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Pipelines.Eval;

namespace Pictor.Pipelines.Tests;

/// <summary>The rule-based shapes checker must read the generator's own renders back correctly, and reject wrong ones.</summary>
public class ShapesEvalTests
{
    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    public void Ground_truth_renders_score_as_correct(int size)
    {
        var rng = new Rng(11);
        var verdicts = Enumerable.Range(0, 300).Select(i =>
        {
            var scene = Shapes.Generate(rng, size, heldOut: i % 4 == 0 ? true : null);
            return ShapesEval.Score(scene, i % 4 == 0, Shapes.Render(scene, size));
        }).ToList();
        var r = ShapesEval.Summarise(verdicts);
        foreach (var (name, acc) in new[] { ("single", r.Single), ("pairs", r.Pairs), ("counting", r.Counting), ("held-out single", r.HeldOutSingle), ("held-out pairs", r.HeldOutPairs), ("held-out counting", r.HeldOutCounting) })
            Assert.True(acc.Value >= 0.97, $"{name}: {acc} on ground truth at {size}px; failures: {string.Join("; ", verdicts.Where(v => !v.Correct).Take(5).Select(v => v.Scene.Caption + " found " + string.Join(",", ShapesChecker.Analyse(Shapes.Render(v.Scene, size)))))}");
    }

    [Fact]
    public void Wrong_images_score_as_wrong()
    {
        var rng = new Rng(12);
        ShapeScene Draw(SceneKind k) { while (true) { var s = Shapes.Generate(rng, 32, null); if (s.Kind == k) return s; } }
        var single = Draw(SceneKind.Single);
        Assert.False(ShapesEval.Score(single, false, Image.Solid(32, 32, 0, 0, 0)).Correct);   // nothing drawn
        var other = single with { Objects = [single.Objects[0] with { Colour = single.Objects[0].Colour == ShapeColour.Red ? ShapeColour.Blue : ShapeColour.Red }] };
        var v = ShapesEval.Score(single, false, Shapes.Render(other, 32));
        Assert.False(v.Correct); Assert.False(v.ColourOk); Assert.True(v.ShapeOk);
        var pair = Draw(SceneKind.Pair);
        while (pair.Objects[0].Shape == pair.Objects[1].Shape || pair.Objects[0].Colour == pair.Objects[1].Colour) pair = Draw(SceneKind.Pair);
        var swapped = pair with { Objects = [pair.Objects[0] with { Cx = pair.Objects[1].Cx, Cy = pair.Objects[1].Cy }, pair.Objects[1] with { Cx = pair.Objects[0].Cx, Cy = pair.Objects[0].Cy }] };
        var rev = ShapesEval.Score(pair, false, Shapes.Render(swapped, 32));   // relation reversed: objects right, relation wrong
        Assert.False(rev.Correct); Assert.True(rev.ColourOk); Assert.True(rev.ShapeOk); Assert.False(rev.PositionOk);
        Assert.False(rev.ColourRelationOk);
        var right = ShapesEval.Score(pair, false, Shapes.Render(pair, 32));
        Assert.True(right.Correct); Assert.True(right.ColourOk); Assert.True(right.ShapeOk); Assert.True(right.PositionOk);
        // shapes swapped between the colours (the binding failure): both colours, not both objects, no relation to judge
        var a0 = pair.Objects[0]; var b0 = pair.Objects[1];
        var bound = pair with { Objects = [a0 with { Shape = b0.Shape }, b0 with { Shape = a0.Shape }] };
        var sw = ShapesEval.Score(pair, false, Shapes.Render(bound, 32));
        Assert.False(sw.Correct); Assert.True(sw.ColourOk); Assert.False(sw.ShapeOk); Assert.Null(sw.PositionOk);
        // the layout of the colours is still judged: the objects are where the caption puts them, only their shapes swapped
        Assert.True(sw.ColourRelationOk);
        var count = Draw(SceneKind.Count);
        var fewer = count with { Objects = count.Objects[..^1] };
        Assert.False(ShapesEval.Score(count, false, Shapes.Render(fewer, 32)).Correct);
    }

    [Fact]
    public void Report_json_writes_an_accuracy_over_no_prompts_as_null()
    {
        // one pair image with nothing drawn: no image has both objects, so the relation rate has no prompts
        var rng = new Rng(12);
        ShapeScene pair; do pair = Shapes.Generate(rng, 32, null); while (pair.Kind != SceneKind.Pair);
        var r = ShapesEval.Summarise([ShapesEval.Score(pair, false, Image.Solid(32, 32, 0, 0, 0))]);
        Assert.Equal(0, r.PairRelation.Count);
        var json = System.Text.Json.Nodes.JsonNode.Parse(ShapesEval.ToJson(r, new SamplingSettings("dpm++", 20, 3f), "hash"))!;
        Assert.Null(json["pair_relation"]);
        Assert.Equal(0.0, (double)json["pairs"]!);
    }

    [Fact]
    public void Prompt_set_is_fixed_and_mixes_kinds_and_held_out_pairs()
    {
        var a = ShapesEval.PromptSet(32); var b = ShapesEval.PromptSet(32);
        Assert.Equal(a.Select(p => p.Scene.Caption), b.Select(p => p.Scene.Caption));
        Assert.Equal(ShapesEval.SeenPrompts + ShapesEval.HeldOutPrompts, a.Count);
        foreach (var k in Enum.GetValues<SceneKind>()) Assert.True(a.Count(p => p.Scene.Kind == k && !p.HeldOut) >= 30, $"{k}");
        Assert.All(a.Where(p => p.HeldOut), p => Assert.Contains(p.Scene.Objects, o => Shapes.IsHeldOut(o.Colour, o.Shape)));
        Assert.All(a.Where(p => !p.HeldOut), p => Assert.DoesNotContain(p.Scene.Objects, o => Shapes.IsHeldOut(o.Colour, o.Shape)));
    }
}
