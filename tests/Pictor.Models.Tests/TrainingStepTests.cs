using Pictor.Engine;
using Pictor.Models.Transformer;
using Pictor.Models.Unet;
using Pictor.Nn;
using Pictor.Nn.Optim;

namespace Pictor.Models.Tests;

[CollectionDefinition("BufferPool", DisableParallelization = true)]
public sealed class BufferPoolCollection;

/// <summary>Whole training steps on tiny configurations: steady-state buffer reuse and bit-exact reruns.</summary>
[Collection("BufferPool")]
public class TrainingStepTests
{
    private static readonly UnetConfig TinyUnet = new([16, 32], [false, true], BlocksPerLevel: 1, ContextDim: 24, Heads: 2, HeadDim: 8, TimeDim: 32, TimeSinusoidDim: 16, Groups: 8);
    private static readonly ArConfig TinyAr = new(Layers: 2, Dim: 32, Heads: 4, TextVocab: 50, ImageVocab: 20, TextLen: 4, ImageLen: 8);

    /// <summary>Runs <paramref name="steps"/> AdamW steps of the UNet and returns the final weights.</summary>
    private static float[] TrainUnet(int steps, out long allocationsAfterWarmup, out long allocationsAtEnd)
    {
        var rng = new Rng(1);
        var model = new UnetModel(TinyUnet, rng);
        var opt = new AdamW(model.NamedParameters(), new AdamWConfig(LearningRate: 1e-3f));
        var data = new Rng(2);
        allocationsAfterWarmup = 0;
        for (int s = 0; s < steps; s++)
        {
            using (var scope = TensorScope.Begin())
            {
                var x = data.Randn(2, 3, 8, 8); var eps = data.Randn(2, 3, 8, 8); var ctx = data.Randn(2, 5, 24);
                float[] t = [data.NextInt(1000), data.NextInt(1000)];
                opt.ZeroGrad();
                Ops.MseLoss(model.Forward(x, t, ctx), eps).Backward();
                GradClip.ClipByGlobalNorm(model.Parameters(), 1f);
                opt.StepOnce();
            }
            if (s == 1) allocationsAfterWarmup = BufferPool.Allocations;
        }
        allocationsAtEnd = BufferPool.Allocations;
        return model.Parameters().SelectMany(p => p.ToArray()).ToArray();
    }

    [Fact]
    public void Unet_step_reuses_pooled_buffers_in_steady_state()
    {
        TrainUnet(5, out long warm, out long end);
        Assert.Equal(warm, end);
    }

    [Fact]
    public void Unet_training_is_bit_identical_run_to_run()
    {
        var a = TrainUnet(3, out _, out _);
        var b = TrainUnet(3, out _, out _);
        Assert.True(a.AsSpan().SequenceEqual(b), "two runs with the same seeds produced different weights");
    }

    [Fact]
    public void Ar_step_reuses_pooled_buffers_and_loss_falls()
    {
        var model = new ArTransformer(TinyAr, new Rng(3));
        var opt = new AdamW(model.NamedParameters(), new AdamWConfig(LearningRate: 3e-3f, WeightDecay: 0f));
        // One fixed sequence: the model must be able to memorise it.
        var ids = new IntTensor(Enumerable.Range(0, 2 * TinyAr.SeqLen).Select(i => i % TinyAr.SeqLen < 4 ? i % 50 : 50 + i % 20).ToArray(), 2, TinyAr.SeqLen);
        float first = 0, last = 0; long warm = 0;
        for (int s = 0; s < 30; s++)
        {
            using (var scope = TensorScope.Begin())
            {
                opt.ZeroGrad();
                var loss = model.Loss(ids);
                if (s == 0) first = loss.Item();
                last = loss.Item();
                loss.Backward();
                opt.StepOnce();
            }
            if (s == 1) warm = BufferPool.Allocations;
        }
        Assert.Equal(warm, BufferPool.Allocations);
        Assert.True(last < 0.5f * first, $"loss went from {first} to {last}; a 2-layer model should memorise one sequence");
    }
}
