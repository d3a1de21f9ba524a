using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models.Dalle;
using Pictor.Models.Diffusion.Samplers;
using Pictor.Pipelines.Vq;
using Pictor.Text;

namespace Pictor.Pipelines.Dalle;

// Dimension legend: B batch, L text tokens, G image grid side, C = 3, H = W = image size.

/// <summary>
/// A DALL-E model ready to sample: BPE tokenizer, the transformer over [text; image tokens], and the VQ-VAE that turns
/// image tokens into pixels. Model directory: config.json, tokenizer/, model.safetensors (the transformer) and vqvae/
/// (a VQ-VAE model directory).
/// </summary>
public sealed class DallePipeline : ITextToImage
{
    public const string WeightsFile = "model.safetensors", TokenizerDir = "tokenizer", VqDir = "vqvae";
    public const string SamplerName = "dalle";

    public DalleSetup Setup { get; }
    public BpeTokenizer Tokenizer { get; }
    public DalleTransformer Transformer { get; }
    public VqModel Vq { get; }
    public string WeightsHash { get; private set; } = "unsaved";

    public string Family => "dalle";
    public int ImageSize => Setup.ImageSize;
    public int TextContext => Setup.Transformer.TextLen;
    public string DefaultSampler => SamplerName;
    /// <summary>DALL-E draws one token per image position; the "steps" of its metadata are that count.</summary>
    public int DefaultSteps => Setup.Transformer.ImageLen;

    public DallePipeline(DalleSetup setup, BpeTokenizer tokenizer, VqModel vq, Rng rng)
    {
        var t = setup.Transformer;
        if (tokenizer.VocabSize != t.TextVocab)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the DALL-E config says "
                + $"text_vocab = {t.TextVocab}; use the tokenizer saved with the model");
        if (vq.Config.Codes != t.ImageVocab || vq.Grid != t.Grid || vq.ImageSize != setup.ImageSize)
            throw new ArgumentException($"the VQ-VAE makes {vq.Grid}x{vq.Grid} grids of {vq.Config.Codes} codes from "
                + $"{vq.ImageSize}px images, the DALL-E config expects {t.Grid}x{t.Grid} of {t.ImageVocab} from "
                + $"{setup.ImageSize}px; use the VQ-VAE the model was trained with");
        Setup = setup; Tokenizer = tokenizer; Vq = vq;
        Transformer = new DalleTransformer(t, rng);
    }

    /// <summary>Caption token ids [B, L]; too-long captions are an error unless <paramref name="truncate"/>.</summary>
    public IntTensor Tokenize(IReadOnlyList<string> captions, bool truncate = false) =>
        Tokenizer.EncodeBatch(captions, TextContext, truncate);

    /// <summary>Training sequences [B, L + G*G]: caption ids then image codes offset by the text vocabulary.</summary>
    public IntTensor Sequences(IntTensor text, ReadOnlySpan<int> codes)
    {
        var t = Setup.Transformer;
        int b = text.Shape[0];
        if (codes.Length != b * t.ImageLen)
            Throw.Argument($"{codes.Length} image codes for {b} captions of {t.ImageLen} tokens each");
        var seq = new int[b * t.SeqLen];
        for (int i = 0; i < b; i++)
        {
            Array.Copy(text.Data, i * t.TextLen, seq, i * t.SeqLen, t.TextLen);
            for (int j = 0; j < t.ImageLen; j++) seq[i * t.SeqLen + t.TextLen + j] = t.TextVocab
                + codes[i * t.ImageLen + j];
        }
        return new IntTensor(seq, b, t.SeqLen);
    }

    /// <inheritdoc/>
    public string? Refuse(SamplingSettings s)
    {
        if (s.Sampler != SamplerName)
            return $"a DALL-E model samples tokens (sampler '{SamplerName}'); '{s.Sampler}' is a "
                + $"diffusion sampler. Drop "
                + "--sampler, and use --temperature, --top-k, --top-p and --cfg";
        if (s.Steps != DefaultSteps)
            return $"a DALL-E model draws exactly {DefaultSteps} image tokens; drop --steps (it is for "
                + $"diffusion models)";
        return null;
    }

    /// <summary>Images [B, 3, H, W] in [-1, 1]: row i draws its tokens with Rng(seed + i) after prompts[i], guided by
    /// the negative prompt (or the empty caption) when the CFG scale is not 1, and the VQ-VAE decodes them. Settings
    /// are assumed checked (<see cref="SamplingSettings.Resolve"/>); onStep hears of each token (x0 null).</summary>
    public Tensor Sample(IReadOnlyList<string> prompts, SamplingSettings o, SampleStep? onStep = null) =>
        SampleCodes(prompts, o, onStep).Images;

    /// <summary>As <see cref="Sample"/>, also returning the image codes [B * G * G] the VQ-VAE decoded.</summary>
    public (Tensor Images, int[] Codes) SampleCodes(IReadOnlyList<string> prompts, SamplingSettings o,
        SampleStep? onStep = null)
    {
        var s = new DalleSamplingOptions(o.Temperature, o.TopK, o.TopP, o.Guidance);
        int b = prompts.Count;
        System.Diagnostics.Debug.Assert(b >= 1 && Refuse(o) == null);
        var text = Tokenize(prompts);
        var uncond = s.CfgScale != 1f ? Tokenize(Enumerable.Repeat(o.NegativePrompt ?? "", b).ToList()) : null;
        var rngs = Enumerable.Range(0, b).Select(i => new Rng(o.Seed + (ulong)i)).ToList();
        Transformer.Train(false);
        var codes = DalleSampler.Generate(Transformer, text, uncond, s, rngs,
            onToken: onStep == null ? null : (done, total) => onStep(done, total, null));
        var g = Setup.Transformer.Grid;
        using var _ = Autograd.NoGrad();
        var img = Vq.Net.Decode(new IntTensor(codes, b, g, g));
        var y = img.Span;
        for (int i = 0; i < y.Length; i++) y[i] = Math.Clamp(y[i], -1f, 1f);
        return (img, codes);
    }

    // ------------------------------------------------------------------------------------------- save / load

    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Setup.ToJson());
        Tokenizer.Save(Path.Combine(dir, TokenizerDir));
        Vq.Save(Path.Combine(dir, VqDir));
        Transformer.Save(Path.Combine(dir, WeightsFile), metadata: new Dictionary<string, string> { ["format"] =
            DalleSetup.Format });
        WeightsHash = Hash(dir);
        WeightsManifest.Write(dir);   // the transformer and vqvae/ weights, for `pictor doctor`
    }

    /// <summary>Loads a model directory (or a training run directory, whose model lives in RUN/model).</summary>
    public static DallePipeline Load(string dir) => Load(ModelDirectory.Open(dir, DalleSetup.Format, "DALL-E model"));

    /// <summary>Loads an opened model directory that holds a DALL-E model.</summary>
    public static DallePipeline Load(ModelDirectory m)
    {
        var setup = DalleSetup.FromJson(m.ConfigJson, m.ConfigPath);
        string weights = m.Require(WeightsFile);
        var p = new DallePipeline(setup, BpeTokenizer.Load(m.Require(TokenizerDir)), VqModel.Load(m.Require(VqDir)),
            new Rng(0));
        p.Transformer.LoadStateDict(SafeTensorsFile.Read(weights));
        p.WeightsHash = Hash(m.Path);
        return p;
    }

    /// <summary>The transformer's and the VQ-VAE's weights hashed together (either changes the images).</summary>
    private static string Hash(string dir) =>
        ModelDirectory.HashFiles(Path.Combine(dir, WeightsFile), Path.Combine(dir, VqDir, VqModel.WeightsFile));
}
