using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pictor.Pipelines.Training;

/// <summary>
/// Hyper-parameters of a training run (any model family), stored as RUN/train.json. Resuming compares the options given
/// on the command line with the stored ones and refuses a difference (it would not be the same run).
/// </summary>
public sealed record TrainOptions
{
    /// <summary>Which trainer made the run: "diffusion" (runs written before the field existed), "vqvae", "dalle",
    /// "clip", "vae", "gan", or unCLIP's "prior" and "decoder".</summary>
    public string Model { get; init; } = "diffusion";
    public string Data { get; init; } = "";
    /// <summary>DALL-E only: the VQ-VAE run or model directory whose tokens the transformer learns.</summary>
    public string Vqvae { get; init; } = "";
    /// <summary>unCLIP prior and decoder only: the CLIP model directory whose embeddings they learn (frozen; copied
    /// into the run).</summary>
    public string Clip { get; init; } = "";
    /// <summary>unCLIP prior only: a decoder model directory (a decoder run's model/) copied into each exported model,
    /// so the prior run's model/ generates from text; "" exports the prior alone.</summary>
    public string Decoder { get; init; } = "";
    public string Preset { get; init; } = "xs";
    public int ImageSize { get; init; } = 32;
    public int Context { get; init; } = 16;          // text tokens, bos and eos included
    public int Vocab { get; init; } = 2048;          // BPE vocabulary cap (small caption sets stop below it)
    public int Batch { get; init; } = 32;
    // the cosine decay's length; early stopping or --max-minutes may end sooner
    public int Steps { get; init; } = 20_000;
    public float Lr { get; init; } = 5e-4f;
    /// <summary>GAN only: the discriminator's peak learning rate (two time-scales; 0 = none, for the other
    /// families).</summary>
    public float DiscriminatorLr { get; init; }
    public float MinLr { get; init; } = 5e-5f;
    public int Warmup { get; init; } = 200;
    public float WeightDecay { get; init; } = 0.01f;
    public float ClipNorm { get; init; } = 1f;
    public float EmaDecay { get; init; } = 0.999f;
    public float CaptionDropout { get; init; } = 0.1f;
    /// <summary>DALL-E only: embedding and residual dropout probability (0 = off; runs written before it read
    /// 0).</summary>
    public float Dropout { get; init; }
    /// <summary>Diffusion only: k of the noise schedule's log-SNR shift (SNR / k^2; 1 = the plain cosine schedule).
    /// Stored in the model's config.json, since sampling must use the schedule training used.</summary>
    public float NoiseShift { get; init; } = 1f;
    /// <summary>Diffusion only: probability of mirroring a training image, with "left" and "right" swapped in its
    /// caption (<see cref="HorizontalFlip"/>; 0 = off, and runs written before it read 0).</summary>
    public float Hflip { get; init; }
    /// <summary>Diffusion only: gamma of min-SNR loss weighting (<see cref="MinSnrWeighting"/>; 0 = off, and runs
    /// written before it read 0).</summary>
    public float MinSnr { get; init; }
    /// <summary>Diffusion only: weight W of the token-level grounding loss added to the denoising loss
    /// (<see cref="GroundingLoss"/>; needs object boxes in the data; 0 = off, and runs written before it read
    /// 0).</summary>
    public float Grounding { get; init; }
    /// <summary>Diffusion only: weight W of the placement loss (<see cref="Placement"/>: each word naming one object is
    /// placed at its centre by the UNet's token places); needs object boxes and a preset with token places
    /// (xs-rel-place); 0 = off, and runs written before it read 0.</summary>
    public float Placement { get; init; }
    public int ValEvery { get; init; } = 500;
    public int CkptEvery { get; init; } = 500;
    public int Keep { get; init; } = 3;              // last K step checkpoints; best.safetensors is kept besides
    // validations without improvement before stopping; 0 = never stop early
    public int Patience { get; init; } = 10;
    public int ValImages { get; init; } = 256;
    public ulong Seed { get; init; }

    public void Validate()
    {
        var presets = Model switch
        {
            "diffusion" => Diffusion.DiffusionConfig.PresetNames,
            "vqvae" => Vq.VqModel.PresetNames,
            "dalle" => Dalle.DalleSetup.PresetNames,
            "clip" => Pipelines.Clip.ClipPipeline.PresetNames,
            "vae" => Vae.VaePipeline.PresetNames,
            "gan" => Gan.GanPipeline.PresetNames,
            "prior" or "decoder" => Unclip.UnclipConfig.PresetNames,
            _ => throw new ArgumentException($"unknown model family '{Model}' in the training options; use diffusion, "
                + $"vqvae, dalle, clip, vae, gan, prior or decoder"),
        };
        if (!presets.Contains(Preset))
        {
            string? why = Model == "diffusion" ? Diffusion.RemovedPresets.Why(Preset) : null;
            throw new ArgumentException($"unknown --preset '{Preset}' for 'train {Model}'; "
                + $"use {string.Join(", ", presets)}" + (why != null ? $" ({why})" : ""));
        }
        Check(Model != "dalle"
            || Vqvae != "", "'train dalle' needs --vqvae RUN (a VQ-VAE trained with 'pictor train vqvae')");
        Check(Model is not ("prior" or "decoder") || Clip != "",
            $"'train {Model}' needs --clip-model DIR (the CLIP whose embeddings unCLIP works in, e.g. "
                + "models/emoji-clip)");
        Check(Decoder == "" || Model == "prior",
            "--decoder is used by 'train prior' only (the decoder its exported model includes)");
        Check(Model != "gan" || DiscriminatorLr > 0 && float.IsFinite(DiscriminatorLr),
            "'train gan' needs a positive --d-lr (the discriminator's learning rate)");
        Check(Model == "gan" || DiscriminatorLr == 0,
            $"--d-lr is used by 'train gan' only; 'train {Model}' has no discriminator (leave it out)");
        Check(Batch is >= 1 and <= 4096, "--batch must be between 1 and 4096");
        Check(Steps >= 1, "--steps must be at least 1");
        Check(ImageSize is >= 8 and <= 256 && ImageSize % 8 == 0, "--size must be a multiple of 8 between 8 and 256");
        Check(Context is >= 4 and <= 256, "--context must be between 4 and 256");
        Check(Lr > 0 && float.IsFinite(Lr), "--lr must be positive");
        Check(CaptionDropout is >= 0 and < 1, "--caption-dropout must be in [0, 1)");
        Check(Dropout is >= 0 and < 1, "--dropout must be in [0, 1)");
        Check(Dropout == 0 || Model == "dalle",
            $"--dropout is used by 'train dalle' only; 'train {Model}' has no dropout layers (leave it out)");
        Check(NoiseShift is >= 1 and <= 64, "--noise-shift must be between 1 and 64");
        Check(NoiseShift == 1 || Model == "diffusion",
            $"--noise-shift is used by 'train diffusion' only; 'train {Model}' has no noise schedule (leave it out)");
        Check(Hflip is >= 0 and <= 1, "--hflip must be a probability in [0, 1]");
        Check(Hflip == 0 || Model == "diffusion",
            $"--hflip is used by 'train diffusion' only; leave it out of 'train {Model}'");
        Check(MinSnr is >= 0 and <= 1000, "--min-snr must be 0 (off) or a gamma up to 1000 (the paper's default is 5)");
        Check(MinSnr == 0 || Model == "diffusion",
            $"--min-snr is used by 'train diffusion' only; leave it out of 'train {Model}'");
        Check(Grounding is >= 0 and <= 100, "--grounding must be 0 (off) or a weight up to 100 (0.01 is a start)");
        Check(Grounding == 0 || Model == "diffusion",
            $"--grounding is used by 'train diffusion' only; leave it out of 'train {Model}'");
        Check(Placement is >= 0 and <= 100, "--placement must be 0 (off) or a weight up to 100 (0.1 is a start)");
        Check(Placement == 0 || Model == "diffusion",
            $"--placement is used by 'train diffusion' only; leave it out of 'train {Model}'");
        Check(ValEvery >= 1 && CkptEvery >= 1, "--val-every and --ckpt-every must be at least 1");
        Check(Keep >= 1, "--keep must be at least 1");
        Check(Patience >= 0, "--patience must be 0 (off) or more");
        Check(EmaDecay is >= 0 and < 1, "--ema must be in [0, 1)");
    }

    private static void Check(bool ok, string message) { if (!ok) throw new ArgumentException(message); }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy =
        JsonNamingPolicy.SnakeCaseLower };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static TrainOptions FromJson(string json, string source)
    {
        try { return JsonSerializer.Deserialize<TrainOptions>(json, Json)
            ?? throw new FormatException($"{source} is empty"); }
        catch (JsonException e) { throw new FormatException($"{source} is not a valid training options file: "
            + $"{e.Message}"); }
    }

    /// <summary>Field names (snake_case, as in train.json) whose values differ, with both values.</summary>
    public static List<string> Differences(TrainOptions stored, TrainOptions given, IEnumerable<string> fields)
    {
        var a = JsonNode.Parse(stored.ToJson())!.AsObject(); var b = JsonNode.Parse(given.ToJson())!.AsObject();
        return fields.Where(f => a[f]?.ToJsonString() != b[f]?.ToJsonString())
            .Select(f => $"{f}: run has {a[f]?.ToJsonString()}, command line says {b[f]?.ToJsonString()}").ToList();
    }
}
