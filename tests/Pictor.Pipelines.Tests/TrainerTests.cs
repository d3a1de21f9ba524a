using Pictor.Engine.IO;
using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Tests;

/// <summary>The diffusion trainer on a 40-image shapes set and the tiny preset at 16x16.</summary>
[Collection("BufferPool")]
public class TrainerTests
{
    internal static readonly Lazy<string> Data = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("pictor-train-data").FullName;
        Shapes.WriteDataset(dir, 40, seed: 5);
        return dir;
    });

    private static TrainOptions Options(int steps) => new()
    {
        Data = Data.Value, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 8, Steps = steps, Lr = 2e-3f, Warmup = 2,
        ValEvery = 2, CkptEvery = 2, Keep = 2, ValImages = 4, Patience = 0, Seed = 9,
    };

    internal static string NewRun() => Path.Combine(Directory.CreateTempSubdirectory("pictor-run").FullName, "run");

    internal static Dictionary<string, float[]> Tensors(string file)
    {
        var f = SafeTensorsFile.Read(file);
        return f.Tensors.ToDictionary(t => t.Name, t => f.ReadFloat32(t.Name));
    }

    /// <summary>For a diffusion training option: a tiny 6-step run with <paramref name="on"/> stores
    /// <paramref name="storedJson"/> in train.json, stopping at 3 and resuming ends bit-identical to running straight,
    /// and the same run with <paramref name="off"/> ends with other weights (so the option does something).</summary>
    internal static void AssertOptionStoredResumesExactlyAndMatters(Func<TrainOptions, TrainOptions> on, Func<TrainOptions, TrainOptions> off, string storedJson)
    {
        var opt = on(new TrainOptions
        {
            Data = Data.Value, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 8, Steps = 6, Lr = 2e-3f, Warmup = 2,
            ValEvery = 2, CkptEvery = 2, Keep = 2, ValImages = 4, Patience = 0, Seed = 9,
        });
        string straight = NewRun(), split = NewRun(), plain = NewRun();
        DiffusionTrainer.Start(straight, opt, new TrainControl());
        Assert.Contains(storedJson, File.ReadAllText(Path.Combine(straight, "train.json")));
        DiffusionTrainer.Start(split, opt, new TrainControl(StopAtStep: 3));
        DiffusionTrainer.Resume(split, new TrainControl());
        var a = Tensors(Path.Combine(straight, "checkpoints", "step-0000006.safetensors"));
        var b = Tensors(Path.Combine(split, "checkpoints", "step-0000006.safetensors"));
        foreach (var k in a.Keys) Assert.True(a[k].AsSpan().SequenceEqual(b[k]), $"{k} differs after resume");
        DiffusionTrainer.Start(plain, off(opt), new TrainControl());
        Assert.NotEqual(a["model.unet.conv_in.weight"], Tensors(Path.Combine(plain, "checkpoints", "step-0000006.safetensors"))["model.unet.conv_in.weight"]);
    }

    [Fact]
    public void Resume_continues_bit_exactly()
    {
        // 36 training images in batches of 8: the run crosses an epoch boundary before and after the stop.
        string straight = NewRun(), split = NewRun();
        DiffusionTrainer.Start(straight, Options(10), new TrainControl());
        var first = DiffusionTrainer.Start(split, Options(10), new TrainControl(StopAtStep: 6));
        Assert.Equal(6, first.Step);
        var second = DiffusionTrainer.Resume(split, new TrainControl());
        Assert.Equal(10, second.Step);
        var a = Tensors(Path.Combine(straight, "checkpoints", "step-0000010.safetensors"));
        var b = Tensors(Path.Combine(split, "checkpoints", "step-0000010.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        Assert.Contains(a.Keys, k => k.StartsWith("ema.", StringComparison.Ordinal));
        Assert.Contains(a.Keys, k => k.StartsWith("optim.m.", StringComparison.Ordinal));
        foreach (var k in a.Keys) Assert.True(a[k].AsSpan().SequenceEqual(b[k]), $"{k} differs after resume");
        Assert.Equal(File.ReadAllText(Path.Combine(straight, "log.csv")), File.ReadAllText(Path.Combine(split, "log.csv")));
        // And the weights moved: training happened.
        Assert.NotEqual(a["model.unet.conv_in.weight"], Tensors(Path.Combine(straight, "checkpoints", "step-0000008.safetensors"))["model.unet.conv_in.weight"]);
    }

    [Fact]
    public void A_run_writes_checkpoints_samples_curves_and_a_loadable_model()
    {
        string run = NewRun();
        var r = DiffusionTrainer.Start(run, Options(6), new TrainControl());
        Assert.Equal("reached --steps", r.StopReason);
        var ckpts = Directory.GetFiles(Path.Combine(run, "checkpoints")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["step-0000004.safetensors", "step-0000006.safetensors"], ckpts);   // --keep 2
        Assert.True(File.Exists(Path.Combine(run, "best.safetensors")));
        Assert.Equal(3, Directory.GetFiles(Path.Combine(run, "samples")).Length);
        var loss = Image.Load(Path.Combine(run, "loss.png"));
        Assert.Equal(480, loss.Width);
        Assert.Contains(Enumerable.Range(0, loss.Width * loss.Height), i => loss.Rgba[4 * i] == 240 && loss.Rgba[4 * i + 1] == 130);   // the val curve is drawn
        var lines = File.ReadAllLines(Path.Combine(run, "log.csv"));
        Assert.Equal("step,train_loss,val_loss", lines[0]);
        Assert.Equal(4, lines.Length);
        var pipe = DiffusionPipeline.Load(run);   // a run directory loads its exported model/
        Assert.Equal(16, pipe.Config.ImageSize);
        Assert.Equal([1, 3, 16, 16], pipe.Generate(new GenerationRequest("a red circle") { Steps = 2 }).Shape);
    }

    [Fact]
    public void Training_lowers_the_validation_loss()
    {
        string run = NewRun();
        DiffusionTrainer.Start(run, Options(30) with { ValEvery = 10, CkptEvery = 30, ValImages = 4 }, new TrainControl());
        var vals = File.ReadAllLines(Path.Combine(run, "log.csv")).Skip(1).Select(l => double.Parse(l.Split(',')[2], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(vals[^1] < 0.8 * vals[0], $"val loss went {string.Join(" -> ", vals)}");
    }

    [Fact]
    public void Run_misuse_is_a_clear_error()
    {
        string run = NewRun();
        DiffusionTrainer.Start(run, Options(2), new TrainControl());
        Assert.Contains("already holds a training run; continue it with --resume", Assert.Throws<ArgumentException>(() => DiffusionTrainer.Start(run, Options(2), new TrainControl())).Message);
        var e = Assert.Throws<ArgumentException>(() => DiffusionTrainer.Resume(run, new TrainControl(), Options(2) with { Batch = 16 }, ["batch", "steps"]));
        Assert.Contains("batch: run has 8, command line says 16", e.Message);
        Assert.DoesNotContain("steps:", e.Message);
        Assert.Contains("has no train.json", Assert.Throws<FileNotFoundException>(() => DiffusionTrainer.Resume(Path.GetDirectoryName(run)!, new TrainControl())).Message);
        Assert.Contains("must hold train/ and val/", Assert.Throws<DirectoryNotFoundException>(() => DiffusionTrainer.Start(NewRun(), Options(2) with { Data = run }, new TrainControl())).Message);
        Assert.Contains("unknown --preset 'huge'", Assert.Throws<ArgumentException>(() => DiffusionTrainer.Start(NewRun(), Options(2) with { Preset = "huge" }, new TrainControl())).Message);
        // A damaged checkpoint names itself.
        var ck = DiffusionTrainer.LatestCheckpoint(run)!;
        File.WriteAllBytes(ck, [1, 2, 3]);
        Assert.Contains(Path.GetFileName(ck), Assert.ThrowsAny<FormatException>(() => DiffusionTrainer.Resume(run, new TrainControl())).Message);
    }
}
