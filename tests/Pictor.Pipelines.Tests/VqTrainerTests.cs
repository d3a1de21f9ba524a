using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Vq;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

/// <summary>'pictor train vqvae' on the 40-image shapes set at 16x16 with the tiny preset: it learns, reports PSNR and
/// codebook use, writes reconstruction grids and a loadable tokenizer, and resumes bit-exactly.</summary>
[Collection("BufferPool")]
public class VqTrainerTests
{
    private static TrainOptions Options(int steps) => new()
    {
        Data = TrainerTests.Data.Value, Preset = "tiny", ImageSize = 16, Batch = 8, Steps = steps, Lr = 3e-3f, Warmup = 2,
        ValEvery = 2, CkptEvery = 2, Keep = 2, ValImages = 8, Patience = 0, Seed = 4, EmaDecay = 0f,
    };

    [Theory]
    [InlineData("tiny")]
    [InlineData("dvae-tiny")]
    public void Training_improves_reconstructions_and_exports_a_tokenizer(string preset)
    {
        string run = TrainerTests.NewRun();
        var r = VqTrainer.Start(run, Options(40) with { Preset = preset, ValEvery = 10, CkptEvery = 20 }, new TrainControl());
        Assert.Equal(40, r.Step);
        var vals = File.ReadAllLines(Path.Combine(run, "log.csv")).Skip(1).Select(l => double.Parse(l.Split(',')[2], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(4, vals.Count);
        Assert.True(vals[^1] < 0.75 * vals[0], $"val MSE went {string.Join(" -> ", vals)}");

        // The exported tokenizer: 16x16 images to 4x4 codes and back, scoring what metrics.json says.
        var vq = VqModel.Load(run);
        Assert.Equal(4, vq.Grid);
        var (_, val) = ImageCaptionSet.LoadSplits(TrainerTests.Data.Value, 16);
        var report = VqTrainer.Evaluate(vq, val, 8);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "model", VqTrainer.MetricsFile)))!;
        Assert.Equal(r.BestStep, (long)metrics["step"]!);
        Assert.Equal(report.Psnr, (double)metrics["psnr_db"]!, 1e-9);
        Assert.Equal(report.Mse, r.BestVal, 1e-12);
        Assert.InRange(report.Psnr, 10.0, 60.0);
        Assert.InRange(report.Used, 2.0 / 32, 1.0);                    // restarts keep more than one entry alive
        Assert.InRange(report.Perplexity, 1.5, 32.0);
        Assert.Equal(report.Perplexity, report.Codebook.Perplexity, 9);   // the health report counts the same codes
        Assert.Equal(report.Codebook.Codes - report.Codebook.Used, report.Codebook.Dead);
        Assert.Equal(32 - (int)Math.Round(report.Used * 32), (int)metrics["dead_codes"]!);
        Assert.True(File.Exists(Path.Combine(run, VqTrainer.CodebookFile)));

        var x = new float[2 * 3 * 16 * 16];
        val.Read(0, x.AsSpan(0, 768)); val.Read(1, x.AsSpan(768, 768));
        var codes = vq.Net.Encode(Tensor.FromArray(x, 2, 3, 16, 16));
        Assert.Equal([2, 4, 4], codes.Shape);
        var back = vq.Net.Decode(codes);
        Assert.Equal([2, 3, 16, 16], back.Shape);
        Tensor recon;
        using (Autograd.NoGrad()) recon = vq.Net.Forward(Tensor.FromArray(x, 2, 3, 16, 16)).Reconstruction;
        // Encode then decode is the training forward's reconstruction (which adds z + (q - z): rounding only).
        var R = recon.ToArray(); var B = back.ToArray();
        for (int i = 0; i < R.Length; i++) Assert.Equal((double)R[i], B[i], 1e-4);

        // Reconstruction grid: 2 rows (inputs, reconstructions) of min(8, val images) tiles.
        var grid = Image.Load(Directory.GetFiles(Path.Combine(run, "samples")).Order().Last());
        int n = Math.Min(8, val.Count);
        Assert.Equal(n * 16 + (n + 1) * 2, grid.Width);
        Assert.Equal(2 * 16 + 3 * 2, grid.Height);
    }

    [Theory]
    [InlineData("tiny")]
    [InlineData("dvae-tiny")]
    public void Resume_continues_bit_exactly_codebook_included(string preset)
    {
        string straight = TrainerTests.NewRun(), split = TrainerTests.NewRun();
        VqTrainer.Start(straight, Options(10) with { Preset = preset }, new TrainControl());
        Assert.Equal(6, VqTrainer.Start(split, Options(10) with { Preset = preset }, new TrainControl(StopAtStep: 6)).Step);
        Assert.Equal(10, VqTrainer.Resume(split, new TrainControl()).Step);
        var a = TrainerTests.Tensors(Path.Combine(straight, "checkpoints", "step-0000010.safetensors"));
        var b = TrainerTests.Tensors(Path.Combine(split, "checkpoints", "step-0000010.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        Assert.Contains("model.quantizer.codebook", a.Keys);
        foreach (var k in a.Keys) Assert.True(a[k].AsSpan().SequenceEqual(b[k]), $"{k} differs after resume");
        Assert.NotEqual(a["model.quantizer.codebook"], TrainerTests.Tensors(Path.Combine(straight, "checkpoints", "step-0000008.safetensors"))["model.quantizer.codebook"]);
    }

    [Fact]
    public void Mixing_families_is_a_clear_error()
    {
        string run = TrainerTests.NewRun();
        VqTrainer.Start(run, Options(2), new TrainControl());
        Assert.Contains("is a vqvae run; continue it with 'pictor train vqvae --resume", Assert.Throws<ArgumentException>(() => DiffusionTrainer.Resume(run, new TrainControl())).Message);
        Assert.Contains("not a pictor-diffusion config", Assert.ThrowsAny<Exception>(() => Diffusion.DiffusionPipeline.Load(run)).Message);
        Assert.Contains("unknown --preset 'xs' for 'train vqvae'", Assert.Throws<ArgumentException>(() => VqTrainer.Start(TrainerTests.NewRun(), Options(2) with { Preset = "xs" }, new TrainControl())).Message);
    }
}
