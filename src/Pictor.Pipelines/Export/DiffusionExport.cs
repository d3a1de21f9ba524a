using Pictor.Models.Text;
using Pictor.Models.Unet;
using Pictor.Nn;
using Pictor.Pipelines.Diffusion;
using static Pictor.Pipelines.Export.LayerExport;
using DataType = Pictor.Pipelines.Export.Onnx.TensorProto.Types.DataType;

namespace Pictor.Pipelines.Export;

// Dimension legend: B batch (the dynamic axis), S text tokens, D text width, Dc context width, Dp pooled width,
// C channels, H/W image size, E time-embedding width.

/// <summary>
/// The diffusion family's two networks as ONNX graphs, each mirroring its module's Forward: the text encoder
/// (ids -> tokens, pooled) and the UNet (x, t, context, pooled -> the v or eps prediction). Module variants the
/// writer does not map (CoordConv planes, ResBlock slopes, token blobs and places) are refused by name.
/// </summary>
internal static class DiffusionExport
{
    /// <summary>text_encoder: ids [B, S] int64 -> tokens [B, S, Dc], pooled [B, Dc].</summary>
    public static OnnxGraph TextEncoder(TextEncoder enc)
    {
        var cfg = enc.Config;
        var g = new OnnxGraph("pictor_text_encoder");
        var (tokens, pooled) = TextExport.Tower(g, enc, "", g.Input("ids", DataType.Int64, -1, cfg.Context));
        g.Output(tokens, "tokens", DataType.Float, -1, cfg.Context, cfg.OutDim);                  // (B, S, Dc)
        g.Output(pooled, "pooled", DataType.Float, -1, cfg.OutDim);                                // (B, Dc)
        return g;
    }

    /// <summary>unet: x [B, C, H, W], t [B] (the step index as a float), context [B, S, Dc], pooled [B, Dp] (when the
    /// config has one) -> prediction [B, C, H, W].</summary>
    public static OnnxGraph Unet(UnetModel unet, int imageSize, int textContext)
    {
        var cfg = unet.Config;
        if (cfg.CoordChannels)
            Refuse("conv_in", "CoordConv planes", "the x/y input planes of coord_channels are not mapped yet");
        var g = new OnnxGraph("pictor_unet");
        var known = unet.NamedChildren.Select(n => n.Name).Where(n => n != "token_places").ToArray();
        var c = Children(unet, "", known);
        var x = g.Input("x", DataType.Float, -1, cfg.ImageChannels, imageSize, imageSize);
        var t = g.Input("t", DataType.Float, -1);
        var context = g.Input("context", DataType.Float, -1, textContext, cfg.ContextDim);
        var temb = TimeEmbedding(g, t, cfg.TimeSinusoidDim);                                        // (B, sinusoid)
        temb = Linear(g, (Linear)c["time.fc2"], "time.fc2",
            Silu(g, Linear(g, (Linear)c["time.fc1"], "time.fc1", temb, 2)), 2);                     // (B, E)
        if (cfg.PooledDim > 0)
        {
            var pooled = g.Input("pooled", DataType.Float, -1, cfg.PooledDim);
            temb = g.Add(temb, Linear(g, (Linear)c["pooled_fc"], "pooled_fc", pooled, 2));
        }
        var h = Conv(g, (Conv2d)c["conv_in"], "conv_in", x);                                        // (B, C0, H, W)
        var hs = new Stack<string>(); hs.Push(h);
        int ri = 0, ai = 0, levels = cfg.Channels.Length;
        for (int lvl = 0; lvl < levels; lvl++)
        {
            for (int i = 0; i < cfg.BlocksPerLevel; i++)
            {
                h = Res(g, c, $"enc_res.{ri++}", h, temb);
                if (cfg.Attention[lvl]) h = Attn(g, c, $"enc_attn.{ai++}", h, context);
                hs.Push(h);
            }
            if (lvl != levels - 1) { h = Conv(g, (Conv2d)c[$"down.{lvl}"], $"down.{lvl}", h); hs.Push(h); }
        }
        h = Res(g, c, "mid_res1", h, temb);
        h = Res(g, c, "mid_res2", Attn(g, c, "mid_attn", h, context), temb);
        ri = 0; ai = 0; int ui = 0;
        for (int lvl = levels - 1; lvl >= 0; lvl--)
        {
            for (int i = 0; i < cfg.BlocksPerLevel + 1; i++)
            {
                h = Res(g, c, $"dec_res.{ri++}", g.Concat(1, h, hs.Pop()), temb);
                if (cfg.Attention[lvl]) h = Attn(g, c, $"dec_attn.{ai++}", h, context);
            }
            if (lvl != 0) { h = Conv(g, (Conv2d)c[$"up.{ui}"], $"up.{ui}", g.UpsampleNearest(h, 2)); ui++; }
        }
        h = GroupNorm(g, (GroupNorm)c["norm_out"], "norm_out", h, silu: true);
        var y = Conv(g, (Conv2d)c["conv_out"], "conv_out", h);
        g.Output(y, "prediction", DataType.Float, -1, cfg.ImageChannels, imageSize, imageSize);
        return g;
    }

    /// <summary>[sin(t f_i), cos(t f_i)], f_i = 10000^(-i/half), in double as <see cref="TimestepEmbedding"/> computes
    /// it, rounded to float once: t [B] -> [B, dim].</summary>
    private static string TimeEmbedding(OnnxGraph g, string t, int dim)
    {
        int half = dim / 2;
        var f = new double[half];
        for (int i = 0; i < half; i++) f[i] = Math.Exp(-Math.Log(10000.0) * i / half);
        var a = g.Mul(g.Unsqueeze(g.Cast(t, DataType.Double), 1), g.Doubles(f));                  // (B, half)
        return g.Cast(g.Concat(1, g.Sin(a), g.Cos(a)), DataType.Float);                            // (B, dim)
    }

    /// <summary>A UNet ResBlock, or the VQ-VAE's (temb null): GN+SiLU+conv, + Linear(SiLU(temb)), GN+SiLU+conv, +
    /// the input (through a 1x1 conv when the channels change).</summary>
    public static string Res(OnnxGraph g, Dictionary<string, Module> parent, string path, string x, string? temb)
    {
        var c = Children(parent[path], path, "norm1", "conv1", "temb", "norm2", "conv2", "skip");
        var h = Conv(g, (Conv2d)c["conv1"], path + ".conv1",
            GroupNorm(g, (GroupNorm)c["norm1"], path + ".norm1", x, silu: true));                 // (B, Cout, H, W)
        if (c.TryGetValue("temb", out var tl))
        {
            var lin = (Linear)tl;
            if (temb == null)
                Refuse(path + ".temb", "Linear", "this ResBlock takes a time embedding and the graph has none");
            var tb = Linear(g, lin, path + ".temb", Silu(g, temb!), 2);                           // (B, Cout)
            h = g.Add(h, g.Reshape(tb, 0, lin.Out, 1, 1));
        }
        h = Conv(g, (Conv2d)c["conv2"], path + ".conv2",
            GroupNorm(g, (GroupNorm)c["norm2"], path + ".norm2", h, silu: true));
        return g.Add(h, c.TryGetValue("skip", out var s) ? Conv(g, (Conv2d)s, path + ".skip", x) : x);
    }

    /// <summary>AttnBlock: GN, 1x1 proj_in, pixels as tokens, [LN + self-attention] + residual, [LN + cross-attention
    /// to the text] + residual, back to an image, 1x1 proj_out, + the input.</summary>
    private static string Attn(OnnxGraph g, Dictionary<string, Module> parent, string path, string x, string context)
    {
        var c = Children(parent[path], path, "norm", "proj_in", "ln1", "attn1", "ln2", "attn2", "proj_out");
        int ch = ((GroupNorm)c["norm"]).Weight.Numel;
        var h = Conv(g, (Conv2d)c["proj_in"], path + ".proj_in",
            GroupNorm(g, (GroupNorm)c["norm"], path + ".norm", x, silu: false));
        h = g.Transpose(g.Reshape(h, 0, ch, -1), 0, 2, 1);                                         // (B, T, C)
        h = g.Add(Attention(g, (MultiHeadAttention)c["attn1"], path + ".attn1",
            LayerNorm(g, (LayerNorm)c["ln1"], path + ".ln1", h), null, null), h);
        h = g.Add(Attention(g, (MultiHeadAttention)c["attn2"], path + ".attn2",
            LayerNorm(g, (LayerNorm)c["ln2"], path + ".ln2", h), context, null), h);
        h = g.ReshapeLike(g.Transpose(h, 0, 2, 1), g.Shape(x));                                   // (B, C, H, W)
        return g.Add(Conv(g, (Conv2d)c["proj_out"], path + ".proj_out", h), x);
    }
}
