using Pictor.Engine;
using Pictor.Models.Gan;
using Pictor.Nn;
using Pictor.Nn.Optim;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Eval;
using Pictor.Pipelines.Gan;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Vae;
using Pictor.Text;

namespace Pictor.Pipelines.Tests;

/// <summary>The conditional GAN baseline on the 40-image shapes set, tiny preset at 16x16.</summary>
[Collection("BufferPool")]
public class GanTests
{
    private static TrainOptions Options(int steps) => new()
    {
        Model = "gan", Data = TrainerTests.Data.Value, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 8,
        Steps = steps, Lr = 2e-4f, MinLr = 2e-4f, DiscriminatorLr = 8e-4f, Warmup = 0, WeightDecay = 0f,
        ClipNorm = 10f, CaptionDropout = 0f, ValEvery = 5, CkptEvery = 5, Keep = 2, ValImages = 16, Patience = 0,
        Seed = 4,
    };

    [Fact]
    public void Spectral_norm_makes_the_largest_singular_value_one()
    {
        var rng = new Rng(3);
        var w = new SpectralWeight(rng, Init.Normal(rng, 0.7f, 12, 5, 3, 3));     // [12, 45], sigma well above 1
        var before = LargestSingularValue(w.Weight);
        Assert.True(before > 2, $"the raw weight's sigma {before}");
        for (int i = 0; i < 30; i++) { w.ArmPowerStep(); w.Normalized(); }
        var sigma = LargestSingularValue(w.Normalized());
        Assert.True(Math.Abs(sigma - 1) < 1e-3, $"sigma of the normalised weight {sigma:G6}, want 1 within 1e-3");
        // evaluation takes no power step: u and v stay as they are
        var u = w.U.ToArray();
        w.Train(false); w.ArmPowerStep(); w.Normalized();
        Assert.Equal(u, w.U.ToArray());
    }

    /// <summary>sqrt of the largest eigenvalue of W W^T (W read as [O, K]), by Jacobi's method in double: an oracle
    /// that shares nothing with the power iteration.</summary>
    private static double LargestSingularValue(Tensor weight)
    {
        var v = weight.ToArray(); int o = weight.Shape[0], k = v.Length / o;
        var g = new double[o, o];
        for (int i = 0; i < o; i++)
            for (int j = 0; j < o; j++)
            {
                double s = 0;
                for (int c = 0; c < k; c++) s += (double)v[i * k + c] * v[j * k + c];
                g[i, j] = s;
            }
        return Math.Sqrt(FrechetDistance.SymmetricEigen(g).Values.Max());
    }

    [Fact]
    public void The_discriminator_separates_real_images_from_a_fixed_noise_generator_in_a_few_steps()
    {
        var opt = Options(1);
        var (train, val) = TrainingSession.LoadSplits(opt, new TrainControl());
        var tok = BpeTokenizer.Train(train.Captions.SelectMany(c => c), 400);
        var cfg = GanPipeline.FromPreset("tiny", tok.VocabSize, 12);
        var disc = new ProjectionDiscriminator(cfg, new Rng(5));
        var adam = new AdamW(disc.NamedParameters(), new AdamWConfig(2e-3f, 0f, 0.9f, WeightDecay: 0f));
        var noise = new Rng(6);
        (Tensor Real, Tensor Fake, IntTensor Ids) Batch(ImageCaptionSet set, int start, int n)
        {
            var x = new float[n * 3 * 16 * 16];
            for (int i = 0; i < n; i++) set.Read((start + i) % set.Count, x.AsSpan(i * 768, 768));
            var f = new float[x.Length]; noise.FillUniform(f, -1f, 1f);             // the "generator": fresh noise
            var caps = Enumerable.Range(start, n).Select(i => set.Captions[i % set.Count][0]).ToList();
            return (Tensor.FromArray(x, n, 3, 16, 16), Tensor.FromArray(f, n, 3, 16, 16),
                tok.EncodeBatch(caps, 12, truncate: true));
        }
        for (int step = 0; step < 15; step++)
            using (TensorScope.Begin())
            {
                adam.ZeroGrad();
                var (real, fake, ids) = Batch(train, step * 8, 8);
                disc.ArmPowerSteps();
                var text = disc.EncodeText(ids);
                var s = disc.Forward(Ops.Concat([real, fake], 0), Ops.Concat([text, text], 0));
                GanTrainer.HingeLoss(Ops.Narrow(s, 0, 0, 8), Ops.Narrow(s, 0, 8, 8)).Backward();
                adam.StepOnce();
            }
        using (Autograd.NoGrad())
        {
            var (real, fake, ids) = Batch(val, 0, Math.Min(16, val.Count));
            var text = disc.EncodeText(ids);
            var r = disc.Forward(real, text).ToArray(); var f = disc.Forward(fake, text).ToArray();
            Assert.True(r.Min() > f.Max(), $"held-out real scores {string.Join(", ", r.Select(v => v.ToString("F2")))}"
                + $" against noise {string.Join(", ", f.Select(v => v.ToString("F2")))}");
        }
    }

    [Fact]
    public void Training_logs_both_losses_and_exports_the_latest_generator()
    {
        string run = TrainerTests.NewRun();
        var log = new List<string>();
        var r = GanTrainer.Start(run, Options(10), new TrainControl(Log: log.Add));
        Assert.Equal(10, r.Step);
        Assert.Equal(10, r.BestStep);                                   // the latest EMA generator is the model
        Assert.Contains(log, l => l.StartsWith("step 10: ", StringComparison.Ordinal) && l.Contains("adversary loss")
            && l.Contains("val real"));
        var csv = File.ReadAllLines(Path.Combine(run, "log.csv"));
        Assert.Equal("step,train_loss,adversary_loss,val_loss", csv[0]);
        Assert.Equal(3, csv.Length);
        Assert.True(File.Exists(Path.Combine(run, "samples", "step-0000010.png")));
        Assert.Equal("gan", TextToImage.Load(run).Family);
    }

    [Fact]
    public void Resume_continues_bit_exactly_with_both_networks_and_optimisers()
    {
        string straight = TrainerTests.NewRun(), split = TrainerTests.NewRun();
        GanTrainer.Start(straight, Options(10), new TrainControl());
        Assert.Equal(5, GanTrainer.Start(split, Options(10), new TrainControl(StopAtStep: 5)).Step);
        Assert.Equal(10, GanTrainer.Resume(split, new TrainControl()).Step);
        var a = TrainerTests.Tensors(Path.Combine(straight, "checkpoints", "step-0000010.safetensors"));
        var b = TrainerTests.Tensors(Path.Combine(split, "checkpoints", "step-0000010.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        Assert.Contains(a.Keys, k => k.StartsWith("adversary.", StringComparison.Ordinal) && k.EndsWith(".sn.u"));
        Assert.Contains(a.Keys, k => k.StartsWith("adversary_optim.m.", StringComparison.Ordinal));
        foreach (var k in a.Keys) Assert.True(a[k].AsSpan().SequenceEqual(b[k]), $"{k} differs after resume");
    }

    [Fact]
    public void Generation_goes_through_the_library_with_metadata_and_refuses_what_a_gan_cannot_do()
    {
        string run = TrainerTests.NewRun();
        GanTrainer.Start(run, Options(5), new TrainControl());
        var t2i = TextToImage.Load(run);
        var result = t2i.Generate(new GenerationRequest("a red circle") { Count = 3, Seed = 11 });
        Assert.Equal(3, result.Images.Count);
        Assert.NotEqual(result.Images[0].Image.ToTensor().ToArray(), result.Images[1].Image.ToTensor().ToArray());
        var again = t2i.Regenerate(result.Images[1].Parameters);
        Assert.Equal(result.Images[1].Image.ToTensor().ToArray(), again.ToTensor().ToArray());
        var e = Assert.Throws<ArgumentException>(() => t2i.Generate(new GenerationRequest("a red circle")
            { Guidance = 3f }));
        Assert.Contains("a GAN has no classifier-free guidance", e.Message);
        e = Assert.Throws<ArgumentException>(() => t2i.Generate(new GenerationRequest("a red circle") { Steps = 20 }));
        Assert.Contains("one generator call", e.Message);
        // a preset draws one size
        e = Assert.Throws<ArgumentException>(() => GanTrainer.Start(TrainerTests.NewRun(),
            Options(5) with { ImageSize = 32 }, new TrainControl()));
        Assert.Contains("pass --size 16", e.Message);
        e = Assert.Throws<ArgumentException>(() => GanTrainer.Start(TrainerTests.NewRun(),
            Options(5) with { DiscriminatorLr = 0 }, new TrainControl()));
        Assert.Contains("--d-lr", e.Message);
    }

    [Fact]
    public void Diff_augment_shifts_and_cuts_out_the_same_way_forward_and_backward()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 2 * 3 * 8 * 8).Select(i => i + 1f).ToArray(), 2, 3, 8, 8);
        x.RequiresGrad = true;
        var draws = new[] { new AugmentDraw(1, 0, 0, 0), new AugmentDraw(0, -2, 4, 4) };
        var y = DiffAugment.Apply(x, draws, 0.25f);                                   // a 2x2 cutout
        var v = y.ToArray(); var xs = x.ToArray();
        Assert.Equal(0f, v[0 * 64 + 0 * 8 + 0]);                                      // shifted in from outside
        Assert.Equal(0f, v[0 * 64 + 1 * 8 + 1]);                                      // image 0's cutout at (0, 0)
        Assert.Equal(xs[0 * 64 + 3 * 8 + 4], v[0 * 64 + 3 * 8 + 5]);                  // x moved right by 1
        Assert.Equal(xs[3 * 64 + 3 * 8 + 2], v[3 * 64 + 1 * 8 + 2]);                  // image 1 moved up by 2
        Assert.Equal(0f, v[3 * 64 + 4 * 8 + 5]);                                      // image 1's cutout at (4, 4)
        Ops.Sum(y).Backward();
        var g = x.Grad!.ToArray();
        for (int i = 0; i < v.Length; i++) Assert.True(g[i] is 0f or 1f, $"grad {g[i]} at {i}");
        Assert.Equal(v.Count(a => a != 0f), g.Count(a => a == 1f));   // each kept pixel came from one source pixel
    }
}

/// <summary>'pictor eval families' on tiny models: one row per text-to-image model of the folder, the CLIP judge left
/// out, figures as 'eval clip' gives them, training time from the exported training.json, one grid column per
/// model plus the real images.</summary>
[Collection("BufferPool")]
public class FamilyEvalTests
{
    [Fact]
    public void The_family_table_has_a_row_per_model_and_the_grid_a_column_per_model_and_the_real_images()
    {
        string models = Directory.CreateTempSubdirectory("pictor-families-").FullName;
        string data = TrainerTests.Data.Value;
        var common = new TrainOptions { Data = data, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 4,
            Steps = 2, ValEvery = 2, CkptEvery = 2, Keep = 1, ValImages = 4, Patience = 0 };
        ClipTrainer.Start(Path.Combine(models, "emoji-clip"), common with { Model = "clip", EmaDecay = 0f },
            new TrainControl());
        GanTrainer.Start(Path.Combine(models, "emoji-gan"), common with { Model = "gan", DiscriminatorLr = 4e-4f },
            new TrainControl());
        VaeTrainer.Start(Path.Combine(models, "emoji-vae"), common with { Model = "vae" }, new TrainControl());
        var judge = ClipPipeline.Load(Path.Combine(models, "emoji-clip"));
        var (train, _) = ImageCaptionSet.LoadSplits(data, 16);
        var entries = FamilyEval.Discover(models, "emoji", 16, rerank: 8);
        Assert.Equal(["emoji-gan", "emoji-vae"], entries.Select(e => e.Name));     // the CLIP scores, it does not draw
        var (report, grid) = FamilyEval.Run(entries, judge, "judge", train, "shapes", images: 4, candidates: 3,
            gridPrompts: 2);
        Assert.Equal(["gan", "vae"], report.Rows.Select(r => r.Family));
        var gan = GanPipeline.Load(Path.Combine(models, "emoji-gan"));
        var alone = ClipEval.Run(gan, judge, train, SamplingSettings.Resolve(new GenerationRequest(""), gan).Settings, 4, 3);
        Assert.Equal(alone.RPrecision, report.Rows[0].Report.RPrecision);
        Assert.Equal(alone.ClipScore, report.Rows[0].Report.ClipScore, 6);
        Assert.Equal(gan.Model.ParameterCount(), report.Rows[0].Parameters);
        Assert.True(report.Rows.All(r => r.TrainingMinutes > 0), "every trainer writes training.json");
        Assert.Equal((3 * 16 + 4 * 2, 2 * 16 + 3 * 2), (grid.Width, grid.Height));
        string table = report.Table();
        Assert.Contains("| gan | emoji-gan | ", table);
        Assert.Contains("emoji-gan one network call", report.SamplingLine);
        Assert.Contains("| real val images |", table);
    }
}

/// <summary>training.json: what every export records of the run that made it.</summary>
[Collection("BufferPool")]
public class TrainingRecordTests
{
    [Fact]
    public void An_export_records_the_command_step_time_and_a_hash_of_the_data_that_changes_with_it()
    {
        string data = TrainerTests.Data.Value, run = TrainerTests.NewRun();
        VaeTrainer.Start(run, new TrainOptions { Model = "vae", Data = data, Preset = "tiny", ImageSize = 16,
            Context = 12, Batch = 4, Steps = 4, ValEvery = 2, CkptEvery = 2, Keep = 1, ValImages = 4, Patience = 0 },
            new TrainControl(Command: "pictor train vae --preset tiny"));
        var rec = TrainingRecord.Read(run)!;
        Assert.Equal("pictor train vae --preset tiny", rec.Command);
        Assert.Equal(4, rec.Step);                                       // the latest export: the best, here the last
        Assert.True(rec.Minutes > 0);
        Assert.Equal(TrainingRecord.DataHash(data), rec.DataSha256);
        Assert.Contains("pictor train vae --preset tiny", Inside.ModelReport.Of(run).ToText());
        // a changed caption file in a copy of the data: another hash
        string copy = Directory.CreateTempSubdirectory("pictor-data-").FullName;
        foreach (var f in Directory.EnumerateFiles(data, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(copy, Path.GetRelativePath(data, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        Assert.Equal(rec.DataSha256, TrainingRecord.DataHash(copy));
        string meta = Path.Combine(copy, "val", "metadata.jsonl");
        File.AppendAllText(meta, "\n");
        Assert.NotEqual(rec.DataSha256, TrainingRecord.DataHash(copy));
    }
}
