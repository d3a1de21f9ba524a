using System.Text.Json.Nodes;
using Pictor.Engine.IO;
using Pictor.Pipelines.Inside;
using Pictor.TestSupport;

namespace Pictor.Pipelines.Tests;

/// <summary>`pictor inspect` on the shipped models and on a run folder: what it reports matches the files.</summary>
public class ModelReportTests
{
    private static string ModelDir(string name) =>
        Path.GetFullPath(Path.Combine(Fixtures.Dir, "..", "..", "models", name));

    [Theory]
    [InlineData("emoji", "pictor-diffusion", 3_634_147)]   // docs/models/emoji.md: 3,634,147 parameters
    [InlineData("shapes", "pictor-diffusion", 0)]
    [InlineData("emoji-dalle", "pictor-dalle", 0)]
    [InlineData("emoji-clip", "pictor-clip", 0)]
    public void Shipped_models_report_their_weights_hash_modules_and_page(string name, string format, long elements)
    {
        var r = ModelReport.Of(ModelDir(name));
        Assert.Equal(format, r.Format);
        Assert.True(r.WeightsVerified, r.WeightsDetail);
        var file = SafeTensorsFile.Read(Path.Combine(ModelDir(name), "model.safetensors"));
        Assert.Equal(file.Tensors.Sum(t => (long)t.Numel), r.Elements);
        Assert.Equal(file.Tensors.Count, r.Modules.Sum(m => m.Tensors));
        if (elements > 0) Assert.Equal(elements, r.Elements);
        Assert.EndsWith(Path.Combine("docs", "models", name + ".md"), r.DocPage);
        Assert.NotNull(r.Tokenizer);
        if (format != "pictor-clip") Assert.Equal(TextToImage.Load(ModelDir(name)).WeightsHash, r.WeightsHash);
        Assert.Contains(r.WeightsHash, r.ToText());
    }

    [Fact]
    public void Dalle_reports_its_vqvae_with_codebook_health_from_the_stored_counts()
    {
        var r = ModelReport.Of(ModelDir("emoji-dalle"));
        var vq = Assert.Single(r.SubModels);
        Assert.Equal("pictor-vqvae", vq.Format);
        Assert.True(vq.WeightsVerified, vq.WeightsDetail);
        var cb = Assert.IsType<CodebookHealth>(vq.Codebook);
        Assert.Equal(512, cb.Codes);
        var counts = SafeTensorsFile.Read(Path.Combine(ModelDir("emoji-dalle"), "vqvae", "model.safetensors"))
            .ReadFloat32("quantizer.cluster_size");
        Assert.Equal(CodebookHealth.PerplexityOf(counts.Select(c => (double)c).ToArray()), cb.Perplexity, 9);
        Assert.InRange(cb.Perplexity, 1, 512);
        Assert.Null(r.Codebook);
    }

    [Theory]
    [InlineData("unet.enc_res.0.conv1.weight", "unet.enc_res")]
    [InlineData("blocks.3.attn.qkv.weight", "blocks")]
    [InlineData("ln_f.bias", "ln_f")]
    [InlineData("text.pos_emb", "text.pos_emb")]
    [InlineData("log_scale", "log_scale")]
    public void Modules_are_two_levels_before_any_index(string tensor, string module) =>
        Assert.Equal(module, ModelReport.ModuleOf(tensor));

    [Fact]
    public void A_run_folder_reports_its_options_and_logged_steps()
    {
        string run = Path.Combine(Path.GetTempPath(), $"pictor-inspect-{Guid.NewGuid():N}");
        try
        {
            string model = Path.Combine(run, "model");
            Directory.CreateDirectory(Path.Combine(model, "tokenizer"));
            foreach (var f in new[] { "config.json", "model.safetensors", "weights.sha256" })
                File.Copy(Path.Combine(ModelDir("emoji-clip"), f), Path.Combine(model, f));
            foreach (var f in Directory.GetFiles(Path.Combine(ModelDir("emoji-clip"), "tokenizer")))
                File.Copy(f, Path.Combine(model, "tokenizer", Path.GetFileName(f)));
            File.WriteAllText(Path.Combine(run, "train.json"), """{"model":"clip","data":"data/x","steps":300}""");
            File.WriteAllText(Path.Combine(run, "log.csv"),
                "step,train_loss,val_loss\n100,2,1.5\n200,1,0.9\n300,1,1.2\n");
            var r = ModelReport.Of(run);
            var t = Assert.IsType<JsonObject>(r.Training);
            Assert.Equal("data/x", (string?)t["options"]!["data"]);
            Assert.Equal(300, (long)t["steps_logged"]!);
            Assert.Equal(200, (long)t["best_val_step"]!);
            Assert.Null(r.DocPage);
        }
        finally { Directory.Delete(run, true); }
    }
}
