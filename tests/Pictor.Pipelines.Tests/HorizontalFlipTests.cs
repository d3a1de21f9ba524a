using Pictor.Pipelines.Training;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

/// <summary>`train diffusion --hflip P`: the mirror, the caption that stays true, and that a run using it resumes exactly.</summary>
[Collection("BufferPool")]
public class HorizontalFlipTests
{
    [Theory]
    [InlineData("a red circle left of a blue square", "a red circle right of a blue square")]
    [InlineData("a small green triangle on the right", "a small green triangle on the left")]
    [InlineData("Left-facing fist, noto style", "Right-facing fist, noto style")]
    [InlineData("RIGHT arrow", "LEFT arrow")]
    [InlineData("leftover rightful copyright", "leftover rightful copyright")]   // whole words only
    [InlineData("two blue squares", "two blue squares")]
    public void Caption_swaps_left_and_right(string caption, string mirrored)
    {
        Assert.Equal(mirrored, HorizontalFlip.MirrorCaption(caption));
        Assert.Equal(caption, HorizontalFlip.MirrorCaption(mirrored));
    }

    [Fact]
    public void Image_is_mirrored_per_row_of_every_channel()
    {
        int c = 3, h = 2, w = 5;
        var x = Enumerable.Range(0, c * h * w).Select(i => (float)i).ToArray();
        var y = (float[])x.Clone();
        HorizontalFlip.MirrorInPlace(y, c, h, w);
        for (int ch = 0; ch < c; ch++)
            for (int r = 0; r < h; r++)
                for (int col = 0; col < w; col++)
                    Assert.Equal(x[(ch * h + r) * w + (w - 1 - col)], y[(ch * h + r) * w + col]);
        HorizontalFlip.MirrorInPlace(y, c, h, w);
        Assert.Equal(x, y);
        Assert.Contains("[3, 2, 4]", Assert.Throws<ArgumentException>(() => HorizontalFlip.MirrorInPlace(y, 3, 2, 4)).Message);
    }

    [Fact]
    public void Option_is_checked_stored_and_resumes_bit_exactly()
    {
        Assert.Contains("--hflip", Assert.Throws<ArgumentException>(() => new TrainOptions { Hflip = 1.5f }.Validate()).Message);
        Assert.Contains("'train diffusion' only", Assert.Throws<ArgumentException>(() => new TrainOptions { Model = "clip", Hflip = 0.5f }.Validate()).Message);
        Assert.Equal(0f, TrainOptions.FromJson("{\"model\": \"diffusion\"}", "old").Hflip);   // runs written before the option

        TrainerTests.AssertOptionStoredResumesExactlyAndMatters(o => o with { Hflip = 0.5f }, o => o with { Hflip = 0 }, "\"hflip\": 0.5");
    }
}
