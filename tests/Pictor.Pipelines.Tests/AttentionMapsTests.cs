using Pictor.Pipelines.Inside;
using Pictor.TestSupport;

namespace Pictor.Pipelines.Tests;

/// <summary>`pictor explain` on the shipped shapes and DALL-E models: per-word maps at each attention resolution, or
/// on the DALL-E token grid.</summary>
public class AttentionMapsTests
{
    private static string ModelDir(string name) =>
        Path.GetFullPath(Path.Combine(Fixtures.Dir, "..", "..", "models", name));

    [Fact]
    public void Maps_sum_to_one_over_words_at_every_pixel_and_the_image_is_the_models()
    {
        var model = TextToImage.Load(ModelDir("shapes"));
        var request = new GenerationRequest("a red circle above a blue square") { Seed = 3, Steps = 6 };
        var e = AttentionMaps.Explain(model, request);
        Assert.Equal(["a", "red", "circle", "above", "a", "blue", "square"], e.Words);
        Assert.Equal([16, 8], e.Levels.Select(l => l.Resolution));   // the xs UNet attends at 16x16 and 8x8
        foreach (var level in e.Levels)
        {
            Assert.Equal(e.Words.Count, level.Maps.Length);
            for (int u = 0; u < level.Resolution * level.Resolution; u++)
                Assert.Equal(1.0, level.Maps.Sum(m => (double)m[u]), 5);
        }
        Assert.InRange(e.WordShare, 0.01, 0.999);   // bos, eos and padding take some attention too
        // the words are not read evenly: some pixel's map differs from the uniform 1/W
        Assert.Contains(e.Levels[0].Maps.SelectMany(m => m), v => Math.Abs(v - 1.0 / e.Words.Count) > 0.05);

        // The attention from recorded ops is the fused kernel's up to rounding: the same image as generate's, nearly.
        var made = model.Generate(request).Images[0].Image;
        double diff = made.Rgba.Zip(e.Image.Rgba, (a, b) => Math.Abs(a - b)).Average();
        Assert.True(diff < 1.0, $"explain's image differs from generate's by {diff:F2} per channel on average");
        var picture = e.ToImage(cell: 32);
        Assert.Equal(44 + 8 * 34 + 2, picture.Width);
    }

    [Fact]
    public void Dalle_maps_are_per_image_token_sum_to_one_over_words_and_the_image_is_generates()
    {
        var model = TextToImage.Load(ModelDir("emoji-dalle"));
        var request = new GenerationRequest("grinning face, noto style") { Seed = 7 };
        var e = AttentionMaps.Explain(model, request);
        Assert.Equal(["grinning", "face", ",", "noto", "style"], e.Words);
        var level = Assert.Single(e.Levels);
        Assert.Equal(8, level.Resolution);                               // the 8x8 token grid
        for (int u = 0; u < 64; u++) Assert.Equal(1.0, level.Maps.Sum(m => (double)m[u]), 5);
        Assert.InRange(e.WordShare, 0.01, 0.999);
        Assert.Contains(level.Maps.SelectMany(m => m), v => Math.Abs(v - 1.0 / e.Words.Count) > 0.05);
        // the tokens are drawn as generate draws them: the same image, exactly
        Assert.Equal(model.Generate(request).Images[0].Image.Rgba, e.Image.Rgba);
    }

    [Fact]
    public void A_model_without_attention_over_words_is_refused_with_the_fix() =>
        Assert.Contains("use a diffusion or DALL-E model",
            Assert.Throws<ArgumentException>(() => AttentionMaps.Explain(TextToImage.Load(ModelDir("emoji-vae")),
                new GenerationRequest("grinning face, noto style"))).Message);
}
