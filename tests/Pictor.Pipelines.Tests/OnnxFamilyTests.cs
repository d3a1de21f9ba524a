using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Pictor.Engine;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Export;
using Pictor.TestSupport;
using static Pictor.Pipelines.Tests.OnnxExportTests;
using Tensor = Pictor.Engine.Tensor;

namespace Pictor.Pipelines.Tests;

/// <summary>The shipped CLIP (models/emoji-clip) and DALL-E (models/emoji-dalle, with its VQ-VAE) models exported
/// once to ONNX (the class fixture).</summary>
public sealed class ClipDalleOnnxFixture : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "pictor-onnx-" + Guid.NewGuid().ToString("N"));
    public ClipPipeline Clip { get; }
    public DallePipeline Dalle { get; }

    public ClipDalleOnnxFixture()
    {
        string models = Path.GetFullPath(Path.Combine(Fixtures.Dir, "..", "..", "models"));
        OnnxExport.Export(Path.Combine(models, "emoji-clip"), Path.Combine(Dir, "clip"));
        OnnxExport.Export(Path.Combine(models, "emoji-dalle"), Path.Combine(Dir, "dalle"));
        Clip = ClipPipeline.Load(Path.Combine(models, "emoji-clip"));
        Dalle = DallePipeline.Load(Path.Combine(models, "emoji-dalle"));
        Clip.Model.Train(false); Dalle.Transformer.Train(false); Dalle.Vq.Net.Train(false);
    }

    public InferenceSession Session(string family, string network) =>
        new(Path.Combine(Dir, family, network + ".onnx"), new SessionOptions { IntraOpNumThreads = 1 });

    public void Dispose() { if (Directory.Exists(Dir)) Directory.Delete(Dir, recursive: true); }
}

/// <summary>Every exported network of the shipped CLIP and DALL-E models runs in ONNX Runtime and matches Pictor's
/// forward on random inputs at batch 1 and 3, within 1e-4 of the output's largest magnitude.</summary>
public class OnnxFamilyTests(ClipDalleOnnxFixture fx) : IClassFixture<ClipDalleOnnxFixture>
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Clip_towers_match_pictor_in_onnx_runtime(int batch)
    {
        var cfg = fx.Clip.Config;
        int s = cfg.Text.Context, size = fx.Clip.ImageSize, e = cfg.EmbedDim;
        var rng = new Rng(3900 + (ulong)batch);
        var ids = RandomIds(rng, batch * s, cfg.Text.Vocab);
        var images = Normal(rng, batch * 3 * size * size);
        Tensor text, image;
        using (Autograd.NoGrad())
        {
            text = fx.Clip.Model.EncodeText(new IntTensor(ids, batch, s));
            image = fx.Clip.Model.EncodeImage(Tensor.FromArray(images, batch, 3, size, size));
        }
        using (var session = fx.Session("clip", "clip_text"))
        using (var r = session.Run([NamedOnnxValue.CreateFromTensor("ids", Longs(ids, [batch, s]))]))
            AssertClose("clip text embedding", text.ToArray(), Output(r, "embedding", [batch, e]));
        using (var session = fx.Session("clip", "clip_image"))
        using (var r = session.Run([NamedOnnxValue.CreateFromTensor("image",
            new DenseTensor<float>(images, [batch, 3, size, size]))]))
            AssertClose("clip image embedding", image.ToArray(), Output(r, "embedding", [batch, e]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Dalle_transformer_full_sequence_matches_pictor_in_onnx_runtime(int batch)
    {
        var cfg = fx.Dalle.Setup.Transformer;
        var rng = new Rng(3910 + (ulong)batch);
        var ids = new int[batch * cfg.SeqLen];
        for (int i = 0; i < batch; i++)
            for (int j = 0; j < cfg.SeqLen; j++)
                ids[i * cfg.SeqLen + j] = j < cfg.TextLen ? rng.NextInt(cfg.TextVocab)
                    : cfg.TextVocab + rng.NextInt(cfg.ImageVocab);
        float[] want;
        using (Autograd.NoGrad()) want = fx.Dalle.Transformer.Forward(new IntTensor(ids, batch, cfg.SeqLen)).ToArray();
        using var session = fx.Session("dalle", "dalle_transformer");
        using var r = session.Run([NamedOnnxValue.CreateFromTensor("ids", Longs(ids, [batch, cfg.SeqLen]))]);
        AssertClose("dalle logits", want, Output(r, "logits", [batch, cfg.SeqLen, cfg.Vocab]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Vq_decoder_matches_pictor_in_onnx_runtime(int batch)
    {
        var vq = fx.Dalle.Vq;
        int g = vq.Grid, size = vq.ImageSize;
        var codes = RandomIds(new Rng(3920 + (ulong)batch), batch * g * g, vq.Config.Codes);
        var want = vq.Net.Decode(new IntTensor(codes, batch, g, g)).ToArray();
        using var session = fx.Session("dalle", "vq_decoder");
        using var r = session.Run([NamedOnnxValue.CreateFromTensor("codes", Longs(codes, [batch, g, g]))]);
        AssertClose("vq decoder image", want, Output(r, "image", [batch, 3, size, size]));
    }

    private static int[] RandomIds(Rng rng, int n, int vocab)
    {
        var a = new int[n];
        for (int i = 0; i < n; i++) a[i] = rng.NextInt(vocab);
        return a;
    }

    private static DenseTensor<long> Longs(int[] v, int[] dims) => new(v.Select(i => (long)i).ToArray(), dims);
}
