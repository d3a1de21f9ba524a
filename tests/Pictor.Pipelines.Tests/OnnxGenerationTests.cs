using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Pictor.Imaging;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Diffusion;
using Tensor = Pictor.Engine.Tensor;

namespace Pictor.Pipelines.Tests;

/// <summary>A whole generation of the shipped emoji model through ONNX Runtime: the captions encoded by the exported
/// text encoder, every denoising step by the exported UNet (the guided batch of 2B rows, as DiffusionPipeline.Guided
/// runs it), the sampler loop written here on the test side, following only pipeline.json's recipe. The image equals
/// Pictor's own generation within one level per channel.</summary>
public class OnnxGenerationTests(EmojiOnnxFixture fx) : IClassFixture<EmojiOnnxFixture>
{
    [Theory]
    [InlineData("grinning face", "dpm++", 20, 7UL)]
    [InlineData("red heart", "ddim", 12, 3UL)]
    public void Onnx_runtime_draws_pictors_image_within_one_level(string prompt, string sampler, int steps, ulong seed)
    {
        var p = fx.Pipeline;
        var settings = new SamplingSettings(sampler, steps, p.DefaultGuidance, seed);
        var want = Image.FromTensor(Row0(p.Sample([prompt], settings)));

        int size = p.ImageSize, per = 3 * size * size, s = p.TextContext;
        var ids = p.Tokenize([prompt, ""]).Data.Select(i => (long)i).ToArray();   // cond row, then uncond row
        using var text = fx.Session("text_encoder");
        using var unet = fx.Session("unet");
        float[] tokens, pooled;
        using (var r = text.Run([NamedOnnxValue.CreateFromTensor("ids", new DenseTensor<long>(ids, [2, s]))]))
        {
            tokens = r.Single(v => v.Name == "tokens").AsTensor<float>().ToArray();
            pooled = r.Single(v => v.Name == "pooled").AsTensor<float>().ToArray();
        }
        int dc = tokens.Length / (2 * s);
        Denoise model = (x, t) =>
        {
            var xin = new float[2 * per];
            x.CopyTo(xin, 0); x.CopyTo(xin, per);
            using var r = unet.Run(
            [
                NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(xin, [2, 3, size, size])),
                NamedOnnxValue.CreateFromTensor("t", new DenseTensor<float>(new float[] { t, t }, [2])),
                NamedOnnxValue.CreateFromTensor("context", new DenseTensor<float>(tokens, [2, s, dc])),
                NamedOnnxValue.CreateFromTensor("pooled", new DenseTensor<float>(pooled, [2, dc])),
            ]);
            var o = r.Single(v => v.Name == "prediction").AsTensor<float>().ToArray();
            var g = new float[per];
            for (int i = 0; i < per; i++) g[i] = o[per + i] + settings.Guidance * (o[i] - o[per + i]);
            return g;
        };
        var x0 = Sampler.ByName(sampler).Sample(p.Schedule, p.Config.Prediction, model, p.StartNoise(1, seed), steps,
            DiffusionPipeline.SamplerRng(seed), clip: true);
        var got = Image.FromTensor(Tensor.FromArray(x0, 3, size, size));

        int worst = 0, off = 0;
        for (int i = 0; i < want.Rgba.Length; i++)
        {
            int d = Math.Abs(want.Rgba[i] - got.Rgba[i]);
            worst = Math.Max(worst, d);
            if (d > 0) off++;
        }
        Assert.True(worst <= 1, $"'{prompt}' ({sampler}, {steps} steps, seed {seed}): ONNX Runtime's image differs "
            + $"from Pictor's by up to {worst} levels ({off} of {want.Rgba.Length} channel values differ)");
    }

    private static Tensor Row0(Tensor images) =>   // (1, 3, H, W) -> (3, H, W)
        Tensor.FromArray(images.ToArray(), images.Shape[1], images.Shape[2], images.Shape[3]);
}
