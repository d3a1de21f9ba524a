using Pictor.Imaging;
using Pictor.Imaging.Datasets;
using Pictor.Pipelines.Training;
using Pictor.Pipelines.Diffusion;
using SkiaSharp;

namespace Pictor.Pipelines.Tests;

/// <summary>The product issue's "a folder of JPEG photos with captions trains": a shapes set re-encoded as JPEG (one
/// file WebP) by Skia's encoder, with a truncated JPEG among the train images, runs the tiny diffusion trainer; the bad
/// file costs one warning and its own caption, nothing else; strict mode stops on it instead.</summary>
[Collection("BufferPool")]
public class PhotoFolderTrainingTests
{
    private static readonly Lazy<string> Photos = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("pictor-photos").FullName;
        Shapes.WriteDataset(dir, 20, seed: 7);
        foreach (var split in new[] { "train", "val" })
        {
            var folder = Path.Combine(dir, split);
            var meta = Path.Combine(folder, "metadata.jsonl");
            var lines = File.ReadAllLines(meta).Where(l => l.Length > 0).ToList();
            for (int i = 0; i < lines.Count; i++)
            {
                string png = $"{i:D6}.png", photo = i == 3 ? $"IMG_{i:D4}.webp" : $"IMG_{i:D4}.jpg";
                var img = Image.Load(Path.Combine(folder, png));
                var format = i == 3 ? SKEncodedImageFormat.Webp : SKEncodedImageFormat.Jpeg;
                File.WriteAllBytes(Path.Combine(folder, photo), Encode(img, format));
                File.Delete(Path.Combine(folder, png));
                lines[i] = lines[i].Replace($"\"{png}\"", $"\"{photo}\"", StringComparison.Ordinal);
            }
            if (split == "train")
            {
                var whole = File.ReadAllBytes(Path.Combine(folder, "IMG_0000.jpg"));
                int scan = whole.AsSpan().IndexOf((ReadOnlySpan<byte>)[0xFF, 0xDA]);   // cut halfway through the scan
                File.WriteAllBytes(Path.Combine(folder, "IMG_9999.jpg"), whole[..((scan + whole.Length) / 2)]);
                lines.Insert(5, "{\"file_name\": \"IMG_9999.jpg\", \"text\": \"a photo that was cut short\"}");
            }
            File.WriteAllLines(meta, lines);
        }
        return dir;
    });

    private static byte[] Encode(Image img, SKEncodedImageFormat format)
    {
        var info = new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var sk = SKImage.FromPixelCopy(info, img.Rgba);
        using var data = sk.Encode(format, 92);
        return data.ToArray();
    }

    private static TrainOptions Options => new()
    {
        Data = Photos.Value, Preset = "tiny", ImageSize = 16, Context = 12, Batch = 4, Steps = 2, Lr = 2e-3f,
        Warmup = 1, ValEvery = 2, CkptEvery = 2, Keep = 1, ValImages = 2, Patience = 0, Seed = 3,
    };

    [Fact]
    public void Jpeg_folder_with_captions_trains_and_a_bad_file_costs_one_warning()
    {
        Assert.Empty(Directory.GetFiles(Path.Combine(Photos.Value, "train"), "*.png"));
        var warnings = new List<string>();
        var log = new List<string>();
        string run = TrainerTests.NewRun();
        var r = DiffusionTrainer.Start(run, Options, new TrainControl(Log: log.Add, Warn: warnings.Add));
        Assert.Equal(2, r.Step);
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "step-0000002.safetensors")));
        var bad = Path.Combine(Photos.Value, "train", "IMG_9999.jpg");
        Assert.Equal([$"warning: skipped {bad}: not a decodable JPEG (truncated: the file ends before the image data " +
            "does); remove it or replace it (its 1 caption dropped with it; --strict makes this an error)"], warnings);
        Assert.Contains("data: 18 train, 2 val images at 16x16",
            log.Single(l => l.StartsWith("data:", StringComparison.Ordinal)));

        // The images and captions that stayed are the listed ones in order, without the bad file's.
        var set = TrainingSession.LoadSplits(Options, new TrainControl(Warn: _ => { })).Train;
        Assert.Equal(18, set.Count);
        Assert.DoesNotContain(set.Captions, c => c.Contains("a photo that was cut short"));
    }

    [Fact]
    public void Strict_mode_stops_the_run_on_the_bad_file()
    {
        var e = Assert.Throws<DatasetFormatException>(() =>
            DiffusionTrainer.Start(TrainerTests.NewRun(), Options, new TrainControl(Strict: true)));
        Assert.StartsWith($"{Path.Combine(Photos.Value, "train", "IMG_9999.jpg")}: not a decodable JPEG", e.Message);
        Assert.Contains("Strict mode (--strict) stops at an image that does not decode; leave --strict out", e.Message);
    }
}
