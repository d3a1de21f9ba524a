using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models.Diffusion;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Models.Text;
using Pictor.Models.Unet;
using Pictor.Nn;
using Pictor.Text;

namespace Pictor.Pipelines.Diffusion;

// Dimension legend: B batch, S text tokens, Dc context width, C = 3, H = W = image size.

/// <summary>A text-to-image diffusion model ready to sample: tokenizer, text encoder, UNet, schedule.</summary>
public sealed class DiffusionPipeline : ITextToImage
{
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors", TokenizerDir = "tokenizer";

    public DiffusionConfig Config { get; }
    public BpeTokenizer Tokenizer { get; }
    public TextEncoder TextEncoder { get; }
    public UnetModel Unet { get; }
    public NoiseSchedule Schedule { get; }
    /// <summary>First 10 hex digits of the SHA-256 of the weights file (A1111's "Model hash" style); "unsaved" before
    /// Save/Load.</summary>
    public string WeightsHash { get; private set; } = "unsaved";

    public string Family => "diffusion";
    public int ImageSize => Config.ImageSize;
    public int TextContext => Config.Text.Context;
    public string DefaultSampler => "dpm++";
    public int DefaultSteps => 20;
    public float DefaultGuidance => (float)Config.DefaultCfg;

    public DiffusionPipeline(DiffusionConfig config, BpeTokenizer tokenizer, Rng rng)
    {
        if (tokenizer.VocabSize != config.Text.Vocab)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the model config says "
                + $"text.vocab = {config.Text.Vocab}; use the tokenizer saved with the model");
        Config = config; Tokenizer = tokenizer;
        TextEncoder = new TextEncoder(config.Text, rng);
        Unet = new UnetModel(config.Unet, rng);
        Schedule = new NoiseSchedule(config.ScheduleSteps, config.ScheduleShift);
    }

    /// <summary>All parameters under "text." and "unet." (the weights file's names).</summary>
    public IEnumerable<(string Name, Tensor Param)> NamedParameters() =>
        TextEncoder.NamedParameters("text.").Concat(Unet.NamedParameters("unet."));

    public void Train(bool on) { TextEncoder.Train(on); Unet.Train(on); }

    /// <summary>Token ids [B, S] for captions; too-long captions are an error unless <paramref
    /// name="truncate"/>.</summary>
    public IntTensor Tokenize(IReadOnlyList<string> captions, bool truncate = false) =>
        Tokenizer.EncodeBatch(captions, Config.Text.Context, truncate);

    /// <summary>Model output (eps or v) for x [B, 3, H, W] at timesteps t [B] given text ids [B, S]. The lists, when
    /// given, receive the UNet's cross-attention maps and its token places (<see cref="UnetModel.Forward"/>).</summary>
    public Tensor Forward(Tensor x, ReadOnlySpan<float> t, IntTensor ids, List<Tensor>? crossMaps = null,
        List<Tensor>? tokenPlaces = null)
    {
        var c = EncodeText(ids);
        return Unet.Forward(x, t, c.Tokens, c.Pooled, crossMaps, tokenPlaces);
    }

    /// <summary>ids [B, S] -> what the UNet reads: the text tokens [B, S, Dc] (cross-attention, and the ResBlocks'
    /// token slopes and blobs) and the pooled vector [B, Dc] (null when the UNet takes none).</summary>
    public (Tensor Tokens, Tensor? Pooled) EncodeText(IntTensor ids)
    {
        var (tokens, pooled) = TextEncoder.Forward(ids);                  // (B, S, Dc), (B, Dc)
        return (tokens, Config.Unet.PooledDim > 0 ? pooled : null);
    }

    // ------------------------------------------------------------------------------------------- save / load

    /// <summary>Writes DIR/config.json, DIR/tokenizer/ and DIR/model.safetensors (atomically, file by file).</summary>
    public void Save(string dir, DType dtype = DType.F32, IReadOnlyDictionary<string, float[]>? weights = null)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), Config.ToJson());
        Tokenizer.Save(Path.Combine(dir, TokenizerDir));
        var w = new SafeTensorsWriter();
        foreach (var (n, p) in NamedParameters()) w.Add(n, weights != null ? weights[n] : p.ToArray(), p.Shape, dtype);
        w.Write(Path.Combine(dir, WeightsFile), new Dictionary<string, string> { ["format"] = DiffusionConfig.Format });
        WeightsHash = HashFile(Path.Combine(dir, WeightsFile));
        WeightsManifest.Write(dir);   // what `pictor doctor` checks the weights against
    }

    /// <summary>Loads a model directory (or a training run directory, whose exported model lives in
    /// RUN/model).</summary>
    public static DiffusionPipeline Load(string dir)
        => Load(ModelDirectory.Open(dir, DiffusionConfig.Format, "diffusion model"));

    /// <summary>Loads an opened model directory that holds a diffusion model.</summary>
    public static DiffusionPipeline Load(ModelDirectory m)
    {
        var cfg = DiffusionConfig.FromJson(m.ConfigJson, m.ConfigPath);
        string weights = m.Require(WeightsFile);
        var tok = BpeTokenizer.Load(m.Require(TokenizerDir));
        var p = new DiffusionPipeline(cfg, tok, new Rng(0));
        p.LoadWeights(SafeTensorsFile.Read(weights), "");
        p.WeightsHash = HashFile(weights);
        return p;
    }

    /// <summary>Copies "text.*" and "unet.*" (after <paramref name="prefix"/>) from a weights or checkpoint
    /// file.</summary>
    public void LoadWeights(SafeTensorsFile f, string prefix)
    {
        TextEncoder.LoadStateDict(f, prefix + "text.", strict: false);
        Unet.LoadStateDict(f, prefix + "unet.", strict: false);
        var missing = NamedParameters().Select(p => prefix + p.Name).FirstOrDefault(n => !f.Contains(n));
        if (missing != null)
            throw new FormatException($"'{f.Source}' has no tensor '{missing}'; it was saved from a different model "
                + $"(compare config.json) or is truncated");
    }

    public static string HashFile(string path) => ModelDirectory.HashFile(path);

    // ------------------------------------------------------------------------------------------- sampling

    /// <summary>The samplers a diffusion model runs (<see cref="Sampler.ByName"/> also takes their aliases).</summary>
    public static readonly string[] SamplerNames = ["dpm++", "ddim", "ddpm"];

    /// <inheritdoc/>
    public string? Refuse(SamplingSettings s)
    {
        if (!Sampler.Knows(s.Sampler))
            return $"unknown sampler '{s.Sampler}' for a diffusion model; use {string.Join(", ", SamplerNames)}";
        if (s.Steps < 1 || s.Steps > Config.ScheduleSteps)
            return $"steps must be between 1 and {Config.ScheduleSteps} (the model's schedule), got {s.Steps}";
        return null;
    }

    /// <summary>
    /// Images [B, 3, H, W] in [-1, 1], row i for prompts[i]. Image i starts from noise drawn by Rng(seed + i), so an
    /// image depends only on its own seed and the batch it was made in; guidance as <see cref="Guided"/> says.
    /// Settings are assumed checked (<see cref="SamplingSettings.Resolve"/>).
    /// </summary>
    public Tensor Sample(IReadOnlyList<string> prompts, SamplingSettings o, SampleStep? onStep = null)
    {
        int b = prompts.Count, size = Config.ImageSize;
        System.Diagnostics.Debug.Assert(b >= 1 && Refuse(o) == null);
        var model = Guided(prompts, o);
        var sampler = Sampler.ByName(o.Sampler, o.Eta);
        var x0 = sampler.Sample(Schedule, Config.Prediction, model, StartNoise(b, o.Seed), o.Steps,
            SamplerRng(o.Seed), clip: true, onStep);
        return Tensor.FromArray(x0, b, 3, size, size);
    }

    /// <summary>x_T [B, 3, H, W]: row i drawn from Rng(seed + i), the noise a generation of these seeds starts
    /// from.</summary>
    public float[] StartNoise(int b, ulong seed)
    {
        int per = 3 * Config.ImageSize * Config.ImageSize;
        var xT = new float[b * per];
        for (int i = 0; i < b; i++) new Rng(seed + (ulong)i).FillNormal(xT.AsSpan(i * per, per));
        return xT;
    }

    /// <summary>The generator a sampler draws its per-step noise from (DDPM, DDIM with eta > 0).</summary>
    public static Rng SamplerRng(ulong seed) => new(seed ^ 0x9E3779B97F4A7C15UL);

    /// <summary>The UNet as the samplers see it, for B prompts: with CFG scale s != 1 the conditional and
    /// unconditional rows run as one batch of 2B (Ho and Salimans 2022, eq. 6), out = out_uncond + s (out_cond -
    /// out_uncond); the negative prompt, when given, replaces the empty caption. The captions are encoded once,
    /// here. Generation and every edit (<see cref="Editing.DiffusionEditor"/>) sample through this one
    /// delegate. <paramref name="onMaps"/>, when given, hears each call's cross-attention probabilities (every
    /// AttnBlock's [rows, heads, h*w, S], conditional rows first; pooled buffers, valid only during the call), which
    /// are then computed from recorded ops instead of the fused kernel (<see cref="Inside.AttentionMaps"/>).</summary>
    public Denoise Guided(IReadOnlyList<string> prompts, SamplingSettings o,
        Action<IReadOnlyList<Tensor>>? onMaps = null)
    {
        int b = prompts.Count, size = Config.ImageSize;
        bool cfg = o.Guidance != 1f;
        Train(false);
        var captions = prompts.ToList();
        if (cfg) captions.AddRange(Enumerable.Repeat(o.NegativePrompt ?? "", b));
        Tensor tokens; Tensor? pooled;
        using (Autograd.NoGrad()) (tokens, pooled) = EncodeText(Tokenize(captions));   // (rows, S, Dc), (rows, Dc)
        return GuidedRows(Unet, tokens, pooled, b, size, o.Guidance, onMaps);
    }

    /// <summary>The UNet with classifier-free guidance for B images whose conditioning is already encoded: rows 0..B-1
    /// of <paramref name="tokens"/> [rows, S, Dc] and <paramref name="pooled"/> [rows, Dp] are the conditional ones
    /// and, when <paramref name="guidance"/> != 1, rows B..2B-1 the unconditional ones (Ho and Salimans 2022, eq. 6:
    /// out = out_uncond + s (out_cond - out_uncond)). Every UNet family samples through it (text, unCLIP's
    /// embeddings).</summary>
    internal static Denoise GuidedRows(UnetModel unet, Tensor tokens, Tensor? pooled, int b, int size, float guidance,
        Action<IReadOnlyList<Tensor>>? onMaps = null)
    {
        int per = unet.Config.ImageChannels * size * size, ch = unet.Config.ImageChannels;
        bool cfg = guidance != 1f;
        int rows = cfg ? 2 * b : b;
        return (x, t) =>
        {
            using var noGrad = Autograd.NoGrad();
            using var scope = TensorScope.Begin();
            var xin = Tensor.Empty(rows, ch, size, size);
            x.CopyTo(xin.Span); if (cfg) x.CopyTo(xin.Span[(b * per)..]);
            var ts = new float[rows]; Array.Fill(ts, t);
            var maps = onMaps == null ? null : new List<Tensor>();
            var outp = unet.Forward(xin, ts, tokens, pooled, maps).Span;   // (rows, C, H, W)
            if (maps != null) onMaps!(maps);
            var r = outp[..(b * per)].ToArray();
            if (cfg)
            {
                var u = outp[(b * per)..];
                for (int i = 0; i < r.Length; i++) r[i] = u[i] + guidance * (r[i] - u[i]);
            }
            return r;
        };
    }
}
