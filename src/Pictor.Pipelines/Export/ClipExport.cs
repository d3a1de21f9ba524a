using Pictor.Models.Clip;
using Pictor.Models.Text;
using Pictor.Nn;
using static Pictor.Pipelines.Export.LayerExport;
using DataType = Pictor.Pipelines.Export.Onnx.TensorProto.Types.DataType;

namespace Pictor.Pipelines.Export;

// Dimension legend: B batch, S text tokens, E joint embedding width, C channels, H = W image size.

/// <summary>CLIP's two towers (<see cref="ClipModel"/>) as ONNX graphs: clip_text (ids -> unit embedding) and
/// clip_image (image -> unit embedding). The logit scale exp(log_scale) goes to pipeline.json.</summary>
internal static class ClipExport
{
    /// <summary>clip_text: ids [B, S] int64 -> embedding [B, E], the text encoder's pooled vector made unit.</summary>
    public static OnnxGraph Text(ClipModel clip)
    {
        var cfg = clip.Config.Text;
        var g = new OnnxGraph("pictor_clip_text");
        var c = Children(clip, "", Known(clip));
        var (_, pooled) = TextExport.Tower(g, (TextEncoder)c["text"], "text",
            g.Input("ids", DataType.Int64, -1, cfg.Context));
        g.Output(Unit(g, pooled), "embedding", DataType.Float, -1, clip.Config.EmbedDim);
        return g;
    }

    /// <summary>clip_image: image [B, 3, H, W] in [-1, 1] -> embedding [B, E]: conv, ResBlocks with stride-2 convs
    /// between levels, GN + SiLU, the mean over pixels, a projection, made unit.</summary>
    public static OnnxGraph Image(ClipModel clip, int imageSize)
    {
        var cfg = clip.Config;
        var g = new OnnxGraph("pictor_clip_image");
        var c = Children(clip, "", Known(clip));
        var x = g.Input("image", DataType.Float, -1, cfg.ImageInput, imageSize, imageSize);
        var h = Conv(g, (Conv2d)c["image.conv_in"], "image.conv_in", x);
        for (int lvl = 0; lvl < cfg.ImageChannels.Length; lvl++)
        {
            h = DiffusionExport.Res(g, c, $"image.res.{lvl}", h, null);
            if (lvl != cfg.ImageChannels.Length - 1)
                h = Conv(g, (Conv2d)c[$"image.down.{lvl}"], $"image.down.{lvl}", h);
        }
        var pooled = g.ReduceMean(GroupNorm(g, (GroupNorm)c["image.norm"], "image.norm", h, silu: true), false, 2, 3);
        var e = Linear(g, (Linear)c["image.proj"], "image.proj", pooled, 2);                     // (B, E)
        g.Output(Unit(g, e), "embedding", DataType.Float, -1, cfg.EmbedDim);
        return g;
    }

    /// <summary>x / sqrt(sum(x^2) + 1e-12) per row, as <see cref="ClipModel.Normalize"/>.</summary>
    private static string Unit(OnnxGraph g, string x) =>
        g.Div(x, g.Sqrt(g.Add(g.ReduceSumSquare(x, true, 1), g.Scalar(1e-12f))));

    private static string[] Known(ClipModel clip) => [.. clip.NamedChildren.Select(n => n.Name)
        .Where(n => n == "text" || n.StartsWith("image.", StringComparison.Ordinal))];
}
