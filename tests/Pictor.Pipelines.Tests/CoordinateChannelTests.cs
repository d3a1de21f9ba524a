using System.Text.Json.Nodes;
using Pictor.Engine;
using Pictor.Models.Unet;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines.Tests;

/// <summary>CoordConv input planes for the UNet (part of preset xs-rel-place): the grid's values, that conv_in reads
/// and learns from them, and that configs written before the field existed still load.</summary>
[Collection("BufferPool")]
public class CoordinateChannelTests
{
    [Fact]
    public void Grid_holds_pixel_centres_in_minus_one_to_one()
    {
        var g = UnetModel.CoordinateGrid(2, 2, 4).ToArray();   // [2, 2, 2, 4]
        float[] x = [-0.75f, -0.25f, 0.25f, 0.75f];
        for (int n = 0; n < 2; n++)
            for (int row = 0; row < 2; row++)
                for (int col = 0; col < 4; col++)
                {
                    Assert.Equal(x[col], g[((n * 2 + 0) * 2 + row) * 4 + col]);
                    Assert.Equal(row == 0 ? -0.5f : 0.5f, g[((n * 2 + 1) * 2 + row) * 4 + col]);
                }
    }

    [Fact]
    public void Conv_in_reads_the_planes_and_they_change_the_output_and_get_gradients()
    {
        var tok = PipelineTests.Tokenizer();
        var plain = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12);
        var coord = plain with { Unet = plain.Unet with { CoordChannels = true } };
        var p = new DiffusionPipeline(coord, tok, new Rng(5));
        var w = p.Unet.NamedParameters().Single(q => q.Name == "conv_in.weight").Param;
        Assert.Equal([16, 5, 3, 3], w.Shape);

        var rng = new Rng(9);
        var xs = new float[2 * 3 * 16 * 16];
        for (int i = 0; i < xs.Length; i++) xs[i] = (float)rng.NextDouble() * 2 - 1;
        var x = Tensor.FromArray(xs, 2, 3, 16, 16);
        var ids = p.Tokenize(["a small red circle", "two blue squares"]);
        var withPlanes = p.Forward(x, [500f, 300f], ids).ToArray();

        // Zero the weights that read the planes: the output changes, and equals a plain model's with the other weights.
        var ws = w.Span;
        for (int o = 0; o < 16; o++) for (int c = 3; c < 5; c++) for (int k = 0; k < 9; k++) ws[(o * 5 + c) * 9 + k] = 0;
        var zeroed = p.Forward(x, [500f, 300f], ids).ToArray();
        Assert.NotEqual(withPlanes, zeroed);
        var q = new DiffusionPipeline(plain, tok, new Rng(6));
        var mine = p.NamedParameters().ToDictionary(n => n.Name, n => n.Param);
        foreach (var (name, param) in q.NamedParameters())
        {
            var src = mine[name].ToArray();
            if (name == "unet.conv_in.weight")   // [16, 5, 3, 3] -> [16, 3, 3, 3]: the image channels
                src = Enumerable.Range(0, 16 * 27).Select(i => src[(i / 27 * 5 + i % 27 / 9) * 9 + i % 9]).ToArray();
            src.CopyTo(param.Span);
        }
        var plainOut = q.Forward(x, [500f, 300f], ids).ToArray();
        for (int i = 0; i < plainOut.Length; i++) Assert.True(MathF.Abs(plainOut[i] - zeroed[i]) <= 1e-4f, $"element {i}: {plainOut[i]} vs {zeroed[i]}");

        p.Train(true);
        Ops.Sum(p.Forward(x, [500f, 500f], ids)).Backward();
        var g = w.Grad!.ToArray();
        Assert.Contains(Enumerable.Range(0, 16 * 9).Select(i => g[(i / 9 * 5 + 3) * 9 + i % 9]), d => d != 0);   // plane x
        Assert.Contains(Enumerable.Range(0, 16 * 9).Select(i => g[(i / 9 * 5 + 4) * 9 + i % 9]), d => d != 0);   // plane y
    }

    [Fact]
    public void Flag_round_trips_and_old_configs_without_it_load_as_off()
    {
        var xs = DiffusionConfig.FromPreset("xs", 300);
        var cfg = xs with { Unet = xs.Unet with { CoordChannels = true } };
        Assert.True(DiffusionConfig.FromPreset("xs-rel-place", 300).Unet.CoordChannels);
        Assert.Equal(5, cfg.Unet.InputChannels);
        Assert.Equal(cfg.ToJson(), DiffusionConfig.FromJson(cfg.ToJson(), "x").ToJson());
        Assert.Equal("unet.coord_channels: false vs true", DiffusionConfig.FirstDifference(xs, cfg));

        var old = JsonNode.Parse(DiffusionConfig.FromPreset("xs", 300).ToJson())!;
        old["unet"]!.AsObject().Remove("coord_channels");
        var loaded = DiffusionConfig.FromJson(old.ToJsonString(), "old");
        Assert.False(loaded.Unet.CoordChannels);
        Assert.Equal(3, loaded.Unet.InputChannels);
    }

    [Fact]
    public void Coordinate_planes_are_the_grid_as_a_matrix()
    {
        var m = UnetModel.CoordinatePlanes(2, 4);   // [2, 8]
        Assert.Equal([2, 8], m.Shape);
        Assert.Equal(UnetModel.CoordinateGrid(1, 2, 4).ToArray(), m.ToArray());
        Assert.Same(m, UnetModel.CoordinatePlanes(2, 4));   // built once per size, not on every ResBlock call
    }

    [Fact]
    public void Resblock_slopes_change_the_output_get_gradients_and_round_trip()
    {
        var tok = PipelineTests.Tokenizer();
        var tiny = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12);
        var cfg = tiny with { Unet = tiny.Unet with { ResBlockCoords = true } };
        var p = new DiffusionPipeline(cfg, tok, new Rng(5));
        var slopes = p.Unet.NamedParameters().Where(q => q.Name.EndsWith(".temb_coord.weight")).ToList();
        Assert.Equal(8, slopes.Count);   // tiny: 2 encoder, 2 middle and 4 decoder ResBlocks
        Assert.Contains(slopes, c => c.Name == "enc_res.0.temb_coord.weight" && c.Param.Shape.SequenceEqual([2 * 16, 32]));   // (x, y) slope per channel, from the 32-wide embedding

        var (x, ids, before) = PipelineTests.ForwardBackward(p);
        Assert.All(slopes, c => Assert.Contains(c.Param.Grad!.ToArray(), d => d != 0));
        foreach (var (name, param) in p.Unet.NamedParameters().Where(q => q.Name.Contains(".temb_coord."))) param.Span.Clear();
        using (Autograd.NoGrad()) Assert.NotEqual(before, p.Forward(x, [500f, 300f], ids).ToArray());

        Assert.Equal(cfg.ToJson(), DiffusionConfig.FromJson(cfg.ToJson(), "x").ToJson());
        var place = DiffusionConfig.FromPreset("xs-rel-place", 300);
        Assert.True(place.Unet.ResBlockCoords && place.Unet.CoordChannels);
        var old = JsonNode.Parse(DiffusionConfig.FromPreset("xs", 300).ToJson())!;
        old["unet"]!.AsObject().Remove("resblock_coords");
        Assert.False(DiffusionConfig.FromJson(old.ToJsonString(), "old").Unet.ResBlockCoords);
    }

    /// <summary>What the slopes are for: from pure noise, the model learns to put the image's mass where the caption says.</summary>
    [Fact]
    public void With_slopes_a_model_learns_left_and_right_from_the_caption()
    {
        var tok = Pictor.Text.BpeTokenizer.Train(["a red circle on the left", "a red circle on the right"], 300);
        var tiny = DiffusionConfig.FromPreset("tiny", tok.VocabSize, 16, 12);
        var p = new DiffusionPipeline(tiny with { Unet = tiny.Unet with { CoordChannels = true, ResBlockCoords = true } }, tok, new Rng(3));
        var opt = new Pictor.Nn.Optim.AdamW(p.NamedParameters(), new Pictor.Nn.Optim.AdamWConfig(LearningRate: 3e-3f));
        int b = 8, per = 3 * 16 * 16; var rng = new Rng(4);
        var caps = new string[b]; var target = new float[b * per]; var x = new float[b * per];
        string[] both = ["a red circle on the left", "a red circle on the right"];
        double Asymmetry()
        {
            using var ng = Autograd.NoGrad();
            var noise = new float[2 * per]; new Rng(1).FillNormal(noise.AsSpan(0, per)); noise.AsSpan(0, per).CopyTo(noise.AsSpan(per));
            var o = p.Forward(Tensor.FromArray(noise, 2, 3, 16, 16), [999f, 999f], p.Tokenize(both)).ToArray();
            double d = 0;   // (left half - right half) of the "left" output minus the same of the "right" output, per pixel
            for (int i = 0; i < per; i++) d += (i % 16 < 8 ? 1 : -1) * (o[i] - o[per + i]);
            return d / per;
        }
        double start = Asymmetry();
        for (int step = 0; step < 80; step++)
        {
            for (int i = 0; i < b; i++)
            {
                bool left = rng.NextInt(2) == 0; caps[i] = both[left ? 0 : 1];
                for (int j = 0; j < per; j++) target[i * per + j] = (j % 16 < 8) == left ? -1f : 1f;   // v at t = T is -x0
            }
            rng.FillNormal(x);
            using (TensorScope.Begin())
            {
                opt.ZeroGrad();
                Ops.MseLoss(p.Forward(Tensor.FromArray(x, b, 3, 16, 16), Enumerable.Repeat(999f, b).ToArray(), p.Tokenize(caps)), Tensor.FromArray(target, b, 3, 16, 16)).Backward();
                opt.StepOnce();
            }
        }
        double end = Asymmetry();
        Assert.True(Math.Abs(start) < 0.2, $"an untrained model has no reason to prefer a side: {start}");
        Assert.True(end < -1.0, $"after training the 'left' output is darker (v = -x0) on the left: asymmetry {end}");
    }
}
