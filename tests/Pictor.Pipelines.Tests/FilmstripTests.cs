using Pictor.Pipelines.Inside;
using Pictor.TestSupport;

namespace Pictor.Pipelines.Tests;

/// <summary>The denoising filmstrip on the shipped emoji model: one frame every k steps, the last the final
/// image.</summary>
public class FilmstripTests
{
    private static string ModelDir(string name) =>
        Path.GetFullPath(Path.Combine(Fixtures.Dir, "..", "..", "models", name));

    [Fact]
    public void Last_frame_is_the_final_image_and_frames_come_every_k_steps()
    {
        var model = TextToImage.Load(ModelDir("emoji"));
        var strip = new Filmstrip();
        var result = model.Generate(new GenerationRequest("grinning face, noto style")
            { Seed = 3, Steps = 7, PreviewEvery = 3 }, strip);
        Assert.Equal([3, 6, 7], strip.Frames.Select(f => f.Step));
        Assert.Equal(result.Images[0].Image.Rgba, strip.Frames[^1].Frame.Rgba);
        // an early estimate is not yet the image (a strip of identical frames would pass the check above)
        Assert.NotEqual(result.Images[0].Image.Rgba, strip.Frames[0].Frame.Rgba);
        var img = strip.ToImage();
        Assert.Equal((3 * 32 + 4 * 2, 32 + 2 * 2), (img.Width, img.Height));
    }

    [Fact]
    public void A_dalle_model_is_refused_with_the_fix()
    {
        var why = Filmstrip.Refuse(TextToImage.Load(ModelDir("emoji-dalle")));
        Assert.Contains("diffusion model", why);
        Assert.Null(Filmstrip.Refuse(TextToImage.Load(ModelDir("emoji"))));
        Assert.Equal(3, Filmstrip.Every(20, 8));
        Assert.Equal(1, Filmstrip.Every(4, 8));
    }
}
