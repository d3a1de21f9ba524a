using Pictor.Cli;

namespace Pictor.Cli.Tests;

/// <summary>The verbs end to end through Program.Main: exit codes, outputs and error messages.</summary>
[Collection("Console")]
public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        var (so, se) = (Console.Out, Console.Error);
        Console.SetOut(o); Console.SetError(e);
        try { return (Program.Main(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(so); Console.SetError(se); }
    }

    [Fact]
    public void Usage_errors_are_one_line_and_exit_2()
    {
        var r = Run("frobnicate");
        Assert.Equal(2, r.Code); Assert.Contains("unknown verb 'frobnicate'; use generate, verify, train", r.Err);
        r = Run("data", "shapes", "--out", "/tmp/x", "--colour", "red");
        Assert.Equal(2, r.Code);
        Assert.Contains("unknown option '--colour' for 'data shapes'; it takes --out, --count, --seed, --size", r.Err);
        r = Run("data", "shapes", "--count", "5");
        Assert.Equal(2, r.Code); Assert.Contains("'data shapes' needs --out", r.Err);
        r = Run("data", "shapes", "--out", "/tmp/x", "--count", "many");
        Assert.Equal(2, r.Code); Assert.Contains("--count must be a whole number, got 'many'", r.Err);
        r = Run("data", "shapes", "--out", "/tmp/x", "--size", "48");
        Assert.Equal(2, r.Code); Assert.Contains("--size must be one of 32, 64, got '48'", r.Err);
        r = Run("generate", "a red circle", "--out", "/tmp/x.png", "--steps", "0");
        Assert.Equal(2, r.Code); Assert.Contains("--steps must be between 1 and 100000, got 0", r.Err);
        r = Run("generate", "a red circle", "--out", "/tmp/x.png", "-n", "100000");
        Assert.Equal(2, r.Code); Assert.Contains("--count must be between 1 and 256, got 100000", r.Err);
        r = Run("train", "vqvae", "--data", "/tmp/x", "--out", "/tmp/y", "--hflip", "0.5");   // a diffusion-only option
        Assert.Equal(2, r.Code); Assert.Contains("unknown option '--hflip' for 'train vqvae'", r.Err);
        foreach (var bad in new[] { Run("frobnicate"), Run("generate", "x", "--out", "y.png", "--cfg", "99") })
            Assert.Single(bad.Err.Trim().Split('\n'));                                     // one line, no stack trace
        Assert.Equal(0, Run("--help").Code);
    }

    [Fact]
    public void Runtime_errors_exit_1_with_one_line_and_verbose_adds_the_stack_trace()
    {
        string missing = Path.Combine(Path.GetTempPath(), "pictor-no-such-model");
        var r = Run("generate", "a red circle", "--model", missing, "--out", Path.Combine(Path.GetTempPath(), "x.png"));
        Assert.Equal(1, r.Code);
        Assert.Contains("does not exist", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
        r = Run("generate", "a red circle", "--model", missing, "--out", Path.Combine(Path.GetTempPath(), "x.png"), "--verbose");
        Assert.Equal(1, r.Code);
        Assert.Contains("   at ", r.Err);   // the stack trace
    }

    [Fact]
    public void Help_lists_every_option_with_its_default_and_completion_comes_from_the_parser()
    {
        var r = Run("generate", "--help");
        Assert.Equal(0, r.Code);
        foreach (var option in new[] { "--out", "--model", "--negative", "--seed", "--count", "--grid", "--truncate",
                     "--candidates", "--keep", "--clip", "--sampler", "--steps", "--cfg", "--eta", "--temperature",
                     "--top-k", "--top-p" })
            Assert.Contains(option, r.Out);
        Assert.Contains("[default: models/emoji]", r.Out);
        Assert.Contains("images to generate [default: 1]", r.Out);
        r = Run("train", "diffusion", "--help");
        Assert.Equal(0, r.Code);
        Assert.Contains("xs-rel-place", r.Out);   // the presets, from the one list that builds the config
        Assert.Contains("[default: xs]", r.Out);
        Assert.Contains("--noise-shift", r.Out);
        Assert.DoesNotContain("--vqvae", r.Out);   // DALL-E's option belongs to 'train dalle' only
        r = Run("data", "--help");
        Assert.Contains("shapes", r.Out); Assert.Contains("emoji", r.Out); Assert.Contains("pack", r.Out);

        r = Run("[suggest:5]", "gener");
        Assert.Equal(0, r.Code); Assert.Contains("generate", r.Out); Assert.DoesNotContain("train", r.Out);
        r = Run("[suggest:21]", "generate x --sampler ");
        Assert.Contains("ddim", r.Out); Assert.Contains("dpm++", r.Out);
        r = Run("completion", "bash");
        Assert.Equal(0, r.Code); Assert.Contains("complete -o default -F _pictor_complete pictor", r.Out);
        // The script itself, in a real bash: completing "./pictor gener" offers generate.
        string script = Path.Combine(Path.GetTempPath(), "pictor-completion.bash");
        File.WriteAllText(script, r.Out);
        string pictor = Path.Combine(FindRepo(), "pictor");
        var psi = new System.Diagnostics.ProcessStartInfo("bash", ["-c", $"source {script}; COMP_WORDS=({pictor} gener); "
            + $"COMP_CWORD=1; COMP_LINE='{pictor} gener'; COMP_POINT=${{#COMP_LINE}}; _pictor_complete; echo \"${{COMPREPLY[@]}}\""])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using (var bash = System.Diagnostics.Process.Start(psi)!)
        {
            string got = bash.StandardOutput.ReadToEnd(); bash.WaitForExit();
            Assert.Equal("generate", got.Trim());
        }
        Assert.Equal(2, Run("completion", "fish").Code);
    }

    [Fact]
    public void Doctor_prints_a_table_and_exits_1_when_a_check_fails()
    {
        var empty = Directory.CreateTempSubdirectory("pictor-doctor-empty").FullName;
        var r = Run("doctor", "--models", empty);
        Assert.Equal(1, r.Code);
        Assert.Contains("gemm reference", r.Out);                 // the engine rows ran and are in the table
        Assert.Contains("FAIL", r.Out);
        Assert.Contains("holds no model directory", r.Out);
        Assert.Matches(@"doctor: \d+ of \d+ checks FAILED", r.Out);
    }

    [Fact]
    public void Data_pack_skips_an_image_that_does_not_decode_with_one_warning_and_strict_stops()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-cli-pack").FullName;
        Assert.Equal(0, Run("data", "shapes", "--out", Path.Combine(dir, "shapes"), "--count", "20", "--seed", "1").Code);
        string train = Path.Combine(dir, "shapes", "train");
        string victim = Directory.GetFiles(train, "*.png").Order(StringComparer.Ordinal).First();
        File.WriteAllBytes(victim, File.ReadAllBytes(victim).AsSpan(0, 40).ToArray());   // cut short: not decodable
        int total = File.ReadAllLines(Path.Combine(train, "metadata.jsonl")).Length;
        var r = Run("data", "pack", "--data", train, "--size", "16", "--out", Path.Combine(dir, "a.bin"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains($"packed {total - 1} images at 16x16", r.Out);
        Assert.Single(r.Err.Split('\n'), l => l.Contains(Path.GetFileName(victim)));   // one warning, naming the file
        r = Run("data", "pack", "--data", train, "--size", "16", "--out", Path.Combine(dir, "b.bin"), "--strict");
        Assert.Equal(1, r.Code);
        Assert.Contains(Path.GetFileName(victim), r.Err);
        Assert.False(File.Exists(Path.Combine(dir, "b.bin")));                      // nothing half-written
    }

    private static string FindRepo()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Pictor.slnx"))) return d.FullName;
        throw new DirectoryNotFoundException("no Pictor checkout above the test binaries");
    }

    [Fact]
    public void Shapes_tokenizer_and_image_verbs_work_together()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-cli").FullName;
        var r = Run("data", "shapes", "--out", Path.Combine(dir, "shapes"), "--count", "60", "--seed", "3");
        Assert.Equal(0, r.Code);
        Assert.Contains("wrote 54 train and 6 val images (32x32, scene mix single:pair:count 1:1:1)", r.Out);
        r = Run("tokenizer", "train", "--data", Path.Combine(dir, "shapes"), "--vocab", "300", "--out", Path.Combine(dir, "tok"));
        Assert.Equal(0, r.Code);
        Assert.True(File.Exists(Path.Combine(dir, "tok", "merges.txt")));
        r = Run("data", "pack", "--data", Path.Combine(dir, "shapes", "train"), "--size", "16", "--out", Path.Combine(dir, "train.bin"));
        Assert.Equal(0, r.Code); Assert.Contains("packed 54 images at 16x16", r.Out);
        using (var ds = Pictor.Imaging.Datasets.PackedDataset.Open(Path.Combine(dir, "train.bin"))) Assert.Equal(54, ds.Count);
        var png = Path.Combine(dir, "shapes", "train", "000000.png");
        r = Run("image", "info", png);
        Assert.Equal(0, r.Code); Assert.Contains("32x32, Rgb, 8-bit", r.Out);
        r = Run("image", "convert", png, Path.Combine(dir, "c.png"));
        Assert.Equal(0, r.Code);
        Assert.Contains("RGBA, 8-bit", r.Out);
        r = Run("image", "info", Path.Combine(dir, "c.png"));
        Assert.Contains("Rgba, 8-bit", r.Out);
        File.WriteAllBytes(Path.Combine(dir, "bad.png"), [1, 2, 3]);
        r = Run("image", "info", Path.Combine(dir, "bad.png"));
        Assert.Equal(1, r.Code); Assert.Contains("not a PNG file", r.Err);
        r = Run("image", "grid", "--out", Path.Combine(dir, "g.png"), "--columns", "2", "--scale", "2", png, png, png);
        Assert.Equal(0, r.Code); Assert.Contains("g.png: 134x134, 3 images", r.Out);
    }

    [Fact]
    public void Train_vqvae_dalle_and_clip_then_generate_rerank_and_verify()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-cli-vq").FullName;
        string data = Path.Combine(dir, "shapes"), run = Path.Combine(dir, "vq");
        Assert.Equal(0, Run("data", "shapes", "--out", data, "--count", "40", "--seed", "3").Code);
        var r = Run("train", "vqvae", "--data", data, "--out", run, "--preset", "tiny", "--size", "16", "--steps", "4", "--batch", "4",
                    "--val-every", "2", "--ckpt-every", "2", "--stop-at-step", "2");
        Assert.True(r.Code == 0, r.Err);
        Assert.Matches(@"step 2: train loss [0-9.]+, val loss [0-9.]+, PSNR [0-9.]+ dB, perplexity [0-9.]+, codes used", r.Err);
        r = Run("train", "vqvae", "--resume", run);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("stopped at step 4 (reached --steps)", r.Out);
        Assert.True(File.Exists(Path.Combine(run, "model", "metrics.json")));
        r = Run("train", "vqvae", "--data", data, "--out", Path.Combine(dir, "vq2"), "--preset", "xs");
        Assert.Equal(2, r.Code); Assert.Contains("--preset must be one of tiny, s", r.Err);
        r = Run("train", "stylegan", "--data", data);
        Assert.Equal(2, r.Code); Assert.Contains("unknown verb 'stylegan' for 'train'; use diffusion, vqvae, dalle, clip", r.Err);

        // DALL-E on the tokenizer: train, generate with token-sampling knobs, verify from the PNG metadata.
        string dalle = Path.Combine(dir, "dalle");
        r = Run("train", "dalle", "--data", data, "--vqvae", run, "--out", dalle, "--preset", "tiny", "--size", "16", "--context", "12",
                "--steps", "2", "--batch", "4", "--val-every", "2", "--ckpt-every", "2");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("nats per image token", r.Err);
        string png = Path.Combine(dir, "d.png");
        r = Run("generate", "a red circle", "--model", dalle, "--seed", "2", "-n", "2", "--grid", "--temperature", "0.8", "--top-k", "5", "--top-p", "0.9", "--out", png);
        Assert.True(r.Code == 0, r.Err);
        var meta = Imaging.Png.GenerationParameters.FromPng(Imaging.Png.PngDecoder.DecodeFile(png))!;
        Assert.Equal(("dalle", 16, 0.8f, 5, 0.9f), (meta.Sampler, meta.Steps, meta.Temperature, meta.TopK, meta.TopP));
        r = Run("verify", png);
        Assert.True(r.Code == 0, r.Out + r.Err); Assert.Contains("IDENTICAL", r.Out);
        // Its one checkpoint exported (with the vqvae/ it decodes through) draws the same pixels.
        r = Run("export", dalle, "--step", "2", "--out", Path.Combine(dir, "dalle-2"));
        Assert.True(r.Code == 0, r.Err); Assert.Contains("the EMA weights of step 2", r.Out);
        r = Run("verify", png, "--model", Path.Combine(dir, "dalle-2"));
        Assert.True(r.Code == 0, r.Out + r.Err); Assert.Contains("IDENTICAL", r.Out);
        r = Run("export", dalle, "--step", "9", "--out", Path.Combine(dir, "dalle-9"));
        Assert.Equal(1, r.Code); Assert.Contains("no checkpoint for step 9: it keeps steps 2", r.Err);
        r = Run("generate", "a red circle", "--model", dalle, "--sampler", "ddim", "--out", png);
        Assert.Equal(2, r.Code); Assert.Contains("is a diffusion sampler", r.Err);
        r = Run("generate", "a red circle", "--model", run, "--out", png);
        Assert.Equal(2, r.Code); Assert.Contains("is a VQ-VAE image tokenizer, not a text-to-image model", r.Err);

        // CLIP, then reranking: 4 candidates, the best 2 kept (best first), each verifiable from its own metadata.
        string clip = Path.Combine(dir, "clip");
        r = Run("train", "clip", "--data", data, "--out", clip, "--preset", "tiny", "--size", "16", "--context", "12", "--steps", "2", "--batch", "4", "--val-every", "2");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("retrieval top-1 image->text", r.Err);
        r = Run("generate", "a red circle", "--model", dalle, "--candidates", "4", "--keep", "2", "--clip", clip, "--seed", "7", "--out", Path.Combine(dir, "rr.png"));
        Assert.True(r.Code == 0, r.Err);
        var kept = System.Text.RegularExpressions.Regex.Matches(r.Out, @"kept candidate (\d) \(seed (\d+)\): CLIP score (-?[0-9.]+)");
        Assert.Equal(2, kept.Count);
        Assert.True(double.Parse(kept[0].Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture) >= double.Parse(kept[1].Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture));
        var second = Imaging.Png.GenerationParameters.FromPng(Imaging.Png.PngDecoder.DecodeFile(Path.Combine(dir, "rr-1.png")))!;
        Assert.Equal((4, int.Parse(kept[1].Groups[1].Value)), (second.BatchSize, second.BatchIndex));
        r = Run("verify", Path.Combine(dir, "rr-1.png"));
        Assert.True(r.Code == 0, r.Out + r.Err); Assert.Contains("IDENTICAL", r.Out);
        r = Run("generate", "a red circle", "--model", dalle, "--candidates", "4", "--keep", "5", "--clip", clip, "--out", png);
        Assert.Equal(2, r.Code); Assert.Contains("--keep must be between 1 and --candidates (4), got 5", r.Err);

        // The CLIP-based evaluation, for a DALL-E model here (any family works the same).
        string report = Path.Combine(dir, "clip-eval.json");
        r = Run("eval", "clip", "--model", dalle, "--clip", clip, "--data", data, "--images", "4", "--candidates", "3", "--report", report);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("| CLIP R-precision (R = 3) |", r.Out);
        var j = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(report))!;
        Assert.Equal(4, (int)j["images"]!);
        Assert.InRange((double)j["r_precision"]!, 0, 1);
        Assert.True((double)j["fd_clip"]! >= 0);
        // Best of 3 by the same CLIP: the report says so, and the real-image ceiling does not depend on the reranking.
        r = Run("eval", "clip", "--model", dalle, "--clip", clip, "--data", data, "--images", "4", "--candidates", "3", "--rerank", "3", "--report", report);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("best of 3 by this CLIP", r.Out);
        var jr = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(report))!;
        Assert.Equal(3, (int)jr["rerank"]!);
        Assert.Equal((double)j["real_clip_score"]!, (double)jr["real_clip_score"]!, 9);
        r = Run("eval", "clip", "--model", dalle, "--clip", clip, "--data", data, "--images", "4", "--rerank", "0");
        Assert.Equal(2, r.Code); Assert.Contains("--rerank", r.Err);
    }

    [Fact]
    public void Train_generate_verify_and_eval_end_to_end()
    {
        var dir = Directory.CreateTempSubdirectory("pictor-cli-t2i").FullName;
        string data = Path.Combine(dir, "shapes"), run = Path.Combine(dir, "run");
        Assert.Equal(0, Run("data", "shapes", "--out", data, "--count", "40", "--seed", "2").Code);
        var r = Run("train", "diffusion", "--data", data, "--out", run, "--preset", "tiny", "--size", "32", "--steps", "4", "--batch", "4",
                    "--val-every", "2", "--ckpt-every", "2", "--val-images", "4");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("stopped at step 4 (reached --steps)", r.Out);
        r = Run("train", "diffusion", "--resume", run, "--batch", "8");
        Assert.Equal(2, r.Code);
        Assert.Contains("batch: run has 4, command line says 8", r.Err);

        string png = Path.Combine(dir, "out", "red.png");
        r = Run("generate", "a large red circle", "--model", run, "--steps", "3", "--seed", "5", "--out", png);
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal(32, Imaging.Image.Load(png).Width);
        r = Run("verify", png);
        Assert.Equal(0, r.Code);
        Assert.Contains("IDENTICAL", r.Out);
        // Change one pixel: verify must notice.
        var img = Imaging.Image.Load(png); img.Rgba[0] ^= 1;
        img.Save(png, Imaging.Png.GenerationParameters.FromPng(Imaging.Png.PngDecoder.DecodeFile(png))!.ToPngText());
        r = Run("verify", png);
        Assert.Equal(1, r.Code);
        Assert.Contains("DIFFERENT: 1 of", r.Out);

        r = Run("generate", "two blue squares", "--model", run, "--steps", "2", "-n", "3", "--sampler", "ddim", "--out", Path.Combine(dir, "out", "b.png"));
        Assert.Equal(0, r.Code);
        Assert.True(File.Exists(Path.Combine(dir, "out", "b-2.png")));
        Assert.Equal(0, Run("verify", Path.Combine(dir, "out", "b-1.png")).Code);
        r = Run("generate", "two blue squares", "--model", run, "--steps", "2", "-n", "4", "--grid", "--out", Path.Combine(dir, "out", "grid.png"));
        Assert.Equal(0, r.Code);
        Assert.Equal(0, Run("verify", Path.Combine(dir, "out", "grid.png")).Code);

        r = Run("generate", "a red circle", "--model", run, "--out", Path.Combine(dir, "x.png"), "--sampler", "euler");
        Assert.Equal(2, r.Code); Assert.Contains("unknown sampler 'euler'", r.Err);
        r = Run("generate", "a red circle", "--model", Path.Combine(dir, "missing"), "--out", Path.Combine(dir, "x.png"));
        Assert.Equal(1, r.Code); Assert.Contains("does not exist", r.Err);
        r = Run("generate", "a red circle", "--model", run, "--out", Path.Combine(dir, "x.jpg"));
        Assert.Equal(2, r.Code); Assert.Contains("--out must name a .png file", r.Err);
        r = Run("verify", Path.Combine(data, "train", "000000.png"));
        Assert.Equal(1, r.Code); Assert.Contains("has no Pictor generation metadata", r.Err);

        string report = Path.Combine(dir, "eval.json");
        r = Run("eval", "shapes", "--model", run, "--steps", "1", "--batch", "64", "--report", report);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("| single (all rules) |", r.Out);
        Assert.Contains("\"held_out_pairs\"", File.ReadAllText(report));

        // --repeats K generates the same prompts K times on consecutive seeds; the first repeat is the plain run.
        string report2 = Path.Combine(dir, "eval2.json");
        r = Run("eval", "shapes", "--model", run, "--steps", "1", "--batch", "64", "--repeats", "2", "--report", report2);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("every prompt 2 times", r.Out);
        var once = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(report))!["prompts"]!.AsArray();
        var twice = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(report2))!["prompts"]!.AsArray();
        Assert.Equal(2 * once.Count, twice.Count);
        Assert.Equal(419, (int)twice[419]!["seed"]!);
        for (int i = 0; i < once.Count; i++)
        {
            Assert.Equal(once[i]!.ToJsonString(), twice[i]!.ToJsonString());
            Assert.Equal((string)once[i]!["prompt"]!, (string)twice[once.Count + i]!["prompt"]!);
        }
        r = Run("eval", "shapes", "--model", run, "--repeats", "0");
        Assert.NotEqual(0, r.Code);
        Assert.Contains("--repeats", r.Err);

        // A model whose config.json names a default_cfg samples with it when --cfg is not given, and says so.
        string tuned = Path.Combine(dir, "tuned");
        Directory.CreateDirectory(tuned);
        foreach (var f in Directory.GetFiles(Path.Combine(run, "model"))) File.Copy(f, Path.Combine(tuned, Path.GetFileName(f)));
        Directory.CreateDirectory(Path.Combine(tuned, "tokenizer"));
        foreach (var f in Directory.GetFiles(Path.Combine(run, "model", "tokenizer"))) File.Copy(f, Path.Combine(tuned, "tokenizer", Path.GetFileName(f)));
        string cfgFile = Path.Combine(tuned, "config.json");
        File.WriteAllText(cfgFile, File.ReadAllText(cfgFile).Replace("\"schedule_shift\": 1,", "\"schedule_shift\": 1,\n  \"default_cfg\": 1.5,"));
        png = Path.Combine(dir, "out", "tuned.png");
        r = Run("generate", "a red circle", "--model", tuned, "--steps", "2", "--out", png);
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal(1.5f, Imaging.Png.GenerationParameters.FromPng(Imaging.Png.PngDecoder.DecodeFile(png))!.CfgScale);
        Assert.Equal(0, Run("verify", png).Code);
        r = Run("generate", "a red circle", "--model", tuned, "--steps", "2", "--cfg", "4", "--out", png);
        Assert.Equal(4f, Imaging.Png.GenerationParameters.FromPng(Imaging.Png.PngDecoder.DecodeFile(png))!.CfgScale);   // the option still wins
        // eval shapes --seed N: a second look at the same prompts with other seeds, reported as such
        r = Run("eval", "shapes", "--model", tuned, "--steps", "1", "--batch", "64", "--seed", "1000", "--report", report);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("CFG 1.5, seeds from 1000", r.Out);
        var prompts = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(report))!["prompts"]!.AsArray();
        Assert.Equal(1000, (int)prompts[0]!["seed"]!); Assert.Equal(1209, (int)prompts[209]!["seed"]!);
    }
}
