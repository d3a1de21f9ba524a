using System.Text.Json.Nodes;
using Pictor.Engine.IO;
using Pictor.Pipelines.Diffusion;
using Pictor.TestSupport;

namespace Pictor.Pipelines.Tests;

/// <summary>The shipped diffusion models (models/emoji, models/shapes) load unchanged: each config.json reads, writes
/// back the same fields and values, and is exactly what its preset makes (with the schedule shift and guidance scale
/// it was trained and tuned with); its weights file holds the tensors of that model and no others.</summary>
public class ShippedModelConfigTests
{
    private static string ModelDir(string name) =>
        Path.GetFullPath(Path.Combine(Fixtures.Dir, "..", "..", "models", name));

    [Theory]
    [InlineData("emoji", "xs")]
    [InlineData("shapes", "xs-rel-place")]
    public void Config_is_its_preset_round_trips_and_the_weights_are_the_models(string name, string preset)
    {
        string path = Path.Combine(ModelDir(name), DiffusionPipeline.ConfigFile), text = File.ReadAllText(path);
        var cfg = DiffusionConfig.FromJson(text, path);
        Assert.Equal(preset, cfg.Preset);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(text), JsonNode.Parse(cfg.ToJson())),
            $"{path} does not round-trip:\n{cfg.ToJson()}");
        var made = DiffusionConfig.FromPreset(preset, cfg.Text.Vocab, cfg.ImageSize, cfg.Text.Context)
            with { ScheduleShift = cfg.ScheduleShift, DefaultCfg = cfg.DefaultCfg };
        Assert.Null(DiffusionConfig.FirstDifference(made, cfg));

        var pipe = DiffusionPipeline.Load(ModelDir(name));
        var weights = SafeTensorsFile.Read(Path.Combine(ModelDir(name), DiffusionPipeline.WeightsFile));
        var stored = weights.Tensors.Select(t => t.Name).Order();
        Assert.Equal(stored, pipe.NamedParameters().Select(p => p.Name).Order());
    }
}
