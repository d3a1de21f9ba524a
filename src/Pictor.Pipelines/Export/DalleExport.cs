using Pictor.Models.Dalle;
using Pictor.Models.Transformer;
using Pictor.Models.Vq;
using Pictor.Nn;
using static Pictor.Pipelines.Export.LayerExport;
using DataType = Pictor.Pipelines.Export.Onnx.TensorProto.Types.DataType;

namespace Pictor.Pipelines.Export;

// Dimension legend: B batch, T = L + G*G positions, L text slots, G image grid side, D width, V vocabulary,
// K codes, Dq code width, H = W image size.

/// <summary>The DALL-E family's networks as ONNX graphs: the transformer's full-sequence forward (ids -> logits at
/// every position, causal; no KV cache, so a sampler reruns the sequence per token) and the VQ-VAE decoder (code grid
/// -> image). The discrete VAE's Gumbel quantiser is refused by name.</summary>
internal static class DalleExport
{
    /// <summary>dalle_transformer: ids [B, T] int64 -> logits [B, T, V].</summary>
    public static OnnxGraph Transformer(DalleTransformer tr)
    {
        var cfg = tr.Config;
        var g = new OnnxGraph("pictor_dalle_transformer");
        var c = Children(tr, "", [.. Enumerable.Range(0, cfg.Layers).Select(i => $"blocks.{i}"), "tok_emb", "ln_f",
            "head"]);
        var state = tr.StateDict();
        var ids = g.Input("ids", DataType.Int64, -1, cfg.SeqLen);
        // Positions (T, D): text_pos, then row_pos[j / G] + col_pos[j % G] for image token j.
        var grid = g.Reshape(g.Add(g.Reshape(g.Weight("row_pos", state["row_pos"]), cfg.Grid, 1, cfg.Dim),
            g.Reshape(g.Weight("col_pos", state["col_pos"]), 1, cfg.Grid, cfg.Dim)), cfg.ImageLen, cfg.Dim);
        var pos = g.Concat(0, g.Weight("text_pos", state["text_pos"]), grid);
        var x = g.Add(g.Gather(g.Weight("tok_emb.weight", ((Embedding)c["tok_emb"]).Weight), ids), pos);  // (B, T, D)
        var mask = CausalMask(g, cfg.SeqLen);
        for (int i = 0; i < cfg.Layers; i++) x = Block(g, (ArBlock)c[$"blocks.{i}"], $"blocks.{i}", x, mask);
        var logits = Linear(g, (Linear)c["head"], "head", LayerNorm(g, (LayerNorm)c["ln_f"], "ln_f", x), 3);
        g.Output(logits, "logits", DataType.Float, -1, cfg.SeqLen, cfg.Vocab);                    // (B, T, V)
        return g;
    }

    /// <summary>vq_decoder: codes [B, G, G] int64 (0..K-1) -> image [B, 3, H, W] in about [-1, 1]: codebook rows, 1x1
    /// conv, ResBlocks, nearest x2 upsample + conv per level, GN + SiLU, conv_out.</summary>
    public static OnnxGraph VqDecoder(VqVae vq, int imageSize)
    {
        var cfg = vq.Config;
        if (vq.Quantizer == null)
            Refuse("quantizer", "GumbelQuantizer", "the discrete VAE's code lookup is not mapped yet");
        int grid = imageSize / cfg.Downsample;
        var g = new OnnxGraph("pictor_vq_decoder");
        var c = Children(vq, "", [.. vq.NamedChildren.Select(n => n.Name)]);
        var codes = g.Input("codes", DataType.Int64, -1, grid, grid);
        var q = g.Gather(g.Weight("quantizer.codebook", vq.Quantizer!.Codebook), codes);           // (B, G, G, Dq)
        var h = Conv(g, (Conv2d)c["dec_in"], "dec_in", g.Transpose(q, 0, 3, 1, 2));                // (B, C, G, G)
        int ri = 0, ui = 0;
        for (int lvl = cfg.Channels.Length - 1; lvl >= 0; lvl--)
        {
            for (int i = 0; i < cfg.BlocksPerLevel; i++) h = DiffusionExport.Res(g, c, $"dec_res.{ri++}", h, null);
            if (lvl != 0) { h = Conv(g, (Conv2d)c[$"up.{ui}"], $"up.{ui}", g.UpsampleNearest(h, 2)); ui++; }
        }
        var y = Conv(g, (Conv2d)c["dec_out"], "dec_out", GroupNorm(g, (GroupNorm)c["dec_norm"], "dec_norm", h, true));
        g.Output(y, "image", DataType.Float, -1, cfg.ImageChannels, imageSize, imageSize);
        return g;
    }
}
