using Pictor.Engine;
using Pictor.Models.Text;
using Pictor.Models.Unet;
using Pictor.Nn;

namespace Pictor.Models.Clip;

// Dimension legend: B batch, E joint embedding width, C channels, H = W image size, S text tokens.

/// <summary>CLIP configuration: the text tower (its OutDim is the joint width E) and a small ResNet image
/// tower.</summary>
public sealed record ClipConfig(
    TextEncoderConfig Text,
    int[] ImageChannels,       // per level; each level but the last halves the resolution
    int Groups = 8,
    int ImageInput = 3)
{
    public int EmbedDim => Text.OutDim;
}

/// <summary>
/// CLIP (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision", figure 3): a
/// text encoder and an image encoder map a caption and an image to unit vectors in one space; training makes the B
/// matching pairs of a batch the most similar of all B x B pairs with the symmetric cross-entropy over
/// logits = exp(t) I T^T, where t is a learned log temperature (initialised to ln(1/0.07) and clamped at ln 100, as in
/// the paper). Text tower: <see cref="TextEncoder"/> (its pooled vector). Image tower: conv, ResBlocks with stride-2
/// convolutions between levels, GroupNorm + SiLU, global average pooling, a linear projection.
/// </summary>
public sealed class ClipModel : Module
{
    public const float MaxLogScale = 4.6051702f;   // ln 100
    public ClipConfig Config { get; }
    public TextEncoder Text { get; }
    private readonly Conv2d convIn;
    private readonly List<ResBlock> res = new();
    private readonly List<Conv2d> down = new();
    private readonly GroupNorm norm;
    private readonly Linear proj;
    public Tensor LogScale { get; }

    public ClipModel(ClipConfig cfg, Rng rng)
    {
        if (cfg.ImageChannels.Length == 0) Throw.Argument("CLIP's image tower needs at least one channel level");
        Config = cfg;
        Text = Child("text", new TextEncoder(cfg.Text, rng));
        int c = cfg.ImageChannels[0];
        convIn = Child("image.conv_in", new Conv2d(rng, cfg.ImageInput, c, 3, padding: 1));
        for (int lvl = 0; lvl < cfg.ImageChannels.Length; lvl++)
        {
            res.Add(Child($"image.res.{lvl}", new ResBlock(rng, c, cfg.ImageChannels[lvl], 0, cfg.Groups)));
            c = cfg.ImageChannels[lvl];
            if (lvl != cfg.ImageChannels.Length - 1)
                down.Add(Child($"image.down.{lvl}", new Conv2d(rng, c, c, 3, stride: 2, padding: 1)));
        }
        norm = Child("image.norm", new GroupNorm(cfg.Groups, c));
        proj = Child("image.proj", new Linear(rng, c, cfg.EmbedDim));
        LogScale = Param("log_scale", Tensor.Full(MathF.Log(1f / 0.07f), 1));
    }

    /// <summary>Images [B, 3, H, W] in [-1, 1] -> unit embeddings [B, E].</summary>
    public Tensor EncodeImage(Tensor x)
    {
        if (x.Rank != 4 || x.Shape[1] != Config.ImageInput)
            Throw.Argument($"CLIP image input must be [B, {Config.ImageInput}, H, W], got {Shape.Format(x.Shape)}");
        var h = convIn.Forward(x);
        for (int lvl = 0; lvl < res.Count; lvl++)
        {
            h = res[lvl].Forward(h);
            if (lvl < down.Count) h = down[lvl].Forward(h);
        }
        var pooled = Ops.Mean(norm.ForwardSilu(h), [2, 3]);          // (B, C)
        return Normalize(proj.Forward(pooled));                       // (B, E)
    }

    /// <summary>Caption ids [B, S] -> unit embeddings [B, E].</summary>
    public Tensor EncodeText(IntTensor ids) => Normalize(Text.Forward(ids).Pooled);

    /// <summary>x / ||x|| per row.</summary>
    public static Tensor Normalize(Tensor x) =>
        Ops.Div(x, Ops.Sqrt(Ops.AddScalar(Ops.Sum(Ops.Square(x), [1], keepDim: true), 1e-12f)));

    /// <summary>The symmetric contrastive loss of B matching (image, caption) pairs: (CE(L, arange) + CE(L^T, arange))
    /// / 2 with L = exp(t) I T^T [B, B]. The temperature is clamped at ln 100 first.
    /// Data-parallel (OpenCLIP's gathered features): <paramref name="images"/> and <paramref name="ids"/> are this
    /// rank's M pairs of the batch, <paramref name="gather"/> returns the embeddings of the whole batch [B, E] with
    /// this rank's rows (and their gradient) in place, and every one of the <paramref name="ranks"/> ranks computes
    /// the same loss; the gradient reaching this rank's encoders is then its part of the batch's, and t's is divided
    /// by the ranks, so the gradients summed over the ranks are those of one process.</summary>
    public Tensor Loss(Tensor images, IntTensor ids, Func<Tensor, Tensor>? gather = null, int ranks = 1)
    {
        int m = images.Shape[0];
        if (ids.Shape[0] != m) Throw.Argument($"{m} images but {ids.Shape[0]} captions");
        var s = LogScale.Span;
        if (s[0] > MaxLogScale) s[0] = MaxLogScale;
        var img = EncodeImage(images); var txt = EncodeText(ids);    // (M, E) each
        if (gather != null) { img = gather(img); txt = gather(txt); }   // (B, E) each
        int b = img.Shape[0];
        // value t, gradient dL/dt / ranks: t * k + sg[t] (1 - k)
        var t = ranks == 1 ? LogScale : Ops.Add(Ops.MulScalar(LogScale, 1f / ranks),
            Ops.MulScalar(LogScale.Detach(), 1f - 1f / ranks));
        var logits = Ops.Mul(Ops.MatMul(img, Ops.Transpose(txt, 0, 1)), Ops.Exp(t));   // (B, B)
        var diag = new IntTensor(Enumerable.Range(0, b).ToArray(), b);
        return Ops.MulScalar(Ops.Add(Ops.CrossEntropy(logits, diag),
            Ops.CrossEntropy(Ops.Transpose(logits, 0, 1), diag)), 0.5f);
    }
}
