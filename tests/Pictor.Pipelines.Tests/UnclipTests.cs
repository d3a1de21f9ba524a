using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Png;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Unclip;

namespace Pictor.Pipelines.Tests;

/// <summary>unCLIP (#34) on the 40-image shapes set at 16x16: a tiny CLIP, then the tiny prior and decoder.</summary>
[Collection("BufferPool")]
public class UnclipTests
{
    /// <summary>A tiny CLIP trained briefly on the set (its embeddings tell the images apart), and a tiny decoder
    /// trained on its embeddings, shared by the tests.</summary>
    private static readonly Lazy<(string Clip, string Decoder)> Trained = new(() =>
    {
        string clip = TrainerTests.NewRun();
        ClipTrainer.Start(clip, new TrainOptions { Model = "clip", Data = TrainerTests.Data.Value, Preset = "tiny",
            ImageSize = 16, Context = 12, Batch = 16, Steps = 40, Lr = 2e-3f, Warmup = 2, ValEvery = 40, CkptEvery = 40,
            Keep = 1, ValImages = 4, Patience = 0, EmaDecay = 0f }, new TrainControl());
        string decoder = TrainerTests.NewRun();
        DecoderTrainer.Start(decoder, Options("decoder", clip, 60), new TrainControl());
        return (clip, decoder);
    });

    private static TrainOptions Options(string family, string clip, int steps) => new()
    {
        Model = family, Data = TrainerTests.Data.Value, Clip = clip, Preset = "tiny", ImageSize = 16, Context = 12,
        Batch = 8, Steps = steps, Lr = 3e-3f, MinLr = 1e-3f, Warmup = 5, ValEvery = Math.Min(steps, 50),
        CkptEvery = steps, Keep = 1, ValImages = 8, Patience = 0, Seed = 3, EmaDecay = 0.9f,
    };

    [Fact]
    public void The_prior_loss_falls_and_its_model_holds_the_decoder_it_was_given()
    {
        var (clip, decoder) = Trained.Value;
        string run = TrainerTests.NewRun();
        var log = new List<string>();
        var opt = Options("prior", clip, 60) with { Decoder = Path.Combine(decoder, "model"), ValEvery = 10 };
        PriorTrainer.Start(run, opt, new TrainControl(Log: log.Add));
        var vals = log.Where(l => l.Contains("val loss", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split("val loss ")[1].Split([',', ' '])[0],
                System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(6, vals.Count);
        Assert.True(vals[^1] < 0.8 * vals[0], $"prior val loss {string.Join(" -> ", vals)}");
        var t2i = TextToImage.Load(Path.Combine(run, "model"));
        Assert.Equal("unclip", t2i.Family);
        var a = t2i.Generate(new GenerationRequest("a red circle") { Seed = 5, Count = 2 });
        var b = t2i.Generate(new GenerationRequest("a red circle") { Seed = 5, Count = 2 });
        Assert.Equal(a.Images[1].Image.Rgba, b.Images[1].Image.Rgba);
        Assert.Equal(a.Images[1].Image.Rgba, t2i.Regenerate(a.Images[1].Parameters).Rgba);
        var err = Assert.Throws<ArgumentException>(() =>
            t2i.Generate(new GenerationRequest("a red circle") { NegativePrompt = "blue" }));
        Assert.Contains("no negative prompt", err.Message);
        // 'pictor export RUN --step N' writes the prior part and keeps the decoder the run was given
        string exported = Path.Combine(Directory.CreateTempSubdirectory("pictor-export").FullName, "m");
        CheckpointExport.Export(run, "60", exported);
        var fromStep = TextToImage.Load(exported);
        Assert.Equal(2, fromStep.Generate(new GenerationRequest("a red circle") { Count = 2 }).Images.Count);
        Assert.Equal(File.ReadAllBytes(Path.Combine(run, "model", UnclipPipeline.DecoderFile)),
            File.ReadAllBytes(Path.Combine(exported, UnclipPipeline.DecoderFile)));
    }

    /// <summary>Eight two-colour images (top half one colour, bottom half another), the same in train/ and
    /// val/.</summary>
    private static string ColourPairs()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-colours").FullName;
        byte[][] colours = [[220, 40, 40], [40, 200, 60], [40, 60, 220], [230, 210, 40]];
        string[] names = ["red", "green", "blue", "yellow"];
        foreach (var split in new[] { "train", "val" })
        {
            Directory.CreateDirectory(Path.Combine(dir, split));
            var meta = new List<string>();
            for (int i = 0; i < 8; i++)
            {
                int top = i % 4, bottom = (i / 4 + i + 1) % 4;
                var img = new Image(16, 16);
                for (int p = 0; p < 256; p++)
                {
                    var c = colours[p < 128 ? top : bottom];
                    img.Rgba[4 * p] = c[0]; img.Rgba[4 * p + 1] = c[1]; img.Rgba[4 * p + 2] = c[2];
                    img.Rgba[4 * p + 3] = 255;
                }
                img.Save(Path.Combine(dir, split, $"{i:D6}.png"));
                meta.Add($"{{\"file_name\":\"{i:D6}.png\",\"text\":\"{names[top]} over {names[bottom]}\"}}");
            }
            File.WriteAllLines(Path.Combine(dir, split, "metadata.jsonl"), meta);
        }
        return dir;
    }

    [Fact]
    public void A_decoder_fed_an_images_own_embedding_draws_it_closer_than_fed_another_images()
    {
        var (clip, _) = Trained.Value;
        string data = ColourPairs(), decoder = TrainerTests.NewRun();
        DecoderTrainer.Start(decoder, Options("decoder", clip, 150) with { Data = data, CaptionDropout = 0f },
            new TrainControl());
        var pipe = UnclipPipeline.Load(Path.Combine(decoder, "model"));
        Assert.False(pipe.HasPrior);
        var (train, _) = ImageCaptionSet.LoadSplits(data, 16);
        const int n = 8; int per = 3 * 16 * 16;
        var x = new float[n * per];
        for (int i = 0; i < n; i++) train.Read(i, x.AsSpan(i * per, per));
        var emb = pipe.ImageEmbeddings(Tensor.FromArray(x, n, 3, 16, 16));
        int e = pipe.Config.EmbedDim;
        var shifted = new float[emb.Length];   // image i gets image (i + 1)'s embedding
        for (int i = 0; i < n; i++) emb.AsSpan(((i + 1) % n) * e, e).CopyTo(shifted.AsSpan(i * e, e));
        var s = new SamplingSettings("ddim", 20, 3f, Seed: 1);
        double[] Mse(float[] rows)   // per image
        {
            var y = pipe.Decode(rows, s).ToArray();
            var m = new double[n];
            for (int i = 0; i < y.Length; i++) m[i / per] += (y[i] - x[i]) * (y[i] - x[i]) / per;
            return m;
        }
        var own = Mse(emb); var other = Mse(shifted);
        int wins = Enumerable.Range(0, n).Count(i => own[i] < other[i]);
        string say = $"MSE from the own embedding {string.Join(" ", own.Select(v => v.ToString("F3")))}, from "
            + $"another's {string.Join(" ", other.Select(v => v.ToString("F3")))}";
        Assert.True(wins >= 7 && own.Average() < 0.8 * other.Average(), say);
        // the evaluation's figures: its variations stay nearer their input than two different images are
        var ev = Eval.VariationEval.Run(TextToImage.Load(Path.Combine(decoder, "model")), pipe.Clip, train, 8, 2,
            new GenerationRequest("") { Steps = 10 });
        Assert.True(ev.Faithfulness > ev.RandomPairs + 0.05, ev.Table());
        Assert.InRange(ev.Diversity, -1, 1);
    }

    [Fact]
    public void Variations_and_interpolations_are_deterministic_by_seed_and_verify_from_their_sources()
    {
        var (_, decoder) = Trained.Value;
        var t2i = TextToImage.Load(Path.Combine(decoder, "model"));
        var (train, _) = ImageCaptionSet.LoadSplits(TrainerTests.Data.Value, 16);
        var buf = new float[3 * 16 * 16];
        train.Read(0, buf); var a = Image.FromTensor(Tensor.FromArray(buf, 3, 16, 16));
        train.Read(1, buf); var b = Image.FromTensor(Tensor.FromArray(buf, 3, 16, 16));
        var req = new GenerationRequest("") { Count = 3, Seed = 7, Steps = 8 };
        var v1 = t2i.Vary(a, req); var v2 = t2i.Vary(a, req); var v3 = t2i.Vary(a, req with { Seed = 8 });
        Assert.Equal(v1.Images[2].Image.Rgba, v2.Images[2].Image.Rgba);
        Assert.NotEqual(v1.Images[0].Image.Rgba, v1.Images[1].Image.Rgba);   // image i from seed 7 + i
        Assert.Equal(v1.Images[1].Image.Rgba, v3.Images[0].Image.Rgba);      // seed 8 either way
        var g = v1.Images[2].Parameters;
        Assert.Equal(EditOperation.Vary, g.Edit!.Operation);
        Assert.Equal(EditParameters.PixelHash(a), g.Edit.SourceSha256);
        string file = Path.Combine(Directory.CreateTempSubdirectory("pictor-vary").FullName, "v.png");
        v1.Images[2].Save(file);
        var png = GenerationParameters.FromPng(PngDecoder.DecodeFile(file));
        Assert.Equal(v1.Images[2].Image.Rgba, t2i.RegenerateVariation(png!, a, null).Rgba);
        Assert.Contains("pass the source", Assert.Throws<ArgumentException>(() => t2i.RegenerateVariation(g, b, null))
            .Message);

        var s1 = t2i.Interpolate(a, b, 4, new GenerationRequest("") { Seed = 3, Steps = 8 });
        var s2 = t2i.Interpolate(a, b, 4, new GenerationRequest("") { Seed = 3, Steps = 8 });
        Assert.Equal(4, s1.Images.Count);
        Assert.Equal(Variations.Strip(s1).Rgba, Variations.Strip(s2).Rgba);
        Assert.All(s1.Images, i => Assert.Equal(3UL, i.Parameters.Seed));   // the seed is held
        var grid = s1.GridParameters;
        Assert.Equal(Variations.Strip(s1).Rgba, t2i.RegenerateVariation(grid, a, b).Rgba);
        Assert.Contains("--source2", Assert.Throws<ArgumentException>(() => t2i.RegenerateVariation(grid, a, null))
            .Message);
        // a larger source is resized to the CLIP's size, and says so
        var big = a.Resize(32, 32);
        Assert.True(t2i.Vary(big, req with { Count = 1 }).Images[0].Parameters.Edit!.Resized);
    }

    [Fact]
    public void Slerp_runs_on_the_sphere_between_its_ends()
    {
        var a = new float[] { 1, 0, 0 }; var b = new float[] { 0, 1, 0 };
        Assert.Equal(a, UnclipPipeline.Slerp(a, b, 0));
        var m = UnclipPipeline.Slerp(a, b, 0.5);
        Assert.Equal(MathF.Sqrt(0.5f), m[0], 5); Assert.Equal(MathF.Sqrt(0.5f), m[1], 5);
        var end = UnclipPipeline.Slerp(a, b, 1);
        Assert.Equal(0f, end[0], 5); Assert.Equal(1f, end[1], 5);
        var same = UnclipPipeline.Slerp(a, a, 0.3);   // the degenerate case stays a unit vector
        Assert.Equal(1f, same[0], 5);
    }

    [Fact]
    public void Wrong_families_and_missing_parts_are_one_line_errors_naming_what_is_lacking()
    {
        var (clip, decoder) = Trained.Value;
        string diffusion = TrainerTests.NewRun();
        Diffusion.DiffusionTrainer.Start(diffusion, new TrainOptions { Data = TrainerTests.Data.Value, Preset = "tiny",
            ImageSize = 16, Context = 12, Batch = 4, Steps = 1, ValEvery = 1, CkptEvery = 1, Keep = 1, ValImages = 2,
            Patience = 0 }, new TrainControl());
        var src = new Image(16, 16);
        var d = TextToImage.Load(diffusion);
        var err = Assert.Throws<ArgumentException>(() => d.Vary(src, new GenerationRequest("")));
        Assert.Contains("no image-embedding decoder", err.Message);
        Assert.DoesNotContain('\n', err.Message);
        var dec = TextToImage.Load(Path.Combine(decoder, "model"));
        var noPrior = Assert.Throws<ArgumentException>(() => dec.Generate(new GenerationRequest("a red circle")));
        Assert.Contains("no prior", noPrior.Message);
        var need = Assert.Throws<ArgumentException>(() => Options("prior", "", 1).Validate());
        Assert.Contains("--clip-model", need.Message);
    }

    [Fact]
    public void Decoder_resume_is_bit_exact()
    {
        var (clip, _) = Trained.Value;
        string straight = TrainerTests.NewRun(), split = TrainerTests.NewRun();
        var opt = Options("decoder", clip, 6) with { CkptEvery = 3, ValEvery = 3, Keep = 2 };
        DecoderTrainer.Start(straight, opt, new TrainControl());
        Assert.Equal(3, DecoderTrainer.Start(split, opt, new TrainControl(StopAtStep: 3)).Step);
        Assert.Equal(6, DecoderTrainer.Resume(split, new TrainControl()).Step);
        var a = TrainerTests.Tensors(Path.Combine(straight, "checkpoints", "step-0000006.safetensors"));
        var b = TrainerTests.Tensors(Path.Combine(split, "checkpoints", "step-0000006.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var k in a.Keys) Assert.True(a[k].AsSpan().SequenceEqual(b[k]), $"{k} differs after resume");
    }
}
