using System.Text.RegularExpressions;
using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Nn.Optim;
using Pictor.Pipelines.Training;
using Pictor.TestSupport;
using Pictor.Text;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

/// <summary>Token-level grounding ('train diffusion --grounding W'): which tokens name which object's box, the loss on
/// cross-attention maps against a loop reference and finite differences, the option's storage and exact resume, and
/// that optimising it moves each named token's attention into its object.</summary>
[Collection("BufferPool")]
public class GroundingTests
{
    private static readonly BpeTokenizer Tok = BpeTokenizer.Train(
        ["a red circle left of a blue square", "two red circles", "a small green triangle at the top", "three blue squares"], 300);

    [Fact]
    public void Masks_ground_each_objects_words_in_its_box()
    {
        const int size = 32, ctx = 16, n = size * size;
        var objs = new[] { new ImageObject(["red", "circle", "small"], 2, 3, 10, 11), new ImageObject(["blue", "square", "large"], 20.5f, 4, 30.5f, 14) };
        const string cap = "a red circle left of a blue square";
        var m = new float[ctx * n];
        var g = Grounding.TokenMasks(Tok, cap, objs, ctx, size, false, m);
        float At(float[] mm, int s, int x, int y) => mm[s * n + y * size + x];
        var groundedWords = new HashSet<string>();
        foreach (var (word, start, count) in Tok.WordSpans(cap))
            for (int s = 1 + start; s < 1 + start + count; s++)
            {
                float area = m.AsSpan(s * n, n).ToArray().Sum();
                if (word is "red" or "circle")
                {
                    Assert.True(g[s]); Assert.Equal(64f, area, 3);
                    Assert.Equal(1f, At(m, s, 5, 6)); Assert.Equal(0f, At(m, s, 25, 6)); Assert.Equal(0f, At(m, s, 5, 11));
                }
                else if (word is "blue" or "square")
                {
                    Assert.True(g[s]); Assert.Equal(100f, area, 3);
                    Assert.Equal(0.5f, At(m, s, 20, 5)); Assert.Equal(1f, At(m, s, 25, 5)); Assert.Equal(0.5f, At(m, s, 30, 5)); Assert.Equal(0f, At(m, s, 5, 6));
                }
                else { Assert.False(g[s], $"'{word}' names no object"); Assert.Equal(0f, area); }
                if (g[s]) groundedWords.Add(word);
            }
        Assert.Equal(new[] { "blue", "circle", "red", "square" }, groundedWords.Order());
        Assert.False(g[0]);   // bos

        // A mirrored image mirrors every mask; an empty caption grounds nothing.
        var mm = new float[ctx * n];
        Assert.Equal(g, Grounding.TokenMasks(Tok, cap, objs, ctx, size, true, mm));
        for (int s = 0; s < ctx; s++) for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) Assert.Equal(At(m, s, x, y), At(mm, s, size - 1 - x, y));
        Assert.DoesNotContain(true, Grounding.TokenMasks(Tok, "", objs, ctx, size, false, mm));
        Assert.All(mm, v => Assert.Equal(0f, v));

        // A plural names every object of that shape: "circles" is grounded in the union of both boxes.
        var two = new[] { new ImageObject(["red", "circle"], 0, 0, 8, 8), new ImageObject(["red", "circle"], 16, 16, 24, 24) };
        g = Grounding.TokenMasks(Tok, "two red circles", two, ctx, size, false, m);
        var circles = Tok.WordSpans("two red circles").Single(w => w.Word == "circles");
        Assert.True(g[1 + circles.Start]);
        Assert.Equal(128f, m.AsSpan((1 + circles.Start) * n, n).ToArray().Sum(), 3);

        // Tokens cut by the context are not grounded, and nothing lands on the eos slot.
        var cut = Grounding.TokenMasks(Tok, cap, objs, 5, size, false, new float[5 * n]);
        Assert.False(cut[4]);
        var full = Grounding.TokenMasks(Tok, cap, objs, ctx, size, false, new float[ctx * n]);
        Assert.Equal(full.Take(4), cut.Take(4));
        Assert.Throws<ArgumentException>(() => Grounding.TokenMasks(Tok, cap, objs, ctx, size, false, new float[10]));
    }

    [Fact]
    public void Loss_matches_a_loop_reference_and_finite_differences()
    {
        // Two layers (4x4 and 8x8 pixels of an 8x8 image), B 2, H 2, S 5; fractional masks; some tokens not grounded.
        const int b = 2, h = 2, s = 5, size = 8, n = size * size;
        var masks = new float[b * s * n];
        var r = new Rng(3);
        for (int i = 0; i < masks.Length; i++) masks[i] = r.NextFloat() < 0.3f ? r.NextFloat() : 0f;
        var grounded = new[] { false, true, true, false, true, true, false, false, true, false };
        OpCheck.Check("grounding loss",
            [OpCheck.Randn(1, true, b, h, 16, s), OpCheck.Randn(2, true, b, h, 64, s)],
            t => Ops.Reshape(GroundingLoss.Compute([Ops.Softmax(t[0], -1), Ops.Softmax(t[1], -1)], masks, grounded, b, s, size), 1),
            d => new D([(Reference(d[0], 4) + Reference(d[1], 8)) / 2], [1]), fwdTol: 1e-5, gradTol: 1e-3);

        double Reference(D logits, int res)
        {
            int t = res * res, k = size / res;
            double total = 0; int count = 0;
            for (int bi = 0; bi < b; bi++)
                for (int si = 0; si < s; si++)
                {
                    if (!grounded[bi * s + si]) continue;
                    double inside = 0, all = 0;
                    for (int u = 0; u < t; u++)
                    {
                        double a = 0;
                        for (int hi = 0; hi < h; hi++)
                        {
                            int row = ((bi * h + hi) * t + u) * s;
                            double mx = Enumerable.Range(0, s).Max(j => logits.V[row + j]);
                            double z = Enumerable.Range(0, s).Sum(j => Math.Exp(logits.V[row + j] - mx));
                            a += Math.Exp(logits.V[row + si] - mx) / z / h;
                        }
                        int ux = u % res, uy = u / res;
                        double cover = 0;
                        for (int dy = 0; dy < k; dy++) for (int dx = 0; dx < k; dx++) cover += masks[(bi * s + si) * n + (uy * k + dy) * size + ux * k + dx];
                        inside += a * cover / (k * k); all += a;
                    }
                    total += Math.Pow(1 - inside / (all + 1e-8), 2); count++;
                }
            return total / count;
        }

        Assert.Equal(0f, GroundingLoss.Compute([Ops.Softmax(OpCheck.Randn(1, false, b, h, 16, s), -1)], masks, new bool[b * s], b, s, size).Item());
        Assert.Throws<ArgumentException>(() => GroundingLoss.Compute([Ops.Softmax(OpCheck.Randn(1, false, b, h, 15, s), -1)], masks, grounded, b, s, size));
    }

    [Fact]
    public void Option_is_checked_stored_and_resumes_bit_exactly()
    {
        Assert.Contains("--grounding", Assert.Throws<ArgumentException>(() => new TrainOptions { Grounding = -1 }.Validate()).Message);
        Assert.Contains("'train diffusion' only", Assert.Throws<ArgumentException>(() => new TrainOptions { Model = "clip", Grounding = 1 }.Validate()).Message);
        Assert.Equal(0f, TrainOptions.FromJson("{\"model\": \"diffusion\"}", "old").Grounding);   // runs written before the option
        TrainerTests.AssertOptionStoredResumesExactlyAndMatters(o => o with { Grounding = 0.5f }, o => o with { Grounding = 0 }, "\"grounding\": 0.5");

        // Data without boxes: a clear error before anything is written.
        var dir = Directory.CreateTempSubdirectory("pictor-nobox").FullName;
        Shapes.WriteDataset(dir, 12, seed: 2);
        foreach (var split in new[] { "train", "val" })
        {
            var meta = Path.Combine(dir, split, "metadata.jsonl");
            File.WriteAllLines(meta, File.ReadAllLines(meta).Select(l => Regex.Replace(l, ",\"objects\":.*}$", "}")));
        }
        string run = TrainerTests.NewRun();
        var e = Assert.Throws<ArgumentException>(() => DiffusionTrainer.Start(run, new TrainOptions { Data = dir, Preset = "tiny", ImageSize = 16, Context = 12, Steps = 2, Grounding = 1 }, new TrainControl()));
        Assert.Contains("--grounding needs object boxes", e.Message);
        Assert.False(File.Exists(Path.Combine(run, "train.json")));
    }

    [Fact]
    public void Optimising_the_loss_moves_each_named_tokens_attention_into_its_object()
    {
        // The tiny pipeline on 8 pair and count images of the shapes set at 16x16 (boxes scaled from 32x32), mid-noise
        // inputs; 30 AdamW steps on the grounding loss alone at least halve it.
        var set = ImageCaptionSet.LoadSplits(TrainerTests.Data.Value, 16).Train;
        var idx = Enumerable.Range(0, set.Count).Where(i => set.Objects[i].Count >= 2).Take(8).ToArray();
        Assert.Equal(8, idx.Length);
        Assert.All(idx, i => Assert.All(set.Objects[i], o => Assert.True(o.X1 <= 16 && o.Y1 <= 16)));
        var tok = BpeTokenizer.Train(set.Captions.SelectMany(c => c), 400);
        const int ctx = 16, n = 16 * 16;
        var p = new Diffusion.DiffusionPipeline(Diffusion.DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, ctx), tok, new Rng(3));
        var caps = idx.Select(i => set.Captions[i][0]).ToArray();
        var (masks, grounded) = Grounding.BatchMasks(p.Tokenizer, caps, idx.Select(i => set.Objects[i]).ToList(), ctx, 16);
        var row3 = new float[ctx * n];   // the batch's rows are the single-image masks
        Assert.Equal(Grounding.TokenMasks(p.Tokenizer, caps[3], set.Objects[idx[3]], ctx, 16, false, row3), grounded[(3 * ctx)..(4 * ctx)]);
        Assert.Equal(row3, masks[(3 * ctx * n)..(4 * ctx * n)]);
        Assert.True(grounded.Count(g => g) >= 16);
        var x = new float[8 * 3 * n];
        for (int k = 0; k < 8; k++) set.Read(idx[k], x.AsSpan(k * 3 * n, 3 * n));
        var xt = Tensor.FromArray(x.Select(v => 0.7f * v).ToArray(), 8, 3, 16, 16);
        var ids = p.Tokenize(caps);
        float Loss(bool backward)
        {
            var maps = new List<Tensor>();
            p.Forward(xt, Enumerable.Repeat(400f, 8).ToArray(), ids, maps);
            Assert.Equal(4, maps.Count);   // tiny's AttnBlocks, all at 8x8: one in the encoder, the middle one, two in the decoder
            Assert.All(maps, m => Assert.Equal(new[] { 8, 2, 64, ctx }, m.Shape));
            var l = GroundingLoss.Compute(maps, masks, grounded, 8, ctx, 16);
            if (backward) l.Backward();
            return l.Item();
        }
        p.Train(true);
        var opt = new AdamW(p.NamedParameters(), new AdamWConfig(3e-3f, WeightDecay: 0));
        float first = Loss(false);
        for (int step = 0; step < 30; step++) { opt.ZeroGrad(); Loss(true); opt.StepOnce(); }
        float last = Loss(false);
        Assert.True(last < 0.5f * first, $"grounding loss {first:F4} -> {last:F4} after 30 steps");
    }
}
