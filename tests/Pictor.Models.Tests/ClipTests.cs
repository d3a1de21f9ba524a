using Pictor.Engine;
using Pictor.Models.Clip;
using Pictor.Models.Text;
using Pictor.Nn.Optim;

namespace Pictor.Models.Tests;

/// <summary>CLIP: unit embeddings, the symmetric contrastive loss against a double-precision reference, its temperature
/// gradient against finite differences, and that a tiny one learns to match colours to their names.</summary>
[Collection("BufferPool")]
public class ClipTests
{
    private static readonly ClipConfig Tiny = new(new TextEncoderConfig(Vocab: 12, Context: 4, Layers: 1, Dim: 16, Heads: 2, OutDim: 8), [8, 16], Groups: 4);

    private static (Tensor Images, IntTensor Ids) Batch(int b, Rng rng)
    {
        var x = new float[b * 3 * 8 * 8];
        var ids = new int[b * 4];
        for (int i = 0; i < b; i++)
        {
            int colour = i % 6;                                  // image i is a solid colour; its caption names it
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 64; p++) x[(i * 3 + c) * 64 + p] = ((colour + 1) >> c & 1) == 1 ? 0.8f + 0.1f * rng.NextFloat() : -0.8f;
            ids[i * 4] = 1; ids[i * 4 + 1] = 4 + colour; ids[i * 4 + 2] = 2;
        }
        return (Tensor.FromArray(x, b, 3, 8, 8), new IntTensor(ids, b, 4));
    }

    [Fact]
    public void The_loss_is_the_symmetric_cross_entropy_of_scaled_cosine_similarities()
    {
        var m = new ClipModel(Tiny, new Rng(1));
        var (x, ids) = Batch(5, new Rng(2));
        float[] I, T;
        using (Autograd.NoGrad()) { I = m.EncodeImage(x).ToArray(); T = m.EncodeText(ids).ToArray(); }
        int e = Tiny.EmbedDim;
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(1.0, Math.Sqrt(I.AsSpan(i * e, e).ToArray().Sum(v => (double)v * v)), 1e-5);
            Assert.Equal(1.0, Math.Sqrt(T.AsSpan(i * e, e).ToArray().Sum(v => (double)v * v)), 1e-5);
        }
        double scale = 1 / 0.07, total = 0;
        var L = new double[5, 5];
        for (int i = 0; i < 5; i++) for (int j = 0; j < 5; j++) { double d = 0; for (int k = 0; k < e; k++) d += (double)I[i * e + k] * T[j * e + k]; L[i, j] = scale * d; }
        for (int i = 0; i < 5; i++)
        {
            double zr = 0, zc = 0;
            for (int j = 0; j < 5; j++) { zr += Math.Exp(L[i, j]); zc += Math.Exp(L[j, i]); }
            total += (Math.Log(zr) - L[i, i]) + (Math.Log(zc) - L[i, i]);
        }
        Assert.Equal(total / 10, m.Loss(x, ids).Item(), 1e-4);
    }

    [Fact]
    public void The_temperature_gradient_matches_finite_differences()
    {
        var m = new ClipModel(Tiny, new Rng(3));
        var (x, ids) = Batch(6, new Rng(4));
        m.Loss(x, ids).Backward();
        double g = m.LogScale.Grad!.Span[0];
        float t0 = m.LogScale.Span[0]; const float h = 1e-2f;
        double Loss(float t) { m.LogScale.Span[0] = t; using var _ = Autograd.NoGrad(); return m.Loss(x, ids).Item(); }
        double fd = (Loss(t0 + h) - Loss(t0 - h)) / (2 * h);
        Assert.Equal(fd, g, Math.Max(1e-3, 0.02 * Math.Abs(fd)));
    }

    [Fact]
    public void A_tiny_clip_learns_to_retrieve_the_right_caption()
    {
        var m = new ClipModel(Tiny, new Rng(5));
        var adam = new AdamW(m.NamedParameters(), new AdamWConfig(3e-3f, WeightDecay: 0f));
        var rng = new Rng(6);
        for (int step = 0; step < 60; step++)
            using (TensorScope.Begin())
            {
                adam.ZeroGrad();
                var (x, ids) = Batch(6, rng);
                m.Loss(x, ids).Backward();
                adam.StepOnce();
            }
        var (vx, vids) = Batch(6, new Rng(7));
        float[] I, T;
        using (Autograd.NoGrad()) { I = m.EncodeImage(vx).ToArray(); T = m.EncodeText(vids).ToArray(); }
        int e = Tiny.EmbedDim;
        for (int i = 0; i < 6; i++)
        {
            int best = Enumerable.Range(0, 6).MaxBy(j => Enumerable.Range(0, e).Sum(k => I[i * e + k] * T[j * e + k]));
            Assert.Equal(i, best);
        }
    }
}
