using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models.Diffusion;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Models.Unclip;
using Pictor.Models.Unet;
using Pictor.Pipelines.Clip;
using Pictor.Pipelines.Diffusion;
using Pictor.Text;

namespace Pictor.Pipelines.Unclip;

// Dimension legend: B images, K prior candidates per image, E CLIP embedding width, S CLIP text tokens, C = 3,
// H = W = image size.

/// <summary>
/// DALL-E 2 (unCLIP, Ramesh et al. 2022): a CLIP, a diffusion prior from a caption's CLIP text encoding to a CLIP
/// image embedding (<see cref="DiffusionPrior"/>), and a diffusion decoder from a CLIP image embedding to pixels
/// (the UNet family reading <see cref="EmbeddingTokens"/>). Text to image is prior then decoder; an image's
/// variations decode its own CLIP embedding from new noise; an interpolation decodes the slerp between two images'
/// embeddings from one noise.
///
/// Model directory: config.json (<see cref="UnclipConfig"/>), clip/ (the CLIP model directory), prior.safetensors
/// ("prior.*"), decoder.safetensors ("tokens.*", "unet.*"), weights.sha256. A decoder run's model has no prior yet
/// (it can make variations, not text-to-image); a prior run's model holds the decoder it was given.
/// </summary>
public sealed class UnclipPipeline : ITextToImage
{
    public const string Format = UnclipConfig.Format, ConfigFile = "config.json", ClipDir = "clip",
        PriorFile = "prior.safetensors", DecoderFile = "decoder.safetensors";

    public UnclipConfig Config { get; }
    public ClipPipeline Clip { get; }
    public DiffusionPrior Prior { get; }
    public EmbeddingTokens EmbedTokens { get; }
    public UnetModel Unet { get; }
    public NoiseSchedule PriorSchedule { get; }
    public NoiseSchedule DecoderSchedule { get; }
    /// <summary>Whether the prior's and decoder's weights were loaded (a decoder run's model has no prior).</summary>
    public bool HasPrior { get; private set; } = true;
    public bool HasDecoder { get; private set; } = true;
    public string WeightsHash { get; private set; } = "unsaved";

    public string Family => "unclip";
    public int ImageSize => Config.ImageSize;
    public BpeTokenizer Tokenizer => Clip.Tokenizer;
    public int TextContext => Clip.Config.Text.Context;
    public string DefaultSampler => "dpm++";
    public int DefaultSteps => 20;
    public float DefaultGuidance => (float)Config.DefaultCfg;
    private int E => Config.EmbedDim;
    private float Scale => MathF.Sqrt(Config.EmbedDim);

    public UnclipPipeline(UnclipConfig config, ClipPipeline clip, Rng rng)
    {
        if (clip.ImageSize != config.ImageSize || clip.Config.EmbedDim != config.EmbedDim
            || clip.Config.Text.Context != config.Prior.TextContext)
            throw new ArgumentException($"the unCLIP config was made for a CLIP of {config.ImageSize}x"
                + $"{config.ImageSize} images, {config.EmbedDim}-wide embeddings and {config.Prior.TextContext} text "
                + "tokens, which this CLIP is not; use the CLIP the model was trained with (its clip/ folder)");
        Config = config; Clip = clip;
        Prior = new DiffusionPrior(config.Prior, rng);
        EmbedTokens = new EmbeddingTokens(rng, config.EmbedDim, config.EmbedTokens, config.Decoder.ContextDim);
        Unet = new UnetModel(config.Decoder, rng);
        PriorSchedule = new NoiseSchedule(config.ScheduleSteps, config.PriorShift);
        DecoderSchedule = new NoiseSchedule(config.ScheduleSteps, config.DecoderShift);
    }

    public IEnumerable<(string Name, Tensor Param)> PriorParameters() => Prior.NamedParameters("prior.");

    public IEnumerable<(string Name, Tensor Param)> DecoderParameters() =>
        EmbedTokens.NamedParameters("tokens.").Concat(Unet.NamedParameters("unet."));

    public void Train(bool on) { Prior.Train(on); EmbedTokens.Train(on); Unet.Train(on); }

    // ------------------------------------------------------------------------------------------- the networks

    /// <summary>Decoder output (v) for x [B, 3, H, W] at steps t [B] given unit CLIP image embeddings [B, E] (a zero
    /// row is the dropped embedding).</summary>
    public Tensor DecoderForward(Tensor x, ReadOnlySpan<float> t, Tensor embeddings)
    {
        var (tokens, pooled) = EmbedTokens.Forward(Ops.MulScalar(embeddings, Scale));
        return Unet.Forward(x, t, tokens, pooled);
    }

    /// <summary>What the prior reads of captions: CLIP's text tokens [B, S, E] and the unit text embedding scaled by
    /// sqrt(E) [B, E] (the frozen CLIP's; no gradient).</summary>
    public (Tensor Tokens, Tensor Embedding) TextConditioning(IReadOnlyList<string> captions)
    {
        using var _ = Autograd.NoGrad();
        Clip.Model.Train(false);
        var (tokens, pooled) = Clip.Model.Text.Forward(Clip.Tokenize(captions));
        return (tokens.Detach(), Ops.MulScalar(ClipModelNormalize(pooled), Scale).Detach());
    }

    private static Tensor ClipModelNormalize(Tensor x) => Models.Clip.ClipModel.Normalize(x);

    /// <summary>The prior's estimate of the clean scaled image embedding [B, E] from z_t [B, E] at steps t.</summary>
    public Tensor PriorForward(Tensor zt, ReadOnlySpan<float> t, Tensor textTokens, Tensor textEmbedding) =>
        Prior.Forward(zt, t, textTokens, textEmbedding);

    // ------------------------------------------------------------------------------------------- sampling

    /// <inheritdoc/>
    public string? Refuse(SamplingSettings s)
    {
        if (!Sampler.Knows(s.Sampler))
            return $"unknown sampler '{s.Sampler}' for an unCLIP model; use "
                + string.Join(", ", DiffusionPipeline.SamplerNames);
        if (s.Steps < 1 || s.Steps > Config.ScheduleSteps)
            return $"steps must be between 1 and {Config.ScheduleSteps} (the model's schedule), got {s.Steps}";
        if (s.NegativePrompt != null)
            return "an unCLIP model's decoder reads image embeddings, not text, so it takes no negative prompt; "
                + "leave it out";
        return null;
    }

    /// <summary>Text to image: the prior's embeddings, decoded (<see cref="Decode"/>).</summary>
    public Tensor Sample(IReadOnlyList<string> prompts, SamplingSettings s, SampleStep? onStep = null)
    {
        RequirePrior();
        return Decode(PriorSample(prompts, s), s, onStep);
    }

    /// <summary>
    /// Unit CLIP image embeddings [B, E] for captions: for caption i, K = prior_candidates embeddings sampled by the
    /// prior from noise drawn by Rng(seed + i) (the settings' sampler and steps, the config's prior guidance), and the
    /// one with the highest dot product with the caption's CLIP text embedding kept (Ramesh et al. 2022, section 2.1:
    /// "we generate two samples of z_i and select the one with a higher dot product with z_t").
    /// </summary>
    public float[] PriorSample(IReadOnlyList<string> prompts, SamplingSettings s)
    {
        RequirePrior();
        int b = prompts.Count, k = Config.PriorCandidates, rows = b * k, e = E;
        float guidance = (float)Config.PriorGuidance;
        bool cfg = guidance != 1f;
        Train(false);
        var caps = new List<string>(rows * (cfg ? 2 : 1));
        foreach (var p in prompts) caps.AddRange(Enumerable.Repeat(p, k));
        if (cfg) caps.AddRange(Enumerable.Repeat("", rows));
        var (tokens, textEmb) = TextConditioning(caps);                       // (R, S, E), (R, E)
        var zT = new float[rows * e];
        for (int i = 0; i < b; i++) PriorRng(s.Seed + (ulong)i).FillNormal(zT.AsSpan(i * k * e, k * e));
        Denoise model = (z, t) =>
        {
            using var noGrad = Autograd.NoGrad();
            using var scope = TensorScope.Begin();
            int n = cfg ? 2 * rows : rows;
            var zin = Tensor.Empty(n, e);
            z.CopyTo(zin.Span); if (cfg) z.CopyTo(zin.Span[(rows * e)..]);
            var ts = new float[n]; Array.Fill(ts, t);
            var o = Prior.Forward(zin, ts, tokens, textEmb).Span;           // (n, E)
            var r = o[..(rows * e)].ToArray();
            if (cfg)
            {
                var u = o[(rows * e)..];
                for (int j = 0; j < r.Length; j++) r[j] = u[j] + guidance * (r[j] - u[j]);
            }
            return r;
        };
        var z0 = Sampler.ByName(s.Sampler, s.Eta).Sample(PriorSchedule, Prediction.X0, model, zT, s.Steps,
            DiffusionPipeline.SamplerRng(s.Seed ^ 0x5851F42D4C957F2DUL), clip: false);
        var text = textEmb.Span;
        var kept = new float[b * e];
        for (int i = 0; i < b; i++)
        {
            int best = 0; float bestDot = float.NegativeInfinity;
            for (int c = 0; c < k; c++)
            {
                var row = z0.AsSpan((i * k + c) * e, e);
                Unit(row);
                float dot = 0;
                for (int j = 0; j < e; j++) dot += row[j] * text[(i * k + c) * e + j];
                if (dot > bestDot) { bestDot = dot; best = c; }
            }
            z0.AsSpan((i * k + best) * e, e).CopyTo(kept.AsSpan(i * e, e));
        }
        return kept;
    }

    /// <summary>The generator of the prior's starting noise for the image of seed <paramref name="seed"/> (apart from
    /// the decoder's, which is Rng(seed)).</summary>
    public static Rng PriorRng(ulong seed) => new(seed ^ 0xD1B54A32D192ED03UL);

    /// <summary>Images [B, 3, H, W] in [-1, 1] from unit CLIP image embeddings [B, E]: row i from noise drawn by
    /// Rng(seed + i), or every row from Rng(seed) when <paramref name="sameNoise"/> (an interpolation holds its seed);
    /// guidance s against the dropped (zero) embedding.</summary>
    public Tensor Decode(float[] embeddings, SamplingSettings s, SampleStep? onStep = null, bool sameNoise = false)
    {
        RequireDecoder();
        int b = embeddings.Length / E, size = ImageSize, per = 3 * size * size;
        bool cfg = s.Guidance != 1f;
        Train(false);
        var rowsEmb = new float[(cfg ? 2 : 1) * b * E];                     // conditional rows, then zeros
        embeddings.CopyTo(rowsEmb, 0);
        Tensor tokens, pooled;
        using (Autograd.NoGrad())
            (tokens, pooled) = EmbedTokens.Forward(Ops.MulScalar(Tensor.FromArray(rowsEmb, rowsEmb.Length / E, E),
                Scale));
        var model = DiffusionPipeline.GuidedRows(Unet, tokens, pooled, b, size, s.Guidance);
        var xT = new float[b * per];
        for (int i = 0; i < b; i++) new Rng(s.Seed + (sameNoise ? 0UL : (ulong)i)).FillNormal(xT.AsSpan(i * per, per));
        var x0 = Sampler.ByName(s.Sampler, s.Eta).Sample(DecoderSchedule, Prediction.V, model, xT, s.Steps,
            DiffusionPipeline.SamplerRng(s.Seed), clip: true, onStep);
        return Tensor.FromArray(x0, b, 3, size, size);
    }

    /// <summary>Unit CLIP image embeddings [B, E] of images [B, 3, H, W] in [-1, 1] at the CLIP's size.</summary>
    public float[] ImageEmbeddings(Tensor images) => Clip.ImageEmbeddings(images);

    /// <summary>Spherical interpolation between unit vectors a and b at fraction f (Shoemake 1985): sin((1 - f) w) /
    /// sin w a + sin(f w) / sin w b with cos w = a . b; the straight line, renormalised, when they (almost)
    /// coincide.</summary>
    public static float[] Slerp(ReadOnlySpan<float> a, ReadOnlySpan<float> b, double f)
    {
        double dot = 0;
        for (int i = 0; i < a.Length; i++) dot += a[i] * b[i];
        dot = Math.Clamp(dot, -1, 1);
        double w = Math.Acos(dot), sw = Math.Sin(w);
        var r = new float[a.Length];
        if (sw < 1e-6)
        {
            for (int i = 0; i < a.Length; i++) r[i] = (float)((1 - f) * a[i] + f * b[i]);
            Unit(r);
            return r;
        }
        double ca = Math.Sin((1 - f) * w) / sw, cb = Math.Sin(f * w) / sw;
        for (int i = 0; i < a.Length; i++) r[i] = (float)(ca * a[i] + cb * b[i]);
        return r;
    }

    private static void Unit(Span<float> v)
    {
        double n = 0;
        foreach (var x in v) n += x * x;
        float inv = (float)(1 / Math.Sqrt(Math.Max(n, 1e-24)));
        for (int i = 0; i < v.Length; i++) v[i] *= inv;
    }

    private void RequirePrior()
    {
        if (!HasPrior)
            throw new ArgumentException("this unCLIP model has no prior (prior.safetensors): it is a decoder run's "
                + "model, which makes variations but not images from text; train one with 'pictor train prior "
                + "--clip CLIP --decoder DIR' and use its model");
    }

    private void RequireDecoder()
    {
        if (!HasDecoder)
            throw new ArgumentException("this unCLIP model has no decoder (decoder.safetensors): it is a prior run's "
                + "model trained without --decoder; train one with 'pictor train decoder' and pass it to "
                + "'pictor train prior --decoder DIR'");
    }

    // ------------------------------------------------------------------------------------------- save / load

    /// <summary>Writes DIR/config.json, DIR/clip/ (from <paramref name="clipDir"/>, when DIR has none yet) and the
    /// weights files given (prior, decoder: name -> values), each atomically, then the weights manifest.</summary>
    public void Save(string dir, string clipDir, IReadOnlyDictionary<string, float[]>? prior,
        IReadOnlyDictionary<string, float[]>? decoder)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), Config.ToJson());
        if (!Directory.Exists(Path.Combine(dir, ClipDir))) CopyDir(clipDir, Path.Combine(dir, ClipDir));
        void Write(string file, IEnumerable<(string Name, Tensor Param)> ps, IReadOnlyDictionary<string, float[]> w)
        {
            var sw = new SafeTensorsWriter();
            foreach (var (n, p) in ps) sw.Add(n, w[n], p.Shape, DType.F32);
            sw.Write(Path.Combine(dir, file), new Dictionary<string, string> { ["format"] = Format });
        }
        if (prior != null) Write(PriorFile, PriorParameters(), prior);
        if (decoder != null) Write(DecoderFile, DecoderParameters(), decoder);
        WeightsManifest.Write(dir);
    }

    /// <summary>Copies a folder's files (a CLIP model directory), atomically file by file.</summary>
    internal static void CopyDir(string from, string to)
    {
        foreach (var f in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            AtomicFile.WriteAllBytes(target, File.ReadAllBytes(f));
        }
    }

    /// <summary>The CLIP weights' hash a config records (its model.safetensors, 10 hex digits).</summary>
    public static string ClipHash(string clipDir) =>
        ModelDirectory.HashFile(ModelDirectory.Open(clipDir, ClipPipeline.Format, "CLIP model")
            .Require(ClipPipeline.WeightsFile));

    public static UnclipPipeline Load(string dir) => Load(ModelDirectory.Open(dir, Format, "unCLIP model"));

    /// <summary>Loads an opened unCLIP model directory: its CLIP, and the prior and decoder weights it has (at least
    /// one).</summary>
    public static UnclipPipeline Load(ModelDirectory m)
    {
        var cfg = UnclipConfig.FromJson(m.ConfigJson, m.ConfigPath);
        var clipDir = m.Require(ClipDir);
        var clip = ClipPipeline.Load(clipDir);
        string hash = ClipHash(clipDir);
        if (cfg.ClipHash != "" && hash != cfg.ClipHash)
            throw new FormatException($"{m.ConfigPath} was trained with a CLIP whose weights hash {cfg.ClipHash}, but "
                + $"{clipDir} hashes {hash}; put back the CLIP the model was trained with");
        var p = new UnclipPipeline(cfg, clip, new Rng(0));
        string pf = Path.Combine(m.Path, PriorFile), df = Path.Combine(m.Path, DecoderFile);
        p.HasPrior = File.Exists(pf); p.HasDecoder = File.Exists(df);
        if (!p.HasPrior && !p.HasDecoder)
            throw new FileNotFoundException($"'{m.Path}' has neither {PriorFile} nor {DecoderFile}; it is not a "
                + "finished unCLIP model (train it with 'pictor train decoder' and 'pictor train prior')");
        if (p.HasPrior) p.LoadPart(SafeTensorsFile.Read(pf), "", prior: true);
        if (p.HasDecoder) p.LoadPart(SafeTensorsFile.Read(df), "", prior: false);
        p.WeightsHash = ModelDirectory.HashFiles(new[] { pf, df }.Where(File.Exists).ToArray());
        return p;
    }

    /// <summary>Copies the prior's ("prior.*") or the decoder's ("tokens.*", "unet.*") weights after <paramref
    /// name="prefix"/> from a weights or checkpoint file.</summary>
    public void LoadPart(SafeTensorsFile f, string prefix, bool prior)
    {
        if (prior) Prior.LoadStateDict(f, prefix + "prior.", strict: false);
        else
        {
            EmbedTokens.LoadStateDict(f, prefix + "tokens.", strict: false);
            Unet.LoadStateDict(f, prefix + "unet.", strict: false);
        }
        var names = (prior ? PriorParameters() : DecoderParameters()).Select(q => prefix + q.Name);
        if (names.FirstOrDefault(n => !f.Contains(n)) is { } missing)
            throw new FormatException($"'{f.Source}' has no tensor '{missing}'; it was saved from a different model "
                + "(compare config.json) or is truncated");
    }
}
