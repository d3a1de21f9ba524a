using System.Text.Json.Nodes;
using Pictor.Pipelines.Diffusion;
using Pictor.Pipelines.Training;

namespace Pictor.Pipelines.Tests;

/// <summary>The experimental presets that no shipped model used were removed (<see cref="RemovedPresets"/>): naming
/// one, or loading a config that sets a field only they wrote, is a one-line error that says so and names the commit
/// where their code can still be read.</summary>
public class RemovedPresetsTests
{
    [Fact]
    public void A_removed_preset_name_says_it_was_removed_and_where_to_read_it()
    {
        foreach (var name in RemovedPresets.Names)
        {
            Assert.DoesNotContain(name, DiffusionConfig.PresetNames);
            var e = Assert.Throws<ArgumentException>(() => DiffusionConfig.FromPreset(name, 300));
            Assert.Contains($"preset '{name}' was removed", e.Message);
            Assert.Contains(RemovedPresets.Commit, e.Message);
            var t = Assert.Throws<ArgumentException>(() => new TrainOptions { Preset = name }.Validate());
            Assert.Contains($"--preset '{name}' for 'train diffusion'; use tiny, xs, xs-rel-place, s", t.Message);
            Assert.Contains(RemovedPresets.Commit, t.Message);
        }
        var unknown = Assert.Throws<ArgumentException>(() => DiffusionConfig.FromPreset("huge", 300));
        Assert.DoesNotContain("removed", unknown.Message);
    }

    [Theory]
    [InlineData("unet", "self_attention", "[false, true, true]", "xs-bind")]
    [InlineData("unet", "token_slope_width", "3", "xs-rel-phrase")]
    [InlineData("text", "phrase_width", "3", "xs-phrase")]
    [InlineData("text", "rotary", "true", "xs-rel-rope")]
    [InlineData("", "layout_text", "{\"vocab\": 300, \"context\": 16, \"out_dim\": 128}", "xs-rel-split")]
    [InlineData("", "cross_attention_adds_layout", "true", "xs-rel-sum")]
    public void A_config_that_sets_a_removed_field_is_refused_naming_field_preset_and_commit(
        string holder, string field, string value, string preset)
    {
        var o = JsonNode.Parse(DiffusionConfig.FromPreset("xs-rel-place", 300).ToJson())!.AsObject();
        (holder == "" ? o : o[holder]!.AsObject())[field] = JsonNode.Parse(value);
        var e = Assert.Throws<FormatException>(() => DiffusionConfig.FromJson(o.ToJsonString(), "m/config.json"));
        string named = holder == "" ? field : $"{holder}.{field}";
        Assert.StartsWith($"m/config.json sets {named}, which only preset {preset} used; that preset was removed",
            e.Message);
        Assert.Contains($"commit {RemovedPresets.Commit}", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void An_xs_rel_sum_config_is_named_as_such_not_as_the_presets_it_was_built_on()
    {
        var o = JsonNode.Parse(DiffusionConfig.FromPreset("xs-rel-place", 300).ToJson())!.AsObject();
        o["text"]!["rotary"] = true;
        o["layout_text"] = o["text"]!.DeepClone();
        o["cross_attention_adds_layout"] = true;
        string Refusal() =>
            Assert.Throws<FormatException>(() => DiffusionConfig.FromJson(o.ToJsonString(), "m")).Message;
        Assert.Contains("only preset xs-rel-sum used", Refusal());
        o.Remove("cross_attention_adds_layout");
        Assert.Contains("only preset xs-rel-split used", Refusal());
    }
}
