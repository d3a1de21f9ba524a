using System.Security.Cryptography;
using System.Text;
using Pictor.Engine;
using Pictor.Engine.IO;
using Pictor.Models.Dalle;
using Pictor.Pipelines.Diffusion;
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
        if (tokenizer.VocabSize != t.TextVocab) throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the DALL-E config says text_vocab = {t.TextVocab}; use the tokenizer saved with the model");
        if (vq.Config.Codes != t.ImageVocab || vq.Grid != t.Grid || vq.ImageSize != setup.ImageSize)
            throw new ArgumentException($"the VQ-VAE makes {vq.Grid}x{vq.Grid} grids of {vq.Config.Codes} codes from {vq.ImageSize}px images, the DALL-E config expects {t.Grid}x{t.Grid} of {t.ImageVocab} from {setup.ImageSize}px; use the VQ-VAE the model was trained with");
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
        if (codes.Length != b * t.ImageLen) Throw.Argument($"{codes.Length} image codes for {b} captions of {t.ImageLen} tokens each");
        var seq = new int[b * t.SeqLen];
        for (int i = 0; i < b; i++)
        {
            Array.Copy(text.Data, i * t.TextLen, seq, i * t.SeqLen, t.TextLen);
            for (int j = 0; j < t.ImageLen; j++) seq[i * t.SeqLen + t.TextLen + j] = t.TextVocab + codes[i * t.ImageLen + j];
        }
        return new IntTensor(seq, b, t.SeqLen);
    }

    public DalleSamplingOptions SamplingOptions(GenerateOptions o)
    {
        if (o.Sampler != SamplerName) throw new ArgumentException($"a DALL-E model samples tokens (--sampler {SamplerName}); '{o.Sampler}' is a diffusion sampler. Drop --sampler, and use --temperature, --top-k, --top-p and --cfg");
        if (o.Steps != DefaultSteps) throw new ArgumentException($"a DALL-E model draws exactly {DefaultSteps} image tokens; drop --steps (it is for diffusion models)");
        var s = new DalleSamplingOptions(o.Temperature, o.TopK, o.TopP, o.CfgScale);
        s.Validate();
        return s;
    }

    /// <summary>Images [B, 3, H, W] in [-1, 1]: row i draws its tokens with Rng(seed + i) after prompts[i], guided by the
    /// negative prompt (or the empty caption) when the CFG scale is not 1, and the VQ-VAE decodes them.</summary>
    public Tensor Sample(IReadOnlyList<string> prompts, GenerateOptions o)
    {
        var s = SamplingOptions(o);
        int b = prompts.Count;
        if (b < 1) throw new ArgumentException("nothing to sample: no prompts");
        var text = Tokenize(prompts);
        var uncond = s.CfgScale != 1f ? Tokenize(Enumerable.Repeat(o.NegativePrompt ?? "", b).ToList()) : null;
        var rngs = Enumerable.Range(0, b).Select(i => new Rng(o.Seed + (ulong)i)).ToList();
        Transformer.Train(false);
        var codes = DalleSampler.Generate(Transformer, text, uncond, s, rngs);
        var g = Setup.Transformer.Grid;
        using var _ = Autograd.NoGrad();
        var img = Vq.Net.Decode(new IntTensor(codes, b, g, g));
        var y = img.Span;
        for (int i = 0; i < y.Length; i++) y[i] = Math.Clamp(y[i], -1f, 1f);
        return img;
    }

    // ------------------------------------------------------------------------------------------- save / load

    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Setup.ToJson());
        Tokenizer.Save(Path.Combine(dir, TokenizerDir));
        Vq.Save(Path.Combine(dir, VqDir));
        Transformer.Save(Path.Combine(dir, WeightsFile), metadata: new Dictionary<string, string> { ["format"] = DalleSetup.Format });
        WeightsHash = Hash(dir);
    }

    public static DallePipeline Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"model directory '{dir}' does not exist");
        if (!File.Exists(Path.Combine(dir, WeightsFile)) && File.Exists(Path.Combine(dir, "model", "config.json"))) dir = Path.Combine(dir, "model");
        string cfg = Path.Combine(dir, "config.json"), weights = Path.Combine(dir, WeightsFile);
        if (!File.Exists(cfg)) throw new FileNotFoundException($"'{dir}' has no config.json; it is not a Pictor DALL-E model");
        if (!File.Exists(weights)) throw new FileNotFoundException($"'{dir}' has config.json but no {WeightsFile}; the model was not saved completely, retrain it");
        var setup = DalleSetup.FromJson(File.ReadAllText(cfg), cfg);
        var p = new DallePipeline(setup, BpeTokenizer.Load(Path.Combine(dir, TokenizerDir)), VqModel.Load(Path.Combine(dir, VqDir)), new Rng(0));
        p.Transformer.LoadStateDict(SafeTensorsFile.Read(weights));
        p.WeightsHash = Hash(dir);
        return p;
    }

    /// <summary>The transformer's and the VQ-VAE's weights hashed together (either changes the images).</summary>
    private static string Hash(string dir) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(DiffusionPipeline.HashFile(Path.Combine(dir, WeightsFile)) + DiffusionPipeline.HashFile(Path.Combine(dir, VqDir, VqModel.WeightsFile)))))[..10];
}
