using Pictor.Engine;
using Pictor.Imaging.Datasets;
using Pictor.Models.Unet;
using Pictor.Nn.Optim;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Training;
using Pictor.TestSupport;
using Pictor.Text;

namespace Pictor.Pipelines.Tests;

/// <summary>Token places (preset xs-rel-place) and the placement loss ('train diffusion --placement W'): which tokens are
/// placed where, the loss against a loop reference and finite differences, one shared head feeding every ResBlock's
/// blobs, the preset and option's storage and checks, exact resume, and that optimising the loss learns the places.</summary>
[Collection("BufferPool")]
public class PlacementTests
{
    private static readonly BpeTokenizer Tok = BpeTokenizer.Train(
        ["a red circle left of a blue square", "three cyan circles", "a red circle left of a red square"], 300);

    [Fact]
    public void Targets_put_each_word_that_names_one_object_at_its_centre()
    {
        const int size = 32, ctx = 16;
        var objs = new[] { new ImageObject(["red", "circle"], 2, 3, 10, 11), new ImageObject(["blue", "square"], 20, 4, 30, 14) };
        const string cap = "a red circle left of a blue square";
        var t = new float[ctx * 2];
        var placed = Placement.Targets(Tok, cap, objs, ctx, size, false, t);
        var seen = new HashSet<string>();
        foreach (var (word, start, count) in Tok.WordSpans(cap))
            for (int s = 1 + start; s < 1 + start + count; s++)
            {
                if (word is "red" or "circle") { Assert.Equal(6f / 16 - 1, t[2 * s], 6); Assert.Equal(7f / 16 - 1, t[2 * s + 1], 6); }   // box centre (6, 7) px
                else if (word is "blue" or "square") { Assert.Equal(25f / 16 - 1, t[2 * s], 6); Assert.Equal(9f / 16 - 1, t[2 * s + 1], 6); }
                else { Assert.False(placed[s], $"'{word}' names no object"); Assert.Equal(0f, t[2 * s]); continue; }
                Assert.True(placed[s]); seen.Add(word);
            }
        Assert.Equal(new[] { "blue", "circle", "red", "square" }, seen.Order());
        Assert.False(placed[0]);   // bos

        // Mirrored: x negated, y kept. Empty caption: nothing placed.
        var tm = new float[ctx * 2];
        Assert.Equal(placed, Placement.Targets(Tok, cap, objs, ctx, size, true, tm));
        for (int s = 0; s < ctx; s++) { Assert.Equal(-t[2 * s], tm[2 * s]); Assert.Equal(t[2 * s + 1], tm[2 * s + 1]); }
        Assert.DoesNotContain(true, Placement.Targets(Tok, "", objs, ctx, size, false, tm));

        // A word naming several objects has no one place: "red" of two red objects, and "cyan circles" of three.
        var reds = new[] { new ImageObject(["red", "circle"], 2, 3, 10, 11), new ImageObject(["red", "square"], 20, 4, 30, 14) };
        const string same = "a red circle left of a red square";
        placed = Placement.Targets(Tok, same, reds, ctx, size, false, t);
        foreach (var (word, start, count) in Tok.WordSpans(same))
            Assert.Equal(word is "circle" or "square", placed[1 + start]);
        var three = Enumerable.Range(0, 3).Select(i => new ImageObject(["cyan", "circle"], 8 * i, 0, 8 * i + 6, 6)).ToArray();
        Assert.DoesNotContain(true, Placement.Targets(Tok, "three cyan circles", three, ctx, size, false, t));
        Assert.Throws<ArgumentException>(() => Placement.Targets(Tok, cap, objs, ctx, size, false, new float[5]));
    }

    [Fact]
    public void Loss_matches_a_loop_reference_and_finite_differences()
    {
        const int b = 2, s = 4;
        var r = new Rng(5);
        var targets = Enumerable.Range(0, b * s * 2).Select(_ => 2 * r.NextFloat() - 1).ToArray();
        var placed = new[] { true, false, true, true, false, false, true, false };
        OpCheck.Check("placement loss", [OpCheck.Randn(4, true, b, s, 2)],
            a => Ops.Reshape(Placement.Loss(a[0], targets, placed), 1),
            d =>
            {
                double sum = 0;
                for (int i = 0; i < b * s; i++)
                    if (placed[i]) for (int k = 0; k < 2; k++) sum += Math.Pow(d[0].V[2 * i + k] - targets[2 * i + k], 2);
                return new D([sum / placed.Count(p => p)], [1]);
            }, fwdTol: 1e-6, gradTol: 1e-3);
        Assert.Equal(0f, Placement.Loss(OpCheck.Randn(4, false, b, s, 2), targets, new bool[b * s]).Item());
        Assert.Throws<ArgumentException>(() => Placement.Loss(OpCheck.Randn(4, false, b, s, 3), targets, placed));
    }

    [Fact]
    public void One_head_places_every_ResBlocks_blobs_and_gradients_reach_it()
    {
        var tok = PipelineTests.Tokenizer();
        var tiny = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12);
        var cfg = tiny with { Unet = tiny.Unet with { TokenBlobs = true, TokenPlaces = true } };
        var p = new DiffusionPipeline(cfg, tok, new Rng(5));
        var names = p.Unet.NamedParameters().Select(n => n.Name).ToList();
        Assert.Contains("token_places.fc.weight", names);
        Assert.DoesNotContain(names, n => n.Contains("tok_blob.m"));   // no per-block centres
        Assert.Contains("enc_res.0.tok_blob.v.weight", names);

        var (xs, ids, before) = PipelineTests.ForwardBackward(p);
        Assert.Contains(p.Unet.NamedParameters().Single(n => n.Name == "token_places.fc.weight").Param.Grad!.ToArray(), q => q != 0);
        using (Autograd.NoGrad())
        {
            var places = new List<Tensor>();
            Assert.Equal(before, p.Forward(xs, [500f, 300f], ids, tokenPlaces: places).ToArray());
            var m = Assert.Single(places);
            Assert.Equal(new[] { 2, 12, 2 }, m.Shape);
            Assert.All(m.ToArray(), v => Assert.InRange(v, -1f, 1f));
            // Moving the places moves the image: the blobs read them.
            foreach (var (_, prm) in p.Unet.NamedParameters().Where(n => n.Name.StartsWith("token_places.fc.bias"))) prm.Span.Fill(0.8f);
            Assert.NotEqual(before, p.Forward(xs, [500f, 300f], ids).ToArray());
        }

        // A ResBlock with token blobs needs the shared places; places need blobs.
        var rng = new Rng(3);
        var block = new ResBlock(rng, 4, 4, timeDim: 8, groups: 2, tokenBlobDim: 6);
        var ctx = rng.Randn(1, 3, 6);
        using (Autograd.NoGrad())
        {
            Assert.Contains("pass the centres", Assert.ThrowsAny<ArgumentException>(() => block.Forward(rng.Randn(1, 4, 8, 8), rng.Randn(1, 8), ctx)).Message);
            Assert.Equal(new[] { 1, 4, 8, 8 }, block.Forward(rng.Randn(1, 4, 8, 8), rng.Randn(1, 8), ctx, Tensor.Zeros(1, 3, 2)).Shape);
        }
        Assert.Contains("token_blobs", Assert.ThrowsAny<ArgumentException>(() => new UnetModel(tiny.Unet with { TokenPlaces = true }, new Rng(1))).Message);
    }

    [Fact]
    public void Preset_round_trips_and_configs_without_the_field_have_none()
    {
        var place = DiffusionConfig.FromPreset("xs-rel-place", 300);
        Assert.True(place.Unet.TokenPlaces && place.Unet.TokenBlobs && place.Unet.TokenSlopes);   // + shared places
        Assert.Equal(place.ToJson(), DiffusionConfig.FromJson(place.ToJson(), "x").ToJson());
        var xs = DiffusionConfig.FromPreset("xs", 300);
        Assert.DoesNotContain("token_places", xs.ToJson());
        Assert.False(DiffusionConfig.FromJson(xs.ToJson(), "x").Unet.TokenPlaces);
    }

    [Fact]
    public void Option_is_checked_stored_and_resumes_bit_exactly()
    {
        Assert.Contains("--placement", Assert.Throws<ArgumentException>(() => new TrainOptions { Placement = -1 }.Validate()).Message);
        Assert.Contains("'train diffusion' only", Assert.Throws<ArgumentException>(() => new TrainOptions { Model = "clip", Placement = 1 }.Validate()).Message);
        Assert.Equal(0f, TrainOptions.FromJson("{\"model\": \"diffusion\"}", "old").Placement);
        TrainerTests.AssertOptionStoredResumesExactlyAndMatters(o => o with { Preset = "xs-rel-place", Placement = 0.5f }, o => o with { Placement = 0 }, "\"placement\": 0.5");

        // A preset without token places: a clear error naming the preset to use, before anything is written.
        string run = TrainerTests.NewRun();
        var e = Assert.Throws<ArgumentException>(() => DiffusionTrainer.Start(run, new TrainOptions { Data = TrainerTests.Data.Value, Preset = "tiny", ImageSize = 16, Context = 12, Steps = 2, Placement = 1 }, new TrainControl()));
        Assert.Contains("xs-rel-place", e.Message);
        Assert.False(File.Exists(Path.Combine(run, "model", "config.json")));
    }

    [Fact]
    public void Optimising_the_loss_learns_where_each_named_object_is()
    {
        // The tiny pipeline with token places on 16 single-object and pair images of the shapes set at 16x16 (count
        // scenes place nothing); 60 AdamW steps on the placement loss alone cut it to a fifth.
        var set = ImageCaptionSet.LoadSplits(TrainerTests.Data.Value, 16).Train;
        var tok = BpeTokenizer.Train(set.Captions.SelectMany(c => c), 400);
        const int ctx = 16;
        var idx = Enumerable.Range(0, set.Count)
            .Where(i => Placement.Targets(tok, set.Captions[i][0], set.Objects[i], ctx, 16, false, new float[ctx * 2]).Any(v => v)).Take(16).ToArray();
        Assert.Equal(16, idx.Length);
        Assert.Contains(idx, i => set.Objects[i].Count == 2);
        var tiny = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, ctx);
        var p = new DiffusionPipeline(tiny with { Unet = tiny.Unet with { TokenBlobs = true, TokenPlaces = true } }, tok, new Rng(3));
        var caps = idx.Select(i => set.Captions[i][0]).ToArray();
        var (targets, placed) = Placement.BatchTargets(p.Tokenizer, caps, idx.Select(i => set.Objects[i]).ToList(), ctx, 16);
        Assert.True(placed.Count(v => v) >= 2 * idx.Length);
        var x = Tensor.Zeros(idx.Length, 3, 16, 16);
        var ids = p.Tokenize(caps);
        float Loss(bool backward)
        {
            var places = new List<Tensor>();
            p.Forward(x, Enumerable.Repeat(400f, idx.Length).ToArray(), ids, tokenPlaces: places);
            var l = Placement.Loss(places.Single(), targets, placed);
            if (backward) l.Backward();
            return l.Item();
        }
        p.Train(true);
        var opt = new AdamW(p.NamedParameters(), new AdamWConfig(3e-3f, WeightDecay: 0));
        float first = Loss(false);
        for (int step = 0; step < 60; step++) { opt.ZeroGrad(); Loss(true); opt.StepOnce(); }
        float last = Loss(false);
        Assert.True(last < 0.2f * first, $"placement loss {first:F4} -> {last:F4} after 60 steps");
    }
}
