using Pictor.Imaging;
using Pictor.Imaging.Png;

namespace Pictor.Pipelines;

/// <summary>
/// What to generate, for a model of any family. Null sampler, steps and guidance mean the model's own defaults (see
/// <see cref="TextToImage"/>). <see cref="SamplingSettings.Resolve"/> checks every value once, against the model, and
/// the layers below assume the result is valid.
/// </summary>
/// <param name="Prompt">The caption to draw.</param>
public sealed record GenerationRequest(string Prompt)
{
    /// <summary>The most images one request may draw (Count, or Candidates when reranking).</summary>
    public const int MaxCount = 256;

    /// <summary>Replaces the empty caption on guidance's unconditional side ("what to steer away from").</summary>
    public string? NegativePrompt { get; init; }
    /// <summary>Image i starts from seed Seed + i, so one image depends only on its seed and the batch it was made
    /// in.</summary>
    public ulong Seed { get; init; }
    /// <summary>Images returned: 1 to <see cref="MaxCount"/>. With reranking, the best Count of Candidates.</summary>
    public int Count { get; init; } = 1;
    /// <summary>Diffusion: "dpm++" (default), "ddim" or "ddpm". DALL-E: "dalle" (the only one).</summary>
    public string? Sampler { get; init; }
    /// <summary>Denoising steps (diffusion; default 20). DALL-E draws one token per image position and takes no
    /// other.</summary>
    public int? Steps { get; init; }
    /// <summary>Classifier-free guidance scale, 0 to 50 (1 = off); default the model's own (its config's
    /// default_cfg).</summary>
    public float? Guidance { get; init; }
    /// <summary>DDIM's eta in [0, 1] (0 = deterministic).</summary>
    public float Eta { get; init; }
    /// <summary>DALL-E token sampling: temperature 0 (greedy) to 10, top-k (0 = off), top-p in (0, 1] (1 =
    /// off).</summary>
    public float Temperature { get; init; } = 1f;
    public int TopK { get; init; }
    public float TopP { get; init; } = 1f;
    /// <summary>CLIP reranking (Ramesh et al. 2021, section 2.5): draw this many candidates (0 = no reranking) and keep
    /// the <see cref="Count"/> whose CLIP image embedding is closest to the prompt's. Needs a CLIP model at
    /// load.</summary>
    public int Candidates { get; init; }
    /// <summary>Cut a prompt that is longer than the model's text context instead of refusing it.</summary>
    public bool Truncate { get; init; }
    /// <summary>Report a preview (the first image's current clean-image estimate) every this many steps; 0 =
    /// none.</summary>
    public int PreviewEvery { get; init; }
}

/// <summary>
/// A request with every value decided and checked against the model: what the samplers run and what PNG metadata
/// records. Made by <see cref="Resolve"/> (the one place values are validated), or directly by code that samples with
/// fixed settings (training's sample grids, the evaluations).
/// </summary>
public sealed record SamplingSettings(string Sampler, int Steps, float Guidance, ulong Seed = 0,
    string? NegativePrompt = null,
    float Eta = 0f, float Temperature = 1f, int TopK = 0, float TopP = 1f)
{
    /// <summary>Fills the model's defaults into <paramref name="r"/> and checks every value; returns the prompt to draw
    /// (cut to the context when r.Truncate) and the settings. Each error names the value, what is allowed and the
    /// fix.</summary>
    public static (string Prompt, SamplingSettings Settings) Resolve(GenerationRequest r, ITextToImage model)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(model);
        int drawn = r.Candidates > 0 ? r.Candidates : r.Count;
        Check(r.Count is >= 1 and <= GenerationRequest.MaxCount,
            $"count (-n) must be between 1 and {GenerationRequest.MaxCount}, got {r.Count}; make several calls "
                + $"for more images");
        Check(r.Candidates is >= 0 and <= GenerationRequest.MaxCount,
            $"candidates must be 0 (no reranking) or up to {GenerationRequest.MaxCount}, got {r.Candidates}");
        Check(r.Candidates == 0 || r.Count <= r.Candidates,
            $"reranking keeps the best count ({r.Count}) of candidates ({r.Candidates}); keep at most as "
                + $"many as are drawn");
        Check(r.PreviewEvery >= 0, $"preview interval must be 0 (none) or more steps, got {r.PreviewEvery}");
        var s = new SamplingSettings(r.Sampler ?? model.DefaultSampler, r.Steps ?? model.DefaultSteps,
            r.Guidance ?? model.DefaultGuidance, r.Seed, string.IsNullOrEmpty(r.NegativePrompt)
                ? null : r.NegativePrompt,
            r.Eta, r.Temperature, r.TopK, r.TopP);
        Check(float.IsFinite(s.Guidance) && s.Guidance is >= 0 and <= 50,
            $"guidance (--cfg) must be between 0 and 50 (1 = off), got {s.Guidance}");
        Check(s.Eta is >= 0 and <= 1, $"eta must be between 0 and 1, got {s.Eta}");
        Check(s.Temperature is >= 0 and <= 10, $"temperature must be between 0 (greedy) and 10, got {s.Temperature}");
        Check(s.TopK >= 0, $"top-k must be 0 (off) or more, got {s.TopK}");
        Check(s.TopP is > 0 and <= 1, $"top-p must be in (0, 1] (1 = off), got {s.TopP}");
        Check(unchecked(s.Seed + (ulong)drawn) >= s.Seed,
            $"seed {s.Seed} + {drawn} images overflows 64 bits; use a smaller seed");
        if (model.Refuse(s) is { } why) throw new ArgumentException(why);
        string prompt = r.Prompt ?? throw new ArgumentException("the prompt is missing; give the text to draw");
        if (r.Truncate) prompt = model.Tokenizer.Fit(prompt, model.TextContext);
        CheckLength(model, prompt, "prompt");
        if (s.NegativePrompt != null) CheckLength(model, s.NegativePrompt, "negative prompt");
        return (prompt, s);
    }

    private static void CheckLength(ITextToImage model, string text, string what)
    {
        int n = model.Tokenizer.Encode(text).Length, room = model.TextContext - 2;
        Check(n <= room,
            $"the {what} has {n} tokens, the model takes {room} (context {model.TextContext} with bos and eos); "
            + "shorten it" + (what == "prompt" ? " or pass --truncate (Truncate = true)" : ""));
    }

    private static void Check(bool ok, string message)
    {
        if (!ok) throw new ArgumentException(message);
    }
}

/// <summary>Where a generation is: <paramref name="Step"/> of <paramref name="Total"/> denoising steps (or image
/// tokens) done, and, every <see cref="GenerationRequest.PreviewEvery"/> steps, the first image's current clean
/// estimate.</summary>
public sealed record GenerationProgress(int Step, int Total, Image? Preview = null);

/// <summary>One finished image with the parameters that regenerate it (seed, batch, row) and, when reranked, its CLIP
/// score (cosine similarity with the prompt).</summary>
public sealed record GeneratedImage(Image Image, GenerationParameters Parameters, int Index, float? ClipScore = null)
{
    /// <summary>Writes the PNG with its generation metadata (A1111 "parameters" and Pictor's JSON), atomically: the
    /// same file `pictor generate` writes, which `pictor verify` regenerates.</summary>
    public void Save(string path) => Image.Save(path, Parameters.ToPngText());
}

/// <summary>The images of one request, best first when reranked, with the settings that made them.</summary>
public sealed record GenerationResult(string Prompt, SamplingSettings Settings, IReadOnlyList<GeneratedImage> Images,
    int Drawn, GenerationParameters GridParameters)
{
    /// <summary>True when the images are the best of <see cref="Drawn"/> candidates by CLIP score.</summary>
    public bool Reranked => Images.Count > 0 && Images[0].ClipScore != null;

    /// <summary>A near-square grid of the images (columns = ceil(sqrt(n))).</summary>
    public Image Grid() => Image.Grid(Images.Select(i => i.Image).ToList(), (int)Math.Ceiling(Math.Sqrt(Images.Count)));

    /// <summary>Writes the grid as a PNG. A grid of one whole batch carries metadata that `pictor verify` regenerates;
    /// a grid of chosen candidates is not one generation, so it carries only a description.</summary>
    public void SaveGrid(string path)
    {
        if (Reranked)
            Grid().Save(path, [new("Description",
                $"{Prompt} (CLIP-reranked: the best {Images.Count} of {Drawn} candidates, best first)")]);
        else Grid().Save(path, GridParameters.ToPngText());
    }
}
