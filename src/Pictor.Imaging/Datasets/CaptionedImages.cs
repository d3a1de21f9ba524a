using System.Text.Json;

namespace Pictor.Imaging.Datasets;

/// <summary>One training example on disk: the image file, its captions (COCO gives several per image) and, when the
/// metadata lists them, the objects in it with their boxes (<see cref="ImageObject"/>; empty when it does
/// not).</summary>
public sealed record CaptionedImage(string ImagePath, IReadOnlyList<string> Captions,
    IReadOnlyList<ImageObject>? Objects = null);

/// <summary>An object in a dataset image: the words that name it (its metadata entry's string values, lowercased: for
/// 'pictor data shapes' its colour, shape and size) and its box [X0, X1) x [Y0, Y1) in the image file's
/// pixels.</summary>
public sealed record ImageObject(IReadOnlyList<string> Words, float X0, float Y0, float X1, float Y1);

/// <summary>A malformed dataset; the message names the file, the line or entry, and the fix.</summary>
public sealed class DatasetFormatException(string message) : FormatException(message);

/// <summary>
/// Readers for captioned image collections:
/// - the Hugging Face "imagefolder" convention: DIR/metadata.jsonl, one JSON object a line with "file_name" (relative
///   to DIR) and "text" (a string, or a list of strings);
/// - COCO captions: an annotations JSON with "images" (id, file_name) and "annotations" (image_id, caption), and the
///   folder holding the images.
/// Problems are reported with the file and line: missing files, bad JSON, empty captions.
/// </summary>
public static class CaptionedImages
{
    public static List<CaptionedImage> ReadImageFolder(string dir)
    {
        var meta = Path.Combine(dir, "metadata.jsonl");
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"dataset folder '{dir}' does not exist");
        if (!File.Exists(meta))
            throw new DatasetFormatException($"'{dir}' has no metadata.jsonl; an image folder needs one line per "
                + $"image: {{\"file_name\": \"0001.png\", \"text\": \"a caption\"}}");
        var items = new List<CaptionedImage>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(meta))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement root;
            try { root = JsonDocument.Parse(line).RootElement; }
            catch (JsonException e) { throw new DatasetFormatException(
                $"{meta} line {lineNo}: not valid JSON ({e.Message})"); }
            if (root.ValueKind != JsonValueKind.Object)
                throw new DatasetFormatException($"{meta} line {lineNo}: expected a JSON object");
            if (!root.TryGetProperty("file_name", out var fn) || fn.ValueKind != JsonValueKind.String
                || string.IsNullOrWhiteSpace(fn.GetString()))
                throw new DatasetFormatException($"{meta} line {lineNo}: missing \"file_name\"");
            var captions = new List<string>();
            if (root.TryGetProperty("text", out var t))
            {
                if (t.ValueKind == JsonValueKind.String) captions.Add(t.GetString()!);
                else if (t.ValueKind == JsonValueKind.Array)
                    captions.AddRange(t.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String)
                        .Select(e => e.GetString()!));
            }
            captions = captions.Where(c => !string.IsNullOrWhiteSpace(c)).ToList();
            if (captions.Count == 0) throw new DatasetFormatException($"{meta} line {lineNo}: empty or missing "
                + $"\"text\" for '{fn.GetString()}'; every image needs a caption");
            var path = Path.GetFullPath(Path.Combine(dir, fn.GetString()!));
            if (!File.Exists(path)) throw new DatasetFormatException($"{meta} line {lineNo}: image '{fn.GetString()}' "
                + $"does not exist in '{dir}'");
            items.Add(new CaptionedImage(path, captions, ReadObjects(root, meta, lineNo)));
        }
        if (items.Count == 0) throw new DatasetFormatException($"{meta} lists no images");
        return items;
    }

    /// <summary>A metadata line's optional "objects": [{"bbox": [x0, y0, x1, y1], "colour": "red", ...}, ...], as
    /// 'pictor data shapes' writes them. Entries without a bbox are skipped; a bbox that is not four finite numbers
    /// with x0 &lt; x1 and y0 &lt; y1 is an error naming the line.</summary>
    private static List<ImageObject>? ReadObjects(JsonElement root, string meta, int lineNo)
    {
        if (!root.TryGetProperty("objects", out var objs) || objs.ValueKind != JsonValueKind.Array) return null;
        var list = new List<ImageObject>();
        int k = 0;
        foreach (var o in objs.EnumerateArray())
        {
            if (o.ValueKind == JsonValueKind.Object && o.TryGetProperty("bbox", out var bb))
            {
                var v = bb.ValueKind == JsonValueKind.Array && bb.GetArrayLength() == 4
                    && bb.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number)
                    ? bb.EnumerateArray().Select(e => e.GetSingle()).ToArray() : null;
                if (v == null || !v.All(float.IsFinite) || !(v[0] < v[2] && v[1] < v[3]))
                    throw new DatasetFormatException($"{meta} line {lineNo}: objects[{k}].bbox must be "
                        + $"[x0, y0, x1, y1] in pixels with x0 < x1 and y0 < y1; got {bb.GetRawText()}");
                var words = o.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.String)
                    .Select(p => p.Value.GetString()!.Trim().ToLowerInvariant()).Where(w => w.Length > 0).ToList();
                list.Add(new ImageObject(words, v[0], v[1], v[2], v[3]));
            }
            k++;
        }
        return list;
    }

    public static List<CaptionedImage> ReadCoco(string annotationsJson, string imagesDir)
    {
        if (!File.Exists(annotationsJson))
            throw new FileNotFoundException($"COCO annotations '{annotationsJson}' do not exist", annotationsJson);
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllText(annotationsJson)).RootElement; }
        catch (JsonException e) { throw new DatasetFormatException(
            $"{annotationsJson}: not valid JSON ({e.Message})"); }
        if (!root.TryGetProperty("images", out var imgs) || imgs.ValueKind != JsonValueKind.Array)
            throw new DatasetFormatException($"{annotationsJson}: no \"images\" array; is this a COCO captions file "
                + "(captions_train2017.json)?");
        if (!root.TryGetProperty("annotations", out var anns) || anns.ValueKind != JsonValueKind.Array)
            throw new DatasetFormatException($"{annotationsJson}: no \"annotations\" array");
        var files = new Dictionary<long, string>();
        int i = 0;
        foreach (var im in imgs.EnumerateArray())
        {
            if (!im.TryGetProperty("id", out var id) || !id.TryGetInt64(out long iid)
                || !im.TryGetProperty("file_name", out var fn) || fn.ValueKind != JsonValueKind.String)
                throw new DatasetFormatException(
                    $"{annotationsJson}: images[{i}] needs an integer \"id\" and a \"file_name\"");
            files[iid] = fn.GetString()!;
            i++;
        }
        var caps = new Dictionary<long, List<string>>();
        i = 0;
        foreach (var a in anns.EnumerateArray())
        {
            if (!a.TryGetProperty("image_id", out var id) || !id.TryGetInt64(out long iid))
                throw new DatasetFormatException($"{annotationsJson}: annotations[{i}] has no integer \"image_id\"");
            if (!files.ContainsKey(iid))
                throw new DatasetFormatException(
                    $"{annotationsJson}: annotations[{i}] refers to image {iid}, which \"images\" does not list");
            var c = a.TryGetProperty("caption", out var ce) && ce.ValueKind == JsonValueKind.String
                ? ce.GetString()!.Trim() : "";
            if (c.Length == 0)
                throw new DatasetFormatException(
                    $"{annotationsJson}: annotations[{i}] (image {iid}) has an empty caption");
            (caps.TryGetValue(iid, out var l) ? l : caps[iid] = new List<string>()).Add(c);
            i++;
        }
        var items = new List<CaptionedImage>();
        foreach (var (iid, fn) in files.OrderBy(p => p.Key))
        {
            if (!caps.TryGetValue(iid, out var c)) continue;   // images without captions are not examples
            var path = Path.Combine(imagesDir, fn);
            if (!File.Exists(path))
                throw new DatasetFormatException($"COCO image '{fn}' (id {iid}) is not in '{imagesDir}'");
            items.Add(new CaptionedImage(path, c));
        }
        return items;
    }
}
