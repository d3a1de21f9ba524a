using Pictor.Models.Text;
using Pictor.Models.Transformer;
using Pictor.Nn;
using static Pictor.Pipelines.Export.LayerExport;

namespace Pictor.Pipelines.Export;

// Dimension legend: B batch, S text tokens, D encoder width, Dc output width.

/// <summary>The text encoder (<see cref="TextEncoder"/>) as ONNX nodes, shared by the diffusion family's text encoder
/// and CLIP's text tower: token + position embeddings, the bidirectional pre-LN blocks, the final LayerNorm, the
/// projection, and the mean over positions.</summary>
internal static class TextExport
{
    /// <summary>ids (B, S) int64 -> (tokens (B, S, Dc), pooled (B, Dc)); <paramref name="path"/> is the encoder's
    /// parameter prefix ("" for the diffusion text encoder, "text" inside CLIP).</summary>
    public static (string Tokens, string Pooled) Tower(OnnxGraph g, TextEncoder enc, string path, string ids)
    {
        var cfg = enc.Config;
        var c = Children(enc, path, [.. Enumerable.Range(0, cfg.Layers).Select(i => $"blocks.{i}"), "tok_emb", "ln_f",
            "proj"]);
        var pos = enc.StateDict()["pos_emb"];
        var x = g.Gather(g.Weight(Join(path, "tok_emb.weight"), ((Embedding)c["tok_emb"]).Weight), ids);   // (B, S, D)
        x = g.Add(x, g.Weight(Join(path, "pos_emb"), pos));
        for (int i = 0; i < cfg.Layers; i++)
            x = Block(g, (ArBlock)c[$"blocks.{i}"], Join(path, $"blocks.{i}"), x, null);
        x = LayerNorm(g, (LayerNorm)c["ln_f"], Join(path, "ln_f"), x);
        var tokens = Linear(g, (Linear)c["proj"], Join(path, "proj"), x, 3);                               // (B, S, Dc)
        return (tokens, g.ReduceMean(tokens, false, 1));                                                    // (B, Dc)
    }
}
