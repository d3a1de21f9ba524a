using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Png;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Editing;
using Pictor.Pipelines.Vq;

namespace Pictor.Pipelines.Tests;

/// <summary>Editing on tiny models: the identities the issue asks for (an empty mask keeps the source, a full mask
/// and strength 1 are generation, all rows kept are the source's tokens), metadata, verify, and the bad
/// inputs.</summary>
[Collection("BufferPool")]
public class EditingTests
{
    private static readonly string[] Samplers = ["dpm++", "ddim", "ddpm"];

    private static Image Noise(int size, ulong seed)
    {
        var img = new Image(size, size);
        var rng = new Rng(seed);
        for (int i = 0; i < img.Rgba.Length; i++) img.Rgba[i] = i % 4 == 3 ? (byte)255 : (byte)rng.NextInt(256);
        return img;
    }

    private static Image Mask(int size, Func<int, int, bool> repaint)
    {
        var m = new Image(size, size);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                byte v = repaint(x, y) ? (byte)255 : (byte)0;
                int i = 4 * (y * size + x);
                m.Rgba[i] = m.Rgba[i + 1] = m.Rgba[i + 2] = v; m.Rgba[i + 3] = 255;
            }
        return m;
    }

    private static GenerationRequest Request(string sampler, float? cfg = null) =>
        new("a small red circle") { Steps = 4, Seed = 11, Count = 2, Sampler = sampler, Guidance = cfg, Eta = 0.5f };

    [Fact]
    public void Inpainting_with_an_all_zero_mask_returns_the_input_exactly()
    {
        var m = new TextToImage(PipelineTests.Tiny(), "tiny");
        var src = Noise(16, 3);
        foreach (var s in Samplers)
        {
            var r = m.Edit(EditRequest.Inpaint(Request(s), src, Mask(16, (_, _) => false), resample: 2));
            Assert.All(r.Images, i => Assert.Equal(src.Rgba, i.Image.Rgba));
        }
    }

    [Fact]
    public void Inpainting_with_an_all_one_mask_and_no_resampling_is_generation_from_the_same_seed()
    {
        var m = new TextToImage(PipelineTests.Tiny(), "tiny");
        foreach (var s in Samplers)
            foreach (float? cfg in new float?[] { null, 1f })
            {
                var g = Request(s, cfg);
                var plain = m.Generate(g);
                var e = m.Edit(EditRequest.Inpaint(g, Noise(16, 3), Mask(16, (_, _) => true), resample: 0));
                for (int i = 0; i < 2; i++) Assert.Equal(plain.Images[i].Image.Rgba, e.Images[i].Image.Rgba);
            }
    }

    [Fact]
    public void Strength_one_is_generation_from_the_same_seed()
    {
        var m = new TextToImage(PipelineTests.Tiny(), "tiny");
        foreach (var s in Samplers)
        {
            var g = Request(s);
            var plain = m.Generate(g);
            var e = m.Edit(EditRequest.ImageToImage(g, Noise(16, 3), 1f));
            for (int i = 0; i < 2; i++) Assert.Equal(plain.Images[i].Image.Rgba, e.Images[i].Image.Rgba);
            var half = m.Edit(EditRequest.ImageToImage(g, Noise(16, 3), 0.5f));
            Assert.NotEqual(plain.Images[0].Image.Rgba, half.Images[0].Image.Rgba);
        }
    }

    [Fact]
    public void Inpainting_keeps_the_unmasked_region_and_resampling_runs_every_sampler()
    {
        var m = new TextToImage(PipelineTests.Tiny(), "tiny");
        var src = Noise(16, 5);
        var mask = Mask(16, (x, y) => x >= 4 && x < 12 && y >= 4 && y < 12);
        var steps = new List<int>();
        foreach (var s in Samplers)
        {
            steps.Clear();
            var r = m.Edit(EditRequest.Inpaint(Request(s), src, mask, resample: 2),
                new ReporterOf(p => steps.Add(p.Total)));
            Assert.All(steps, t => Assert.Equal(4 * 3, t));   // 4 steps, each run 1 + 2 times
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++)
                {
                    int i = 4 * (y * 16 + x);
                    bool inside = x >= 4 && x < 12 && y >= 4 && y < 12;
                    if (!inside)
                        Assert.Equal(src.Rgba.AsSpan(i, 4).ToArray(), r.Images[0].Image.Rgba.AsSpan(i, 4).ToArray());
                }
        }
    }

    [Fact]
    public void A_mask_with_transparency_repaints_where_alpha_is_zero_as_openai_reads_it()
    {
        var m = new TextToImage(PipelineTests.Tiny(), "tiny");
        var src = Noise(16, 6);
        var grey = Mask(16, (x, _) => x < 8);
        var alpha = Noise(16, 7);   // colours are ignored once a mask has transparency
        for (int i = 0; i < 256; i++) alpha.Rgba[4 * i + 3] = i % 16 < 8 ? (byte)0 : (byte)200;
        var g = Request("ddim");
        var byGrey = m.Edit(EditRequest.Inpaint(g, src, grey, resample: 0));
        var byAlpha = m.Edit(EditRequest.Inpaint(g, src, alpha, resample: 0));
        Assert.Equal(byGrey.Images[0].Image.Rgba, byAlpha.Images[0].Image.Rgba);
        Assert.Equal(EditParameters.PixelHash(alpha), byAlpha.Images[0].Parameters.Edit!.MaskSha256);
        // The source itself as the mask: its transparent pixels are the region to repaint.
        var holed = Noise(16, 6);
        for (int i = 0; i < 256; i++) if (i % 16 < 8) holed.Rgba[4 * i + 3] = 0;
        Assert.Equal(byGrey.Images[1].Image.Rgba, m.Edit(EditRequest.Inpaint(g, holed, holed, resample: 0))
            .Images[1].Image.Rgba);
        var none = Mask(16, (_, _) => false);
        none.Rgba[3] = 100;
        Assert.Contains("no fully transparent pixel (alpha 0)",
            Assert.Throws<ArgumentException>(() => m.Edit(EditRequest.Inpaint(g, src, none))).Message);
        var soft = Mask(16, (_, _) => false);
        for (int i = 0; i < 256; i++) soft.Rgba[4 * i + 3] = i == 0 ? (byte)0 : (byte)128;
        Assert.Contains("255 of 256 pixels are half transparent",
            Assert.Throws<ArgumentException>(() => m.Edit(EditRequest.Inpaint(g, src, soft))).Message);
    }

    [Fact]
    public void Edits_record_their_inputs_in_metadata_and_regenerate_from_them()
    {
        var m = new TextToImage(PipelineTests.Tiny(), "tiny");
        var src = Noise(16, 3); var mask = Mask(16, (x, _) => x < 8);
        var plain = m.Generate(Request("ddim"));
        Assert.DoesNotContain("edit", plain.Images[0].Parameters.ToJson());   // plain metadata is as it always was
        var r = m.Edit(EditRequest.Inpaint(Request("ddim"), src, mask, resample: 1));
        var meta = r.Images[1].Parameters;
        var back = GenerationParameters.FromPng(PngDecoder.Decode(Png(r.Images[1])))!;
        Assert.Equal(meta, back);
        Assert.Equal(EditOperation.Inpaint, back.Edit!.Operation);
        Assert.Equal(1, back.Edit.Resample);
        Assert.Equal(EditParameters.PixelHash(src), back.Edit.SourceSha256);
        Assert.Equal(EditParameters.PixelHash(mask), back.Edit.MaskSha256);
        Assert.Contains("Edit: inpaint, Resample: 1", back.ToA1111());
        Assert.Equal(r.Images[1].Image.Rgba, m.RegenerateEdit(back, src, mask).Rgba);
        Assert.Contains("pass the source image it was made from",
            Assert.Throws<ArgumentException>(() => m.RegenerateEdit(back, Noise(16, 4), mask)).Message);
        Assert.Contains("pass the mask it was made with",
            Assert.Throws<ArgumentException>(() => m.RegenerateEdit(back, src, Mask(16, (x, _) => x < 9))).Message);
        var i2i = m.Edit(EditRequest.ImageToImage(Request("dpm++"), src, 0.4f)).Images[0];
        var g = GenerationParameters.FromPng(PngDecoder.Decode(Png(i2i)))!;
        Assert.Equal(0.4f, g.Edit!.Strength);
        Assert.Null(g.Edit.MaskSha256);
        Assert.Equal(i2i.Image.Rgba, m.RegenerateEdit(g, src, null).Rgba);
    }

    private static byte[] Png(GeneratedImage g)
    {
        string f = Path.Combine(Path.GetTempPath(), $"pictor-edit-{Guid.NewGuid():N}.png");
        g.Save(f);
        try { return File.ReadAllBytes(f); } finally { File.Delete(f); }
    }

    private static DallePipeline TinyDalle()
    {
        var tok = PipelineTests.Tokenizer();
        var vq = new VqModel("tiny", 16, VqModel.FromPreset("tiny"), new Rng(2));
        var setup = DalleSetup.FromPreset("tiny", 16, tok.VocabSize, 12, vq.Config.Codes, vq.Grid);
        return new DallePipeline(setup, tok, vq, new Rng(3));
    }

    [Fact]
    public void Completion_keeps_the_sources_token_rows()
    {
        var p = TinyDalle();
        var m = new TextToImage(p, "tiny-dalle");
        int g = p.Setup.Transformer.Grid;
        var src = Noise(16, 7);
        var (prompt, s, all) = m.ResolveEdit(EditRequest.Complete(new GenerationRequest("a red circle") { Count = 2 },
            src, g));
        var codes = DalleEditor.SourceCodes(p, all.Source);
        var kept = DalleEditor.Codes(p, [prompt, prompt], s, all, null);
        Assert.Equal(codes.Concat(codes), kept);                                  // K = all rows: the input's tokens
        var (_, _, one) = m.ResolveEdit(EditRequest.Complete(new GenerationRequest("a red circle"), src, 1));
        var part = DalleEditor.Codes(p, [prompt], s, one, null);
        Assert.Equal(codes[..g], part[..g]);                                      // K = 1: the first row kept
        var r = m.Edit(EditRequest.Complete(new GenerationRequest("a red circle") { Seed = 4 }, src, 1));
        var back = r.Images[0].Parameters;
        Assert.Equal(1, back.Edit!.Rows);
        Assert.Equal(r.Images[0].Image.Rgba, m.RegenerateEdit(back, src, null).Rgba);
    }

    [Fact]
    public void Bad_edit_inputs_are_one_line_errors_naming_the_allowed_values()
    {
        var m = new TextToImage(PipelineTests.Tiny(), "tiny");
        var d = new TextToImage(TinyDalle(), "tiny-dalle");
        var g = new GenerationRequest("a small red circle") { Steps = 2 };
        var src = Noise(16, 3);
        string Error(TextToImage t, EditRequest r)
        {
            var msg = Assert.Throws<ArgumentException>(() => t.Edit(r)).Message;
            Assert.DoesNotContain('\n', msg);
            return msg;
        }
        Assert.Contains("the source image is 20x12 but the model makes 16x16; resize it, or pass --resize",
            Error(m, EditRequest.ImageToImage(g, new Image(20, 12), 0.5f)));
        Assert.Contains("the mask is 8x8 but the model makes 16x16",
            Error(m, EditRequest.Inpaint(g, src, Mask(8, (_, _) => true))));
        var coloured = Mask(16, (_, _) => true); coloured.Rgba[0] = 10;
        Assert.Contains("the mask is not one channel: pixel (0, 0) is (10, 255, 255)", 
            Error(m, EditRequest.Inpaint(g, src, coloured)));
        var soft = Image.Solid(16, 16, 128, 128, 128);
        Assert.Contains("the mask is not binary: 256 of 256 pixels are mid-grey", 
            Error(m, EditRequest.Inpaint(g, src, soft)));
        Assert.Contains("strength must be in (0, 1]", Error(m, EditRequest.ImageToImage(g, src, 0f)));
        Assert.Contains("strength must be in (0, 1]", Error(m, EditRequest.ImageToImage(g, src, 1.5f)));
        Assert.Contains("resample must be between 0 (none) and 50", Error(m, EditRequest.Inpaint(g, src, soft, -1)));
        Assert.Contains("inpainting needs a mask", Error(m, new EditRequest(EditOperation.Inpaint, g, src)));
        int grid = ((DallePipeline)d.Pipeline).Setup.Transformer.Grid;
        Assert.Contains($"rows must be between 1 and {grid} (the model's token grid is {grid}x{grid}), got {grid + 1}",
            Error(d, EditRequest.Complete(new GenerationRequest("x"), src, grid + 1)));
        Assert.Contains("rows must be between 1", Error(d, EditRequest.Complete(new GenerationRequest("x"), src, 0)));
        Assert.Contains("only a DALL-E model has", Error(m, EditRequest.Complete(g, src, 1)));
        Assert.Contains("needs a diffusion model", 
            Error(d, EditRequest.ImageToImage(new GenerationRequest("x"), src, 0.5f)));
        // --resize fits both, and the metadata says so (verify resizes the same way).
        var r = m.Edit(EditRequest.Inpaint(g, Noise(32, 1), Mask(8, (x, _) => x < 4)) with { Resize = true });
        Assert.True(r.Images[0].Parameters.Edit!.Resized);
    }
}

/// <summary>Reports on the calling thread (Progress{T} posts to the pool).</summary>
internal sealed class ReporterOf(Action<GenerationProgress> report) : IProgress<GenerationProgress>
{
    public void Report(GenerationProgress value) => report(value);
}
