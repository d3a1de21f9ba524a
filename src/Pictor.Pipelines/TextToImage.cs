using Pictor.Engine;
using Pictor.Imaging;
using Pictor.Imaging.Png;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Dalle;
using Pictor.Pipelines.Diffusion;

namespace Pictor.Pipelines;

// Dimension legend: N images drawn, C = 3, H = W = image size.

/// <summary>
/// The library's entry point: a text-to-image model of any family, loaded from its directory, that turns a
/// <see cref="GenerationRequest"/> into images with the metadata that regenerates them. The CLI and the server call
/// only this.
/// <code>
/// var model = TextToImage.Load("models/emoji");
/// var result = model.Generate(new GenerationRequest("grinning face, noto style") { Seed = 7, Count = 4 });
/// result.Images[0].Save("face.png");
/// </code>
/// </summary>
public sealed class TextToImage
{
    /// <summary>The family's pipeline (diffusion, DALL-E), for code that samples with fixed settings
    /// (evaluations).</summary>
    public ITextToImage Pipeline { get; }
    /// <summary>The CLIP model that reranks candidates (<see cref="GenerationRequest.Candidates"/>), when
    /// loaded.</summary>
    public ClipPipeline? Clip { get; }
    /// <summary>The model's name as PNG metadata records it ("model"); the directory as given to Load.</summary>
    public string Name { get; set; }

    public string Family => Pipeline.Family;
    public int ImageSize => Pipeline.ImageSize;
    public string WeightsHash => Pipeline.WeightsHash;
    public string DefaultSampler => Pipeline.DefaultSampler;
    public int DefaultSteps => Pipeline.DefaultSteps;
    public float DefaultGuidance => Pipeline.DefaultGuidance;

    public TextToImage(ITextToImage pipeline, string name, ClipPipeline? clip = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        Pipeline = pipeline; Name = name; Clip = clip;
        if (clip != null && clip.ImageSize != pipeline.ImageSize)
            throw new ArgumentException($"the CLIP model scores {clip.ImageSize}x{clip.ImageSize} images but the model "
                + $"makes {pipeline.ImageSize}x{pipeline.ImageSize}; use a CLIP trained at the generator's size");
    }

    /// <summary>Opens a model directory of any family (config.json's "format" says which), or a training run's folder;
    /// <paramref name="clip"/>, when given, is a CLIP model directory used to rerank candidates.</summary>
    public static TextToImage Load(string dir, string? clip = null)
    {
        var m = ModelDirectory.Open(dir);
        ITextToImage pipe = m.Format switch
        {
            DalleSetup.Format => DallePipeline.Load(m),
            DiffusionConfig.Format => DiffusionPipeline.Load(m),
            Vae.VaePipeline.Format => Vae.VaePipeline.Load(m),
            Gan.GanPipeline.Format => Gan.GanPipeline.Load(m),
            Unclip.UnclipPipeline.Format => Unclip.UnclipPipeline.Load(m),
            Vq.VqModel.Format
                => throw new ArgumentException($"'{dir}' is a VQ-VAE image tokenizer, not a text-to-image "
                + $"model; train a DALL-E transformer on it with 'pictor train dalle --vqvae {dir}'"),
            ClipPipeline.Format
                => throw new ArgumentException($"'{dir}' is a CLIP model, which scores images but does not "
                + "draw them; pass it as the reranker (--clip) and a diffusion or DALL-E model as the model"),
            _ => throw new FormatException($"{m.ConfigPath} has format '{m.Format}'; Pictor generates from "
                + $"{DiffusionConfig.Format}, {DalleSetup.Format}, {Vae.VaePipeline.Format}, "
                + $"{Gan.GanPipeline.Format} and "
                + $"{Unclip.UnclipPipeline.Format} models"),
        };
        return new TextToImage(pipe, dir, clip == null ? null : ClipPipeline.Load(clip));
    }

    /// <summary>Checks a request against this model and fills in its defaults, without generating: the prompt to draw
    /// and the settings (<see cref="SamplingSettings.Resolve"/>).</summary>
    public (string Prompt, SamplingSettings Settings) Resolve(GenerationRequest request)
    {
        var r = SamplingSettings.Resolve(request, Pipeline);
        if (request.Candidates > 0 && Clip == null)
            throw new ArgumentException("reranking (candidates) needs a CLIP model: load one with "
                + "TextToImage.Load(dir, clip: DIR) (CLI: --clip DIR, from 'pictor train clip')");
        return r;
    }

    /// <summary>
    /// Generates request.Count images (or draws request.Candidates and keeps the Count best by CLIP score, best first).
    /// Image i of the drawn batch starts from seed Seed + i. <paramref name="progress"/> hears of every step;
    /// <paramref name="cancel"/> stops the work within one step (OperationCanceledException).
    /// </summary>
    public GenerationResult Generate(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancel = default)
    {
        var (prompt, s) = Resolve(request);
        int drawn = request.Candidates > 0 ? request.Candidates : request.Count, size = ImageSize;
        cancel.ThrowIfCancellationRequested();
        var onStep = StepReporter(request.PreviewEvery, size, progress, cancel);
        var x = Pipeline.Sample(Enumerable.Repeat(prompt, drawn).ToList(), s, onStep);   // (N, 3, H, W)
        var all = Enumerable.Range(0, drawn)
            .Select(i => new GeneratedImage(Image.FromTensor(Ops.Reshape(Ops.Narrow(x, 0, i, 1), 3, size, size)),
                Parameters(prompt, s, drawn, i), i)).ToList();
        var kept = all;
        if (request.Candidates > 0)
        {
            // Scored as saved: the 8-bit images, not the sampler's floats, so a file's score is what CLIP says of it.
            var saved = Tensor.FromArray(all.SelectMany(g => g.Image.ToTensor().ToArray()).ToArray(),
                drawn, 3, size, size);
            var scores = Rerank.Scores(Clip!, saved, prompt);
            kept = Rerank.Best(scores, request.Count).Select(b => all[b.Index] with { ClipScore = b.Score }).ToList();
        }
        return new GenerationResult(prompt, s, kept, drawn, Parameters(prompt, s, drawn, -1));
    }

    /// <summary>What a sampler calls after each step for a caller's progress and cancellation: it stops the work
    /// (OperationCanceledException) once <paramref name="cancel"/> is set, and reports the step, with the first image's
    /// clean-image estimate every <paramref name="previewEvery"/> steps and at the last (0: no previews). Generation,
    /// every edit and unCLIP's variations report through it.</summary>
    public static SampleStep StepReporter(int previewEvery, int size, IProgress<GenerationProgress>? progress,
        CancellationToken cancel)
    {
        int per = 3 * size * size;
        return (done, total, x0) =>
        {
            cancel.ThrowIfCancellationRequested();
            if (progress == null) return;
            bool preview = x0 != null && previewEvery > 0 && (done % previewEvery == 0 || done == total);
            progress.Report(new GenerationProgress(done, total,
                preview ? Image.FromTensor(Tensor.FromArray(x0.AsSpan(0, per).ToArray(), 3, size, size)) : null));
        };
    }

    /// <summary>The metadata of image <paramref name="index"/> of a batch of <paramref name="batch"/> (-1: the grid of
    /// the whole batch).</summary>
    public GenerationParameters Parameters(string prompt, SamplingSettings s, int batch, int index) =>
        new(prompt, s.NegativePrompt, s.Steps, s.Sampler, s.Guidance, s.Seed + (ulong)Math.Max(0, index), ImageSize,
            ImageSize, WeightsHash, Name, s.Eta, batch, index, s.Seed, s.Temperature, s.TopK, s.TopP);

    /// <summary>Regenerates an image from its metadata: the single image, or the grid when BatchIndex is -1. The
    /// caller compares it with the file (`pictor verify`).</summary>
    public Image Regenerate(GenerationParameters g)
    {
        ArgumentNullException.ThrowIfNull(g);
        if (g.Width != ImageSize || g.Height != ImageSize)
            throw new ArgumentException($"the image is {g.Width}x{g.Height} but the model makes "
                + $"{ImageSize}x{ImageSize}; "
                + "it came from another model");
        if (g.ModelHash != WeightsHash)
            throw new ArgumentException($"the image was made by weights with hash {g.ModelHash}, but {Name} has "
                + $"{WeightsHash}; pass the model that made it");
        if (g.BatchIndex < -1 || g.BatchIndex >= g.BatchSize)
            throw new FormatException($"metadata batch_index {g.BatchIndex} is outside the batch of {g.BatchSize}");
        var request = new GenerationRequest(g.Prompt)
        {
            NegativePrompt = g.NegativePrompt, Sampler = g.Sampler, Steps = g.Steps,
                Guidance = g.CfgScale, Seed = g.BaseSeed,
            Count = g.BatchSize, Eta = g.Eta, Temperature = g.Temperature, TopK = g.TopK, TopP = g.TopP,
        };
        var result = Generate(request);
        return g.BatchIndex == -1 ? result.Grid() : result.Images[g.BatchIndex].Image;
    }
}
