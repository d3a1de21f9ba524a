using System.Text.Json.Nodes;
using Pictor.Cli;
using Pictor.TestSupport;

namespace Pictor.Cli.Tests;

/// <summary>pictor export MODEL --format onnx: the shipped emoji model's two networks, its tokenizer and
/// pipeline.json are written; a --step (a checkpoint's option) and a model with unmapped modules are refused in one
/// line. That the graphs compute what Pictor does is Pictor.Pipelines.Tests' OnnxExportTests.</summary>
[Collection("Console")]
public class ExportOnnxCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        var (so, se) = (Console.Out, Console.Error);
        Console.SetOut(o); Console.SetError(e);
        try { return (Program.Main(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(so); Console.SetError(se); }
    }

    private static string Model(string name) => Path.GetFullPath(Path.Combine(Fixtures.Dir, "..", "..", "models", name));

    [Fact]
    public void Export_onnx_writes_the_networks_and_pipeline_json()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-cli-onnx").FullName;
        try
        {
            string emoji = Path.Combine(dir, "emoji");
            var r = Run("export", Model("emoji"), "--format", "onnx", "--out", emoji);
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains("unet.onnx", r.Out);
            foreach (var f in new[] { "text_encoder.onnx", "unet.onnx", "pipeline.json", "tokenizer/vocab.json" })
                Assert.True(File.Exists(Path.Combine(emoji, f)), $"{f} was not written");
            var j = JsonNode.Parse(File.ReadAllText(Path.Combine(emoji, "pipeline.json")))!;
            Assert.Equal("pictor-onnx", (string?)j["format"]);

            r = Run("export", Model("emoji"), "--format", "onnx", "--step", "3", "--out", emoji);
            Assert.Equal(2, r.Code); Assert.Contains("--step picks a checkpoint", r.Err);
            r = Run("export", Model("shapes"), "--format", "onnx", "--out", Path.Combine(dir, "shapes"));
            Assert.Equal(1, r.Code); Assert.Contains("has no ONNX mapping", r.Err);
            Assert.Single(r.Err.Trim().Split('\n'));
            r = Run("export", Model("emoji"), "--format", "tflite", "--out", emoji);
            Assert.Equal(2, r.Code); Assert.Contains("--format must be one of checkpoint, onnx", r.Err);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
