using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

/// <summary>A model may carry the guidance scale it samples best at ("default_cfg" in config.json).</summary>
public class DefaultCfgTests
{
    [Fact]
    public void Default_cfg_round_trips_and_is_written_only_when_it_is_not_the_standard_3()
    {
        var tok = PipelineTests.Tokenizer();
        var plain = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12);
        Assert.Null(JsonNode.Parse(plain.ToJson())!["default_cfg"]);   // older models' configs stay byte-identical
        Assert.Equal(3f, new DiffusionPipeline(plain, tok, new Rng(1)).DefaultGuidance);
        Assert.Equal(3f, ((ITextToImage)new DiffusionPipeline(plain, tok, new Rng(1))).DefaultGuidance);

        var tuned = plain with { DefaultCfg = 2 };
        var back = DiffusionConfig.FromJson(tuned.ToJson(), "x");
        Assert.Equal(2, back.DefaultCfg);
        Assert.Equal(2f, ((ITextToImage)new DiffusionPipeline(back, tok, new Rng(1))).DefaultGuidance);
        Assert.Equal("default_cfg: 2 vs null", DiffusionConfig.FirstDifference(tuned, plain));
        Assert.Equal("default_cfg: null vs 2", DiffusionConfig.FirstDifference(plain, tuned));   // a field only the second has

        var bad = JsonNode.Parse(tuned.ToJson())!.AsObject();
        bad["default_cfg"] = -1;
        Assert.Contains("default_cfg -1 is outside 0..50", Assert.Throws<FormatException>(() => DiffusionConfig.FromJson(bad.ToJsonString(), "bad")).Message);
    }
}
