using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Vq;

namespace Pictor.Pipelines.Tests;

/// <summary>'pictor train dalle' on a tiny VQ-VAE's tokens of the 40-image shapes set: it learns, exports a model that
/// 'generate' loads like a diffusion one, and resumes bit-exactly.</summary>
[Collection("BufferPool")]
public class DalleTrainerTests
{
    private static readonly Lazy<string> Vq = new(() =>
    {
        string run = TrainerTests.NewRun();
        VqTrainer.Start(run, new TrainOptions
        {
            Data = TrainerTests.Data.Value, Preset = "tiny", ImageSize = 16, Batch = 8, Steps = 6, Lr = 3e-3f, Warmup = 1,
            ValEvery = 6, CkptEvery = 6, ValImages = 4, Patience = 0, EmaDecay = 0f,
        }, new TrainControl());
        return run;
    });

    private static TrainOptions Options(int steps) => new()
    {
        Data = TrainerTests.Data.Value, Vqvae = Vq.Value, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 8, Steps = steps,
        Lr = 3e-3f, Warmup = 2, ValEvery = 2, CkptEvery = 2, Keep = 2, ValImages = 4, Patience = 0, Seed = 3,
    };

    [Fact]
    public void Training_lowers_the_image_token_loss_and_the_model_generates_deterministically()
    {
        string run = TrainerTests.NewRun();
        DalleTrainer.Start(run, Options(30) with { ValEvery = 10, CkptEvery = 30, EmaDecay = 0.9f }, new TrainControl());
        var vals = File.ReadAllLines(Path.Combine(run, "log.csv")).Skip(1).Select(l => double.Parse(l.Split(',')[2], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(vals[1] < vals[0] && vals[2] < vals[1] && vals[2] < vals[0] - 0.1, $"val loss went {string.Join(" -> ", vals)}");
        Assert.True(vals[0] < Math.Log(32), $"the val loss {vals[0]} should be below ln(32): image slots score over the 32 codes only");

        var pipe = TextToImage.Load(run);
        Assert.Equal("dalle", pipe.Family);
        var o = new GenerationRequest("a red circle") { Sampler = pipe.DefaultSampler, Steps = pipe.DefaultSteps, Seed = 4, Count = 3, TopK = 10 };
        var a = pipe.Pipeline.Generate(o).ToArray(); var b = pipe.Pipeline.Generate(o).ToArray();
        Assert.Equal(3 * 3 * 16 * 16, a.Length);
        Assert.Equal(a, b);
        Assert.All(a, x => Assert.InRange(x, -1f, 1f));
        Assert.NotEqual(a, pipe.Pipeline.Generate(o with { Seed = 5 }).ToArray());
        Assert.Contains("is a diffusion sampler", Assert.Throws<ArgumentException>(() => pipe.Pipeline.Generate(o with { Sampler = "ddim" })).Message);
        Assert.True(Directory.Exists(Path.Combine(run, "model", DallePipeline.VqDir)));    // the model directory is self-contained
        Assert.True(File.Exists(Path.Combine(run, VqTrainer.CodebookFile)));   // the training tokens' codebook use
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.2f)]   // the dropout masks come from the checkpointed rng, so they replay too
    public void Resume_continues_bit_exactly(float dropout)
    {
        string straight = TrainerTests.NewRun(), split = TrainerTests.NewRun();
        DalleTrainer.Start(straight, Options(8) with { Dropout = dropout }, new TrainControl());
        Assert.Equal(4, DalleTrainer.Start(split, Options(8) with { Dropout = dropout }, new TrainControl(StopAtStep: 4)).Step);
        Assert.Equal(8, DalleTrainer.Resume(split, new TrainControl()).Step);
        var x = TrainerTests.Tensors(Path.Combine(straight, "checkpoints", "step-0000008.safetensors"));
        var y = TrainerTests.Tensors(Path.Combine(split, "checkpoints", "step-0000008.safetensors"));
        Assert.Equal(x.Keys.Order(), y.Keys.Order());
        foreach (var k in x.Keys) Assert.True(x[k].AsSpan().SequenceEqual(y[k]), $"{k} differs after resume");
        Assert.NotEqual(x["model.row_pos"], TrainerTests.Tensors(Path.Combine(straight, "checkpoints", "step-0000006.safetensors"))["model.row_pos"]);
    }

    [Fact]
    public void A_missing_or_mismatched_tokenizer_is_a_clear_error()
    {
        Assert.Contains("needs --vqvae RUN", Assert.Throws<ArgumentException>(() => DalleTrainer.Start(TrainerTests.NewRun(), Options(2) with { Vqvae = "" }, new TrainControl())).Message);
        Assert.Contains("pass --size 16", Assert.Throws<ArgumentException>(() => DalleTrainer.Start(TrainerTests.NewRun(), Options(2) with { ImageSize = 32 }, new TrainControl())).Message);
        Assert.Contains("does not exist", Assert.Throws<DirectoryNotFoundException>(() => DalleTrainer.Start(TrainerTests.NewRun(), Options(2) with { Vqvae = "/nonexistent/vq" }, new TrainControl())).Message);
        Assert.Contains("--dropout is used by 'train dalle' only", Assert.Throws<ArgumentException>(() => DiffusionTrainer.Start(TrainerTests.NewRun(), Options(2) with { Dropout = 0.1f }, new TrainControl())).Message);
    }
}
