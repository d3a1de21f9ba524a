using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Imaging.Datasets;
using Pictor.Imaging.Png;
using Pictor.Models.Diffusion;
using Pictor.Models.Text;
using Pictor.Pipelines.Diffusion;
using Pictor.Text;

namespace Pictor.Pipelines.Tests;

[CollectionDefinition("BufferPool", DisableParallelization = true)]
public sealed class BufferPoolCollection;

/// <summary>The text-to-image pipeline on the tiny preset: text encoder, save/load, generation determinism, CFG.</summary>
[Collection("BufferPool")]
public class PipelineTests
{
    /// <summary>A 16x16 batch of two random images and captions through <paramref name="p"/>, then backward of the
    /// output's sum of squares: the inputs and the output, for tests that then zero weights and look again.</summary>
    internal static (Tensor X, IntTensor Ids, float[] Output) ForwardBackward(DiffusionPipeline p)
    {
        var xs = new float[2 * 3 * 16 * 16]; new Rng(9).FillUniform(xs, -1, 1);
        var x = Tensor.FromArray(xs, 2, 3, 16, 16);
        var ids = p.Tokenize(["a small red circle", "two blue squares"]);
        p.Train(true);
        var y = p.Forward(x, [500f, 300f], ids);
        var output = y.ToArray();
        Ops.Sum(Ops.Mul(y, y)).Backward();
        return (x, ids, output);
    }

    internal static BpeTokenizer Tokenizer() => BpeTokenizer.Train(["a small red circle", "two blue squares", "a green triangle left of a white circle", "a large yellow square at the top"], 300);

    internal static DiffusionPipeline Tiny(ulong seed = 1)
    {
        var tok = Tokenizer();
        return new DiffusionPipeline(DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12), tok, new Rng(seed));
    }

    [Fact]
    public void Text_encoder_gives_tokens_and_pooled_vector_and_gradients_reach_it()
    {
        var enc = new TextEncoder(new TextEncoderConfig(50, Context: 6, Layers: 1, Dim: 16, Heads: 2, OutDim: 8), new Rng(1));
        var ids = new IntTensor([1, 5, 6, 2, 0, 0, 1, 7, 2, 0, 0, 0], 2, 6);
        var (tokens, pooled) = enc.Forward(ids);
        Assert.Equal([2, 6, 8], tokens.Shape);
        Assert.Equal([2, 8], pooled.Shape);
        Assert.NotEqual(tokens.ToArray()[..8], tokens.ToArray()[48..56]);   // different captions, different encodings
        Ops.Add(Ops.Sum(tokens), Ops.Sum(pooled)).Backward();
        Assert.All(enc.NamedParameters(), p => Assert.True(p.Param.Grad != null && p.Param.Grad.ToArray().Any(g => g != 0), $"{p.Name} got no gradient"));
        Assert.Contains("text ids must be [B, 6]", Assert.Throws<ArgumentException>(() => enc.Forward(new IntTensor(new int[5], 1, 5))).Message);
    }

    [Fact]
    public void Same_seed_same_images_and_settings_change_them()
    {
        var p = Tiny();
        var o = new GenerationRequest("a small red circle") { Steps = 4, Seed = 7, Count = 2 };
        var a = p.Generate(o).ToArray();
        Assert.Equal(a, p.Generate(o).ToArray());
        Assert.Equal([2, 3, 16, 16], p.Generate(o).Shape);
        Assert.NotEqual(a, p.Generate(o with { Seed = 8 }).ToArray());
        Assert.NotEqual(a, p.Generate(o with { NegativePrompt = "two blue squares" }).ToArray());
        Assert.NotEqual(a, p.Generate(o with { Guidance = 1f }).ToArray());
        Assert.NotEqual(a, p.Generate(o with { Sampler = "ddim" }).ToArray());
        Assert.All(a, v => Assert.InRange(v, -1f, 1f));
        // Row i starts from Rng(seed + i): the second image of seed 7 is the first of seed 8 when the model is run alone
        // on each row (CFG off keeps rows independent of the batch's other rows' captions).
        var two = p.Generate(o with { Guidance = 1f, Sampler = "ddim" }).ToArray();
        var one = p.Generate(o with { Guidance = 1f, Sampler = "ddim", Seed = 8, Count = 1 }).ToArray();
        // Batch 1 and batch 2 block the GEMMs differently, so the sums round differently: equal to 1e-4, not bit for bit.
        for (int i = 0; i < one.Length; i++) Assert.True(MathF.Abs(one[i] - two[one.Length + i]) <= 1e-4f, $"pixel {i}: {one[i]} vs {two[one.Length + i]}");
    }

    [Fact]
    public void Bad_generation_requests_are_clear_errors_checked_once_at_the_api()
    {
        var p = new TextToImage(Tiny(), "tiny");
        string Error(GenerationRequest r) => Assert.Throws<ArgumentException>(() => p.Generate(r)).Message;
        Assert.Contains("steps must be between 1 and 1000 (the model's schedule), got 0", Error(new("x") { Steps = 0 }));
        Assert.Contains("count (-n) must be between 1 and 256, got 1000", Error(new("x") { Count = 1000 }));
        Assert.Contains("guidance (--cfg) must be between 0 and 50", Error(new("x") { Guidance = float.NaN }));
        Assert.Contains("unknown sampler 'plms'", Error(new("x") { Sampler = "plms" }));
        Assert.Contains("shorten it or pass --truncate", Error(new(string.Join(" ", Enumerable.Repeat("circle", 40)))));
        Assert.Contains("reranking (candidates) needs a CLIP model", Error(new("x") { Candidates = 4 }));
        Assert.Contains("keep at most as many as are drawn", Error(new("x") { Candidates = 2, Count = 3 }));
        // Truncation is the request's choice: the prompt is cut to the context and generation goes on.
        var cut = p.Generate(new(string.Join(" ", Enumerable.Repeat("circle", 40))) { Truncate = true, Steps = 1 });
        Assert.NotEqual(string.Join(" ", Enumerable.Repeat("circle", 40)), cut.Prompt);
    }

    [Fact]
    public void Progress_reports_every_step_with_previews_and_cancellation_stops_within_a_step()
    {
        var p = new TextToImage(Tiny(), "tiny");
        var seen = new List<GenerationProgress>();
        var r = p.Generate(new("a red circle") { Steps = 4, Count = 2, PreviewEvery = 2 }, new Sync(seen.Add));
        Assert.Equal([1, 2, 3, 4], seen.Select(s => s.Step));
        Assert.All(seen, s => Assert.Equal(4, s.Total));
        Assert.Equal([false, true, false, true], seen.Select(s => s.Preview != null));
        Assert.Equal(16, seen[1].Preview!.Width);
        // The last preview is the first image's clean estimate at the end: the image itself.
        Assert.Equal(r.Images[0].Image.Rgba, seen[3].Preview!.Rgba);

        using var cts = new CancellationTokenSource();
        int steps = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => p.Generate(new("a red circle") { Steps = 10 },
            new Sync(_ => { if (++steps == 2) cts.Cancel(); }), cts.Token));
        Assert.Equal(2, steps);   // the step after the cancel never ran
        using var before = new CancellationTokenSource();
        before.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => p.Generate(new("x"), null, before.Token));
    }

    [Fact]
    public void Results_save_the_pngs_the_cli_writes_and_regenerate_from_their_metadata()
    {
        var model = Tiny(3);
        var dir = Directory.CreateTempSubdirectory("pictor-api").FullName;
        model.Save(dir);
        var p = TextToImage.Load(dir);
        var r = p.Generate(new("two blue squares") { Steps = 2, Count = 3, Seed = 9 });
        Assert.Equal(3, r.Images.Count);
        Assert.Equal([9UL, 10UL, 11UL], r.Images.Select(i => i.Parameters.Seed));
        string file = Path.Combine(dir, "b.png");
        r.Images[1].Save(file);
        var meta = Imaging.Png.GenerationParameters.FromPng(Imaging.Png.PngDecoder.DecodeFile(file))!;
        Assert.Equal((3, 1, dir, p.WeightsHash), (meta.BatchSize, meta.BatchIndex, meta.Model, meta.ModelHash));
        Assert.Equal(r.Images[1].Image.Rgba, p.Regenerate(meta).Rgba);
        r.SaveGrid(Path.Combine(dir, "grid.png"));
        var grid = Imaging.Png.GenerationParameters.FromPng(Imaging.Png.PngDecoder.DecodeFile(Path.Combine(dir, "grid.png")))!;
        Assert.Equal(r.Grid().Rgba, p.Regenerate(grid).Rgba);
        Assert.Contains("came from another model", Assert.Throws<ArgumentException>(() => p.Regenerate(meta with
        {
            Width = 8,
        })).Message);
    }

    private sealed class Sync(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }

    [Fact]
    public void Save_then_load_gives_the_same_model_and_mismatches_are_named()
    {
        var p = Tiny(3);
        var dir = Directory.CreateTempSubdirectory("pictor-pipe").FullName;
        p.Save(dir);
        var q = DiffusionPipeline.Load(dir);
        Assert.Equal(p.WeightsHash, q.WeightsHash);
        var o = new GenerationRequest("two blue squares") { Steps = 3 };
        Assert.Equal(p.Generate(o).ToArray(), q.Generate(o).ToArray());
        // A config whose UNet differs: the weights no longer fit, and the error names the parameter.
        var cfg = DiffusionConfig.FromJson(File.ReadAllText(Path.Combine(dir, "config.json")), "x");
        File.WriteAllText(Path.Combine(dir, "config.json"), (cfg with { Unet = cfg.Unet with { Channels = [16, 48] } }).ToJson());
        var e = Assert.ThrowsAny<Exception>(() => DiffusionPipeline.Load(dir));
        Assert.Contains("shape", e.Message);
        Assert.Equal("unet.channels: [16,32] vs [16,48]", DiffusionConfig.FirstDifference(cfg, cfg with { Unet = cfg.Unet with { Channels = [16, 48] } }));
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"format\": \"something-else\"}");
        Assert.Contains("is not a pictor-diffusion config", Assert.Throws<FormatException>(() => DiffusionPipeline.Load(dir)).Message);
        Assert.Contains("does not exist", Assert.Throws<DirectoryNotFoundException>(() => DiffusionPipeline.Load(Path.Combine(dir, "nope"))).Message);
        File.Delete(Path.Combine(dir, "model.safetensors"));
        File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJson());
        Assert.Contains("no model.safetensors", Assert.Throws<FileNotFoundException>(() => DiffusionPipeline.Load(dir)).Message);
    }

    [Fact]
    public void Generation_parameters_round_trip_with_batch_fields()
    {
        var g = new GenerationParameters("a cat", "blurry", 20, "dpm++", 3f, 12, 32, 32, "abcdef0123", "models/emoji", 0.5f, 4, 2, 10);
        var img = new Imaging.Image(2, 2);
        var dir = Directory.CreateTempSubdirectory("pictor-meta").FullName;
        img.Save(Path.Combine(dir, "a.png"), g.ToPngText());
        Assert.Equal(g, GenerationParameters.FromPng(PngDecoder.DecodeFile(Path.Combine(dir, "a.png"))));
    }
}
