using System.Text.Json.Nodes;
using Pictor.Engine.IO;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Vq;

namespace Pictor.Pipelines.Tests;

/// <summary>'pictor export RUN --step N|best|last --out DIR' on tiny runs: the best step reproduces the run's own
/// model/ byte for byte (the trainer's export is the oracle), another step carries that checkpoint's EMA weights and
/// loads, and misuse names the fix.</summary>
[Collection("BufferPool")]
public class CheckpointExportTests
{
    private static TrainOptions Options(int steps) => new()
    {
        Data = TrainerTests.Data.Value, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 8, Steps = steps, Lr = 2e-3f, Warmup = 2,
        ValEvery = 2, CkptEvery = 2, Keep = 3, ValImages = 4, Patience = 0, Seed = 9, EmaDecay = 0.5f,
    };

    private static string NewOut() => Path.Combine(Directory.CreateTempSubdirectory("pictor-export").FullName, "model");

    [Fact]
    public void The_best_step_reproduces_the_runs_model_and_other_steps_carry_their_own_ema()
    {
        string run = TrainerTests.NewRun();
        var r = DiffusionTrainer.Start(run, Options(6), new TrainControl());

        string best = NewOut();
        var e = CheckpointExport.Export(run, "best", best);
        Assert.Equal(r.BestStep, e.Step);
        Assert.Equal(File.ReadAllBytes(Path.Combine(run, "model", "model.safetensors")), File.ReadAllBytes(Path.Combine(best, "model.safetensors")));
        Assert.Equal(File.ReadAllText(Path.Combine(run, "model", "config.json")), File.ReadAllText(Path.Combine(best, "config.json")));
        Assert.True(File.Exists(Path.Combine(best, "tokenizer", "vocab.json")));

        // Steps 2 and 6 hold different EMA weights (decay 0.5 follows the weights closely); each export has its own.
        foreach (long step in new long[] { 2, 6 })
        {
            string dir = NewOut();
            var x = CheckpointExport.Export(run, step == 6 ? "last" : "2", dir);
            Assert.Equal(step, x.Step);
            Assert.Equal(step, (long)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, CheckpointExport.ProvenanceFile)))!["step"]!);
            var ckpt = SafeTensorsFile.Read(Path.Combine(run, "checkpoints", $"step-{step:D7}.safetensors"));
            var model = SafeTensorsFile.Read(Path.Combine(dir, "model.safetensors"));
            Assert.Equal(DiffusionConfig.Format, model.Metadata["format"]);
            foreach (var t in model.Tensors) Assert.Equal(ckpt.ReadFloat32("ema." + t.Name), model.ReadFloat32(t.Name));
            var pipe = DiffusionPipeline.Load(dir);
            Assert.Equal([1, 3, 16, 16], pipe.Generate(new GenerationRequest("a red circle") { Steps = 2 }).Shape);
        }
        var w2 = TrainerTests.Tensors(Path.Combine(run, "checkpoints", "step-0000002.safetensors"));
        var w6 = TrainerTests.Tensors(Path.Combine(run, "checkpoints", "step-0000006.safetensors"));
        Assert.NotEqual(w2["ema.unet.conv_in.weight"], w6["ema.unet.conv_in.weight"]);
    }

    [Fact]
    public void A_vqvae_export_loads_and_drops_the_other_steps_metrics()
    {
        string run = TrainerTests.NewRun();
        VqTrainer.Start(run, Options(4) with { EmaDecay = 0f }, new TrainControl());
        string dir = NewOut();
        CheckpointExport.Export(run, "2", dir);
        Assert.True(File.Exists(Path.Combine(run, "model", VqTrainer.MetricsFile)));
        Assert.False(File.Exists(Path.Combine(dir, VqTrainer.MetricsFile)));   // it scored other weights
        Assert.Equal(4, VqModel.Load(dir).Grid);
    }

    [Fact]
    public void Misuse_names_the_fix_and_writes_nothing()
    {
        string run = TrainerTests.NewRun();
        DiffusionTrainer.Start(run, Options(6) with { Keep = 2 }, new TrainControl());
        string parent = Directory.CreateTempSubdirectory("pictor-export").FullName, dir = Path.Combine(parent, "m");

        var e = Assert.Throws<FileNotFoundException>(() => CheckpointExport.Export(run, "2", dir));
        Assert.Contains("no checkpoint for step 2: it keeps steps 4, 6", e.Message);
        Assert.Contains("--step must be 'best', 'last' or a step number, got 'newest'", Assert.Throws<ArgumentException>(() => CheckpointExport.Export(run, "newest", dir)).Message);
        Assert.Empty(Directory.GetFileSystemEntries(parent));   // nothing half-written

        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "keep.txt"), "mine");
        Assert.Contains("already exists and is not empty", Assert.Throws<IOException>(() => CheckpointExport.Export(run, "best", dir)).Message);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(dir, "keep.txt")));

        Assert.Contains("has no train.json", Assert.Throws<FileNotFoundException>(() => CheckpointExport.Export(parent, "best", NewOut())).Message);
        string early = TrainerTests.NewRun();
        DiffusionTrainer.Start(early, Options(6), new TrainControl(StopAtStep: 1));
        Assert.Contains("no model/model.safetensors yet", Assert.Throws<FileNotFoundException>(() => CheckpointExport.Export(early, "last", NewOut())).Message);

        // A checkpoint from a different model is named, not silently mixed in.
        var other = Path.Combine(run, "checkpoints", "step-0000004.safetensors");
        new SafeTensorsWriter().Add("ema.something.else", new float[] { 1f }, [1]).Write(other, new Dictionary<string, string> { ["step"] = "4" });
        Assert.Contains("has no tensor 'ema.", Assert.Throws<FormatException>(() => CheckpointExport.Export(run, "4", Path.Combine(parent, "n"))).Message);
        Assert.False(Directory.Exists(Path.Combine(parent, "n")));
    }
}
