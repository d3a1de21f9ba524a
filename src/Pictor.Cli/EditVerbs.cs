using System.CommandLine;
using Pictor.Imaging;
using Pictor.Imaging.Png;
using Pictor.Pipelines;
using Pictor.Pipelines.Editing;
using Pictor.Pipelines.Unclip;

namespace Pictor.Cli;

/// <summary>'pictor edit', 'pictor inpaint' and 'pictor complete': parse, call <see cref="ImageEditing"/>, write the
/// PNGs with metadata that 'pictor verify --source IMAGE [--mask MASK]' regenerates.</summary>
internal static class EditVerbs
{
    /// <summary>The options every edit verb shares: the source, prompt, output, model, seed, count, resize.</summary>
    private sealed class Common
    {
        public readonly Argument<string> Image = new("IMAGE") { Description = "the source PNG" };
        public readonly Option<string> Prompt = CliOptions.Text("--prompt", "what the edited image shows",
            required: true);
        public readonly Option<string> Out = CliOptions.Text("--out",
            "the PNG to write (-n N writes OUT-0.png ... OUT-(N-1).png)", required: true);
        public readonly Option<string> Model;
        public readonly Option<string> Negative = CliOptions.Text("--negative",
            "negative prompt: what guidance steers away from");
        public readonly Option<ulong> Seed = CliOptions.ULong("--seed",
            "seed of the first image; image i uses seed + i", 0);
        public readonly Option<int> Count = CliOptions.Int("--count", "images to make", 1, 1,
            GenerationRequest.MaxCount, "-n");
        public readonly Option<bool> Resize = CliOptions.Flag("--resize",
            "scale a source (and mask) of another size to the model's instead of refusing it");
        public readonly GenerateVerbs.Sampling Sampling = new();

        public Common(string defaultModel)
        {
            Model = CliOptions.Text("--model", "model directory (or training run)", fallback: defaultModel);
            Out.Validators.Add(r =>
            {
                string? v = r.Tokens.Count > 0 ? r.Tokens[^1].Value : null;
                if (v != null && !v.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                    r.AddError($"--out must name a .png file, got '{v}'");
            });
        }

        public void AddTo(Command c)
        {
            c.Add(Image);
            foreach (var o in new Option[] { Prompt, Out, Model, Negative, Seed, Count, Resize }) c.Add(o);
            Sampling.AddTo(c);
        }

        public GenerationRequest Request(ParseResult p) => Sampling.Request(p,
            new GenerationRequest(p.GetValue(Prompt)!)
        {
            NegativePrompt = p.GetValue(Negative), Seed = p.GetValue(Seed), Count = p.GetValue(Count),
        });

        /// <summary>Loads the model, runs the edit built by <paramref name="make"/>, writes the images.</summary>
        public int Run(ParseResult p, string? clipDir, Func<GenerationRequest, Image, EditRequest> make)
        {
            string modelArg = p.GetValue(Model)!, outPath = p.GetValue(Out)!;
            var t2i = TextToImage.Load(GenerateVerbs.ResolveModel(modelArg),
                clipDir == null ? null : GenerateVerbs.ResolveModel(clipDir));
            t2i.Name = modelArg;   // metadata records the model as given, as generate does
            var source = LoadPng(p.GetValue(Image)!, "source image");
            var request = make(Request(p), source) with { Resize = p.GetValue(Resize) };
            var (_, settings, _) = t2i.ResolveEdit(request);   // every value checked before any work
            var result = ConsoleProgress.Run($"{EditParameters.Name(request.Operation)}", bar => t2i.Edit(request,
                new Reporter(g => bar.Update(g.Step, g.Total, settings.Sampler)), Program.Cancel));
            foreach (var img in result.Images.Where(i => i.ClipScore != null))
                Console.WriteLine(FormattableString.Invariant(
                    $"kept candidate {img.Index} (seed {img.Parameters.Seed}): CLIP score {100 * img.ClipScore:F1}"));
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
            if (result.Images.Count == 1)
            {
                result.Images[0].Save(outPath);
                Console.WriteLine($"wrote {outPath}");
                return 0;
            }
            string stem = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outPath))!,
                Path.GetFileNameWithoutExtension(outPath));
            for (int i = 0; i < result.Images.Count; i++)
            {
                result.Images[i].Save($"{stem}-{i}.png");
                Console.WriteLine($"wrote {stem}-{i}.png");
            }
            return 0;
        }
    }

    /// <summary>A PNG given on the command line, or the one-line error that names it.</summary>
    public static Image LoadPng(string path, string what)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"the {what} '{path}' does not exist");
        return Imaging.Image.Load(path);
    }

    public static Command Edit()
    {
        var o = new Common(GenerateVerbs.DefaultModel);
        var strength = CliOptions.Float("--strength",
            "how far toward noise the source goes before it is redrawn, in (0, 1]; 1 = a plain generation",
            0.6f, 0f, 1f);
        var c = new Command("edit",
            "Image-to-image: noise a PNG partway and redraw it with a prompt (SDEdit)") { strength };
        o.AddTo(c);
        // 0 passes the parser's [0, 1] and is refused by EditInput.Resolve, which says (0, 1]: one place, one message.
        c.SetAction(p => o.Run(p, null, (g, src) => EditRequest.ImageToImage(g, src, p.GetValue(strength))));
        return c;
    }

    public static Command Inpaint()
    {
        var o = new Common(GenerateVerbs.DefaultModel);
        var mask = CliOptions.Text("--mask", "greyscale PNG of the model's size: white (>= 128) repaints, black keeps",
            required: true);
        var resample = CliOptions.Int("--resample",
            "RePaint's resampling jumps per step (0 = none; each costs a model call)",
            EditRequest.DefaultResample, 0, EditRequest.MaxResample);
        var c = new Command("inpaint", "Repaint the masked region of a PNG from a prompt and keep the rest (RePaint)")
        {
            mask, resample,
        };
        o.AddTo(c);
        c.SetAction(p => o.Run(p, null, (g, src) =>
            EditRequest.Inpaint(g, src, LoadPng(p.GetValue(mask)!, "mask"), p.GetValue(resample))));
        return c;
    }

    public static Command Complete()
    {
        var o = new Common("models/emoji-dalle");
        var rows = CliOptions.Int("--rows", "token rows of the source kept from the top (1 to the model's grid side)",
            1, 1, 1024);
        var candidates = CliOptions.IntOrModel("--candidates",
            "CLIP reranking: draw this many completions and keep the best --keep (default 32 when --keep is given)",
            1, GenerationRequest.MaxCount);
        var keep = CliOptions.IntOrModel("--keep", "CLIP reranking: how many of the candidates to keep (default 4)",
            1, GenerationRequest.MaxCount);
        var clip = CliOptions.Text("--clip", "CLIP model for reranking (default models/emoji-clip)");
        var c = new Command("complete", "DALL-E image completion: keep a PNG's top token rows and draw the rest")
        {
            rows, candidates, keep, clip,
        };
        o.AddTo(c);
        c.Validators.Add(r =>
        {
            int? n = r.GetValue(candidates), k = r.GetValue(keep);
            if (n != null && k != null && k > n)
                r.AddError($"--keep must be between 1 and --candidates ({n}), got {k}");
        });
        c.SetAction(p =>
        {
            bool reranked = p.GetValue(candidates) != null || p.GetValue(keep) != null;
            string? clipDir = reranked ? p.GetValue(clip) ?? "models/emoji-clip" : null;
            return o.Run(p, clipDir, (g, src) => EditRequest.Complete(reranked ? g with
            {
                Count = p.GetValue(keep) ?? 4, Candidates = p.GetValue(candidates) ?? 32,
            } : g, src, p.GetValue(rows)));
        });
        return c;
    }

    /// <summary>verify's regeneration: a plain generation from its metadata alone, an edit from its metadata and the
    /// source (and mask) it names.</summary>
    public static Image Regenerate(TextToImage t2i, GenerationParameters g, string? source, string? mask,
        string? source2 = null)
    {
        if (g.Edit == null)
        {
            if (source != null || mask != null)
                throw new ArgumentException("the image is a plain generation, not an edit; verify it without --source "
                    + "and --mask");
            return t2i.Regenerate(g);
        }
        if (source == null)
            throw new ArgumentException($"the image is an edit ({EditParameters.Name(g.Edit.Operation)}); pass the "
                + "source "
                + "it was made from with --source IMAGE.png"
                + (g.Edit.MaskSha256 != null ? " and its --mask MASK.png" : ""));
        if (g.Edit.Operation is EditOperation.Vary or EditOperation.Interpolate)
            return t2i.RegenerateVariation(g, LoadPng(source, "source image"),
                source2 == null ? null : LoadPng(source2, "second image"));
        if (source2 != null)
            throw new ArgumentException("--source2 is an interpolation's second image; this image is an "
                + $"{EditParameters.Name(g.Edit.Operation)} edit, so leave it out");
        return t2i.RegenerateEdit(g, LoadPng(source, "source image"), mask == null ? null : LoadPng(mask, "mask"));
    }
}

/// <summary>'pictor eval edits': the shapes edit benchmark (<see cref="Pictor.Pipelines.Eval.EditsEval"/>).</summary>
internal static class EditEvalVerb
{
    public static Command Edits()
    {
        var model = CliOptions.Text("--model", "a shapes model directory (or training run)", required: true);
        var seed = CliOptions.ULong("--seed", "seed of the first edit; edit i uses seed + i", 0);
        var resample = CliOptions.Int("--resample", "RePaint's resampling jumps per step",
            EditRequest.DefaultResample, 0, EditRequest.MaxResample);
        var strengths = CliOptions.Text("--strengths", "image-to-image strengths, comma-separated",
            fallback: "0.3,0.5,0.7,0.9");
        var grid = CliOptions.Text("--grid", "write the sources, masks and every edit as one grid PNG here");
        var plot = CliOptions.Text("--plot", "write image-to-image's (a) and (b) against strength as a PNG plot here");
        plot.Validators.Add(r =>
        {
            string? v = r.Tokens.Count > 0 ? r.Tokens[^1].Value : null;
            if (v != null && !v.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                r.AddError($"--plot must name a .png file, got '{v}'");
        });
        var s = new GenerateVerbs.Sampling();
        var c = new Command("edits", "The shapes edit benchmark: inpaint one object's box with a changed colour or "
            + "shape, and image-to-image at several strengths") { model, seed, resample, strengths, grid, plot };
        s.AddTo(c);
        c.SetAction(p =>
        {
            string name = p.GetValue(model)!;
            var t2i = TextToImage.Load(GenerateVerbs.ResolveModel(name));
            var list = p.GetValue(strengths)!.Split(',',
                StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(v => float.TryParse(v, System.Globalization.NumberStyles.Float,
                    System.Globalization.CultureInfo.InvariantCulture, out var f) && f > 0 && f <= 1 ? f
                    : throw new ArgumentException(
                        $"--strengths takes numbers in (0, 1] separated by commas, got '{v}'"))
                .ToList();
            var g = s.Request(p, new GenerationRequest("") { Seed = p.GetValue(seed) });
            var (_, o) = t2i.Resolve(g with { Prompt = "a red circle" });
            var (inp, i2i, images) = ConsoleProgress.Run("eval edits", bar =>
                Pipelines.Eval.EditsEval.Run(t2i, g, p.GetValue(resample), list, (d, n) => bar.Update(d, n)));
            Console.WriteLine($"pictor eval edits: {name} ({t2i.WeightsHash}), {o.Sampler} {o.Steps} steps, CFG "
                + $"{o.Guidance}, {Pipelines.Eval.EditsEval.Cases} edits"
                + (o.Seed != 0 ? $", seeds from {o.Seed}" : ""));
            Console.WriteLine("| run | (a) edited object as prompted | (b) objects outside unchanged "
                + "| (c) max change outside: mean / max |");
            Console.WriteLine("|---|---|---|---|");
            foreach (var r in i2i.Prepend(inp))
                Console.WriteLine(FormattableString.Invariant(
                    $"| {r.Label} | {r.Target} | {r.Outside} | {r.MeanMaxChange:F1} / {r.MaxChange} |"));
            var colour = inp.Verdicts.Where(v => v.Case.ColourChange).ToList();
            var shape = inp.Verdicts.Where(v => !v.Case.ColourChange).ToList();
            Console.WriteLine("inpaint (a) by change: colour "
                + $"{Pipelines.Eval.Accuracy.Of(colour.Select(v => v.TargetOk))}, "
                + $"shape {Pipelines.Eval.Accuracy.Of(shape.Select(v => v.TargetOk))}");
            if (p.GetValue(plot) is { } plotPath)
            {
                Pipelines.Eval.EditsPlot.Render(list, i2i, inp).Save(plotPath);
                Console.WriteLine($"wrote {plotPath} ((a) blue, (b) orange against strength; inpainting's dotted)");
            }
            if (p.GetValue(grid) is { } path)
            {
                var set = inp.Verdicts.Select(v => v.Case).ToList();
                var cells = set.Select(e => e.Source).Concat(set.Select(e => e.Mask)).Concat(images).ToList();
                Imaging.Image.Grid(cells, set.Count).Save(path);
                Console.WriteLine($"wrote {path} (rows: sources, masks, inpainted, then img2img by strength)");
            }
            return 0;
        });
        return c;
    }
}
