// HelloPictor: draws one image with the Pictor.Pipelines package.
// Usage: HelloPictor [MODEL_DIR (default ../../models/emoji, from samples/HelloPictor)] [PROMPT] [OUT.png (default hello.png)]
using Pictor.Pipelines;

string modelDir = args.Length > 0 ? args[0] : "../../models/emoji";
string prompt = args.Length > 1 ? args[1] : "grinning face, noto style";
string outPath = args.Length > 2 ? args[2] : "hello.png";

var model = TextToImage.Load(modelDir);
var result = model.Generate(new GenerationRequest(prompt) { Seed = 7 }, new PrintProgress());
result.Images[0].Save(outPath);
Console.WriteLine($"wrote {outPath} ({model.ImageSize}x{model.ImageSize}, {model.Family}, \"{prompt}\")");

// Progress<T> posts to the thread pool, so its lines can come out of order; this one prints as each step reports.
sealed class PrintProgress : IProgress<GenerationProgress>
{
    public void Report(GenerationProgress p) => Console.WriteLine($"step {p.Step}/{p.Total}");
}
