using Pictor.Engine.Diagnostics;
using Pictor.TestSupport;

namespace Pictor.Pipelines.Tests;

/// <summary>The model half of 'pictor doctor': a model folder loads and its weights match weights.sha256, an altered
/// weights file or a broken config is a failed row that names the file and the fix, and the timing row.</summary>
public class DoctorTests
{
    /// <summary>models/NAME holding a tiny diffusion model with its weights recorded.</summary>
    private static (string Models, string Dir) TinyModel(string name = "tiny")
    {
        string models = Directory.CreateTempSubdirectory("pictor-doctor-").FullName;
        string dir = Path.Combine(models, name);
        PipelineTests.Tiny().Save(dir);
        WeightsManifest.Write(dir);
        return (models, dir);
    }

    [Fact]
    public void A_recorded_model_loads_and_its_weights_match()
    {
        var (models, dir) = TinyModel();
        try
        {
            var rows = Doctor.ModelChecks(models);
            Assert.Equal(["tiny: load", "tiny: weights"], rows.Select(r => r.Name));
            Assert.All(rows, r => Assert.True(r.Ok, r.Detail));
            Assert.All(rows, r => Assert.Equal(CheckSection.Models, r.Section));
            string hash = Diffusion.DiffusionPipeline.HashFile(Path.Combine(dir, "model.safetensors"));
            Assert.Equal($"pictor-diffusion, 16px images, weights hash {hash}", rows[0].Detail);
            Assert.Equal($"model.safetensors {hash} match weights.sha256", rows[1].Detail);
            var manifest = File.ReadAllLines(Path.Combine(dir, WeightsManifest.FileName));
            Assert.StartsWith("# pictor-weights-sha256 1: ", manifest[0]);
        }
        finally { Directory.Delete(models, true); }
    }

    [Fact]
    public void An_altered_weights_file_fails_the_hash_check_naming_the_file_and_the_fix()
    {
        var (models, dir) = TinyModel();
        try
        {
            string weights = Path.Combine(dir, "model.safetensors");
            var bytes = File.ReadAllBytes(weights);
            bytes[^1] ^= 0x01;                       // the lowest mantissa bit of the last weight: still loads
            File.WriteAllBytes(weights, bytes);
            var rows = Doctor.CheckModel(dir);
            Assert.True(rows[0].Ok, rows[0].Detail);
            Assert.False(rows[1].Ok);
            Assert.StartsWith($"{weights} has SHA-256 {WeightsManifest.Sha256(weights)}, ", rows[1].Detail);
            Assert.Contains("the file was changed or damaged", rows[1].Detail);
            Assert.Contains($"git checkout -- {weights}", rows[1].Detail);
            Assert.Contains($"cd {dir} && sha256sum model.safetensors > weights.sha256", rows[1].Detail);

            File.Copy(weights, Path.Combine(dir, "extra.safetensors"));   // a weights file nobody recorded
            WeightsManifest.Write(dir);
            File.Delete(Path.Combine(dir, "extra.safetensors"));
            var (ok, detail) = WeightsManifest.Verify(dir);
            Assert.False(ok);
            Assert.Contains($"lists extra.safetensors, but {Path.Combine(dir, "extra.safetensors")} is missing",
                            detail);
        }
        finally { Directory.Delete(models, true); }
    }

    [Fact]
    public void A_model_without_weights_sha256_fails_and_says_how_to_record_it()
    {
        var (models, dir) = TinyModel();
        try
        {
            File.Delete(Path.Combine(dir, WeightsManifest.FileName));
            var row = Doctor.CheckModel(dir)[1];
            Assert.False(row.Ok);
            Assert.Equal($"{Path.Combine(dir, "weights.sha256")} is missing, so the weights cannot be checked; "
                         + $"record them with: cd {dir} && sha256sum model.safetensors > weights.sha256", row.Detail);
        }
        finally { Directory.Delete(models, true); }
    }

    [Fact]
    public void A_malformed_config_fails_its_load_check_in_one_line()
    {
        var (models, dir) = TinyModel();
        try
        {
            string cfg = Path.Combine(dir, "config.json");
            File.WriteAllText(cfg, File.ReadAllText(cfg)[..40]);   // cut short
            var rows = Doctor.CheckModel(dir);
            Assert.False(rows[0].Ok);
            Assert.DoesNotContain('\n', rows[0].Detail);
            Assert.Contains($"{cfg} is not a valid model config", rows[0].Detail);
            Assert.True(rows[1].Ok, rows[1].Detail);               // the weights are still the recorded ones

            File.WriteAllText(cfg, """{ "format": "pictor-diffusion", "version": 1 }""");   // valid JSON, no fields
            var row = Doctor.CheckModel(dir)[0];
            Assert.False(row.Ok);
            Assert.DoesNotContain('\n', row.Detail);
            Assert.Contains(cfg, row.Detail);
        }
        finally { Directory.Delete(models, true); }
    }

    [Fact]
    public void A_manifest_written_by_sha256sum_reads_and_a_later_version_is_refused()
    {
        string dir = Directory.CreateTempSubdirectory("pictor-manifest-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), [1, 2, 3]);
            string sha = WeightsManifest.Sha256(Path.Combine(dir, "model.safetensors"));
            Assert.Equal("039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81", sha);   // sha256sum's
            File.WriteAllText(Path.Combine(dir, "weights.sha256"), $"{sha.ToUpperInvariant()} *./model.safetensors\n");
            Assert.Equal([new WeightsEntry("model.safetensors", sha)], WeightsManifest.Read(dir));
            Assert.True(WeightsManifest.Verify(dir).Ok);

            string path = Path.Combine(dir, "weights.sha256");
            File.WriteAllText(path, $"# pictor-weights-sha256 2\n{sha}  model.safetensors\n");
            Assert.Contains("is pictor-weights-sha256 version 2; this Pictor reads version 1",
                            WeightsManifest.Verify(dir).Detail);
            File.WriteAllText(path, $"{sha}  ../model.safetensors\n");
            Assert.Contains("line 1 is not '<64 hex digits>  <path inside the folder>'",
                            WeightsManifest.Verify(dir).Detail);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Every_shipped_model_matches_its_weights_sha256()
    {
        string models = Path.Combine(Fixtures.Dir, "..", "..", "models");
        var dirs = Directory.GetDirectories(models);
        Assert.Equal(["emoji", "emoji-clip", "emoji-dalle", "emoji-gan", "emoji-unclip", "emoji-vae", "shapes"], dirs.Select(Path.GetFileName).Order());
        foreach (var d in dirs)
        {
            var (ok, detail) = WeightsManifest.Verify(d);
            Assert.True(ok, detail);
        }
        Assert.Contains("vqvae/model.safetensors", WeightsManifest.Verify(Path.Combine(models, "emoji-dalle")).Detail);
    }

    [Fact]
    public void Run_gives_every_section_in_table_order()
    {
        var (models, _) = TinyModel();
        try
        {
            var rows = Doctor.Run(models, _ => "stub");
            Assert.Equal(Enum.GetValues<CheckSection>(), rows.Select(r => r.Section).Distinct());
            Assert.Equal(rows.Select(r => r.Section).Order(), rows.Select(r => r.Section));
            Assert.All(rows, r => Assert.True(r.Ok, $"{r.Name}: {r.Detail}"));
            Assert.Equal("tiny: stub", rows[^1].Detail);
        }
        finally { Directory.Delete(models, true); }
    }

    [Fact]
    public void The_timing_row_times_the_given_generator_and_reports_its_failure()
    {
        var (models, dir) = TinyModel("tiny");
        try
        {
            var row = Doctor.TimeOneImage(models, null, d =>
            {
                Assert.Equal(dir, d);
                Thread.Sleep(20);
                return "1 image";
            });
            Assert.True(row.Ok, row.Detail);
            Assert.Equal(CheckSection.Timing, row.Section);
            Assert.True(row.Duration >= TimeSpan.FromMilliseconds(20));
            Assert.Equal("tiny: 1 image", row.Detail);

            var real = Doctor.TimeOneImage(models, "tiny", Doctor.GenerateOneImage);   // the default seam, for real
            Assert.True(real.Ok, real.Detail);
            Assert.StartsWith("tiny: 16x16, dpm++ 20 steps, cfg 3 (load ", real.Detail);

            var bad = Doctor.TimeOneImage(models, null, _ => throw new InvalidOperationException("no sampler"));
            Assert.False(bad.Ok);
            Assert.Equal("tiny: InvalidOperationException: no sampler", bad.Detail);

            File.Delete(Path.Combine(dir, "config.json"));
            var none = Doctor.TimeOneImage(models, null, _ => "unused");
            Assert.False(none.Ok);
            Assert.Contains("has no pictor-diffusion model to time", none.Detail);
        }
        finally { Directory.Delete(models, true); }
    }
}
