using Pictor.Engine;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Vae;
using Pictor.Text;

namespace Pictor.Pipelines.Tests;

/// <summary>The conditional VAE baseline on the 40-image shapes set, tiny preset at 16x16.</summary>
[Collection("BufferPool")]
public class VaeTests
{
    private static TrainOptions Options(int steps) => new()
    {
        Model = "vae", Data = TrainerTests.Data.Value, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 8, Steps = steps,
        Lr = 2e-3f, Warmup = 2, ValEvery = 5, CkptEvery = 5, Keep = 2, ValImages = 16, Patience = 0, Seed = 4,
    };

    [Fact]
    public void Training_improves_the_elbo_and_the_kl_stays_positive()
    {
        string run = TrainerTests.NewRun();
        var log = new List<string>();
        var r = VaeTrainer.Start(run, Options(30), new TrainControl(Log: log.Add));
        Assert.Equal(30, r.Step);
        var (train, val) = TrainingSession.LoadSplits(Options(30), new TrainControl());
        var trained = VaePipeline.Load(run);
        var fresh = new VaePipeline("tiny", 16, trained.Config, trained.Tokenizer, new Rng(4));
        var before = VaeTrainer.Elbo(fresh, val, 16, 77);
        var after = VaeTrainer.Elbo(trained, val, 16, 77);
        Assert.True(after.Elbo < 0.8 * before.Elbo, $"-ELBO per dimension {before.Elbo:G4} -> {after.Elbo:G4}");
        Assert.True(after.Kl > 0, $"KL {after.Kl}");
        Assert.Contains(log, l => l.StartsWith("step 30: ", StringComparison.Ordinal) && l.Contains("KL"));
        Assert.True(train.Count > 0);
    }

    [Fact]
    public void The_kl_term_is_the_closed_form_of_the_encoder_gaussians()
    {
        var tok = BpeTokenizer.Train(["a red circle", "a blue square"], 300);
        var vae = new VaePipeline("tiny", 16, VaePipeline.FromPreset("tiny", tok.VocabSize, 16), tok, new Rng(1));
        var rng = new Rng(2);
        var x = new float[2 * 3 * 16 * 16]; rng.FillUniform(x, -1f, 1f);
        int zc = vae.Latent;
        var eps = new float[2 * zc]; rng.FillNormal(eps);
        var ids = vae.Ids(["a red circle", "a blue square"]);
        using var _ = Autograd.NoGrad();
        var (_, _, kl) = vae.Model.Loss(Tensor.FromArray(x, 2, 3, 16, 16), ids, Tensor.FromArray(eps, 2, zc), 1f);
        var (mu, logVar) = vae.Model.Encode(Tensor.FromArray(x, 2, 3, 16, 16), vae.Model.EncodeText(ids));
        var m = Ops.Contiguous(mu).ToArray(); var lv = Ops.Contiguous(logVar).ToArray();
        double expect = 0;
        for (int i = 0; i < m.Length; i++) expect += 0.5 * ((double)m[i] * m[i] + Math.Exp(lv[i]) - 1 - lv[i]);
        expect /= 2;   // per image
        Assert.True(Math.Abs(kl.Item() - expect) <= 1e-4 * Math.Abs(expect) + 1e-6, $"KL {kl.Item()} vs {expect}");
        Assert.Equal(0f, VaeTrainer.KlWeight(0, 1f, 0) - 1f);
        Assert.Equal(0.5f, VaeTrainer.KlWeight(4, 1f, 10));
        Assert.Equal(1f, VaeTrainer.KlWeight(500, 1f, 10));
    }

    [Fact]
    public void Resume_continues_bit_exactly()
    {
        string straight = TrainerTests.NewRun(), split = TrainerTests.NewRun();
        VaeTrainer.Start(straight, Options(10), new TrainControl());
        Assert.Equal(5, VaeTrainer.Start(split, Options(10), new TrainControl(StopAtStep: 5)).Step);
        Assert.Equal(10, VaeTrainer.Resume(split, new TrainControl()).Step);
        var a = TrainerTests.Tensors(Path.Combine(straight, "checkpoints", "step-0000010.safetensors"));
        var b = TrainerTests.Tensors(Path.Combine(split, "checkpoints", "step-0000010.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var k in a.Keys) Assert.True(a[k].AsSpan().SequenceEqual(b[k]), $"{k} differs after resume");
    }

    [Fact]
    public void Generation_goes_through_the_library_with_metadata_and_refuses_what_a_vae_cannot_do()
    {
        string run = TrainerTests.NewRun();
        VaeTrainer.Start(run, Options(5), new TrainControl());
        var t2i = TextToImage.Load(run);
        Assert.Equal("vae", t2i.Family);
        var result = t2i.Generate(new GenerationRequest("a red circle") { Count = 3, Seed = 11 });
        Assert.Equal(3, result.Images.Count);
        Assert.NotEqual(result.Images[0].Image.ToTensor().ToArray(), result.Images[1].Image.ToTensor().ToArray());
        var again = t2i.Regenerate(result.Images[1].Parameters);
        Assert.Equal(result.Images[1].Image.ToTensor().ToArray(), again.ToTensor().ToArray());
        // A lower temperature draws z closer to the prior's mean: another image from the same seed.
        var cool = t2i.Generate(new GenerationRequest("a red circle") { Seed = 11, Temperature = 0.3f });
        Assert.NotEqual(result.Images[0].Image.ToTensor().ToArray(), cool.Images[0].Image.ToTensor().ToArray());
        var e = Assert.Throws<ArgumentException>(() => t2i.Generate(new GenerationRequest("a red circle") { Guidance = 3f }));
        Assert.Contains("a VAE has no classifier-free guidance", e.Message);
        e = Assert.Throws<ArgumentException>(() => t2i.Generate(new GenerationRequest("a red circle") { Steps = 20 }));
        Assert.Contains("one decoder call", e.Message);
        e = Assert.Throws<ArgumentException>(() => t2i.Generate(new GenerationRequest("a red circle") { Sampler = "ddim" }));
        Assert.Contains("drop --sampler", e.Message);
    }
}
