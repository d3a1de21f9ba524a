using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Pictor.Engine.IO;

/// <summary>Element types a safetensors file may hold here (the names are the format's own).</summary>
public enum DType { F32, F16, BF16, I64, I32, U8 }

/// <summary>One tensor's header entry: dtype, shape and byte range within the data section.</summary>
public sealed record SafeTensorInfo(string Name, DType DType, int[] Shape, long Begin, long End)
{
    public int Numel => Engine.Shape.Numel(Shape);
}

/// <summary>A malformed safetensors file; the message names the rule broken and the file.</summary>
public sealed class SafeTensorsFormatException(string message) : FormatException(message);

/// <summary>
/// Reader and writer for the safetensors format (8-byte little-endian header length N, N bytes of UTF-8 JSON
/// header, then the data). The reader enforces the rules of the reference implementation: N at most 100 MB and
/// inside the file; UTF-8 JSON object starting with '{'; known dtypes; every tensor's byte length equal to its element
/// count times the dtype size; data ranges that, sorted, start at 0 and follow each other with no gap or overlap; the
/// data section ending exactly at the end of the file; no duplicate keys; "__metadata__" a map of strings.
/// </summary>
public sealed class SafeTensorsFile
{
    public const long MaxHeaderBytes = 100_000_000;

    private readonly byte[] data;              // the data section only
    private readonly Dictionary<string, SafeTensorInfo> byName;

    public IReadOnlyList<SafeTensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public string Source { get; }

    private SafeTensorsFile(byte[] data, List<SafeTensorInfo> tensors, Dictionary<string, string> metadata,
        string source)
    {
        this.data = data;
        Tensors = tensors;
        byName = tensors.ToDictionary(t => t.Name);
        Metadata = metadata;
        Source = source;
    }

    public static int SizeOf(DType t) => t switch { DType.F32 or DType.I32 => 4, DType.F16 or DType.BF16 => 2,
        DType.I64 => 8, _ => 1 };

    public static SafeTensorsFile Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file '{path}' does not exist", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> head = stackalloc byte[8];
        int got = fs.ReadAtLeast(head, 8, throwOnEndOfStream: false);
        int n = CheckHeaderLength(head[..got], fs.Length, path);
        var header = new byte[n];
        fs.ReadExactly(header);
        var (tensors, meta, expected) = ParseHeader(header, path);
        long dataLen = CheckDataLength(expected, fs.Length - 8 - n, path);
        var data = new byte[dataLen];
        fs.ReadExactly(data);
        return new SafeTensorsFile(data, tensors, meta, path);
    }

    /// <summary>Parses a whole file held in memory.</summary>
    public static SafeTensorsFile Parse(byte[] bytes, string source = "<memory>")
    {
        int n = CheckHeaderLength(bytes.AsSpan(0, Math.Min(8, bytes.Length)), bytes.Length, source);
        var (tensors, meta, expected) = ParseHeader(bytes.AsSpan(8, n).ToArray(), source);
        long dataLen = CheckDataLength(expected, bytes.Length - 8L - n, source);
        return new SafeTensorsFile(bytes.AsSpan(8 + n, (int)dataLen).ToArray(), tensors, meta, source);
    }

    /// <summary>The header length N from the first 8 bytes, checked against the 100 MB limit and the file
    /// size.</summary>
    private static int CheckHeaderLength(ReadOnlySpan<byte> first8, long fileLength, string src)
    {
        if (first8.Length < 8)
            Fail(src, $"file is {fileLength} bytes, shorter than the 8-byte header length; it is truncated or not a "
                + $"safetensors file");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(first8);
        if (n > MaxHeaderBytes)
            Fail(src, $"header length {n} exceeds the 100 MB limit; the file is corrupt or not a safetensors file");
        if ((long)n > fileLength - 8)
            Fail(src, $"header length {n} runs past the end of the {fileLength}-byte file; the file is truncated");
        return (int)n;
    }

    /// <summary>The data section must be exactly as long as the tensors need: no truncation, no trailing
    /// bytes.</summary>
    private static long CheckDataLength(long expected, long dataLen, string src)
    {
        if (expected != dataLen)
            Fail(src, expected > dataLen
                ? $"tensors need {expected} data bytes but only {dataLen} follow the header; the file is truncated"
                : $"{dataLen - expected} bytes follow the last tensor; trailing data is not allowed");
        if (dataLen > int.MaxValue - 64)
            Fail(src, $"data section of {dataLen} bytes is larger than Pictor loads (2 GB)");
        return dataLen;
    }

    private static (List<SafeTensorInfo>, Dictionary<string, string>, long) ParseHeader(byte[] header, string src)
    {
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(header); }
        catch (DecoderFallbackException) { return Fail<(List<SafeTensorInfo>, Dictionary<string, string>, long)>(src,
            "header is not valid UTF-8"); }
        if (text.Length == 0 || text[0] != '{') Fail(src, "header does not start with '{'; it must be a JSON object");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { return Fail<(List<SafeTensorInfo>, Dictionary<string, string>, long)>(src,
            $"header is not valid JSON: {e.Message}"); }
        using var _ = doc;
        var tensors = new List<SafeTensorInfo>();
        var meta = new Dictionary<string, string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (!seen.Add(prop.Name)) Fail(src, $"key '{prop.Name}' appears twice in the header");
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object)
                    Fail(src, "__metadata__ must be an object of string values");
                var mseen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String)
                        Fail(src, $"__metadata__ value of '{m.Name}' is not a string");
                    if (!mseen.Add(m.Name)) Fail(src, $"__metadata__ key '{m.Name}' appears twice");
                    meta[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            tensors.Add(ParseInfo(prop.Name, prop.Value, src));
        }
        // Offsets: sorted by start, the ranges must tile [0, total) exactly.
        var sorted = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
        long at = 0;
        foreach (var t in sorted)
        {
            if (t.Begin != at)
                Fail(src, t.Begin > at
                    ? $"tensor '{t.Name}' starts at byte {t.Begin} but the previous data ends at {at}: a gap "
                        + $"between tensors"
                    : $"tensor '{t.Name}' starts at byte {t.Begin}, inside the previous tensor (which ends at {at}): "
                        + $"overlapping data");
            at = t.End;
        }
        return (tensors, meta, at);
    }

    private static SafeTensorInfo ParseInfo(string name, JsonElement e, string src)
    {
        if (e.ValueKind != JsonValueKind.Object)
            Fail(src, $"entry '{name}' is not an object with dtype, shape and data_offsets");
        string? dtypeText = null; int[]? shape = null; long[]? offsets = null;
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
        {
            if (!keys.Add(p.Name)) Fail(src, $"tensor '{name}': key '{p.Name}' appears twice");
            switch (p.Name)
            {
                case "dtype":
                    if (p.Value.ValueKind != JsonValueKind.String) Fail(src, $"tensor '{name}': dtype is not a string");
                    dtypeText = p.Value.GetString();
                    break;
                case "shape":
                    if (p.Value.ValueKind != JsonValueKind.Array) Fail(src, $"tensor '{name}': shape is not an array");
                    shape = p.Value.EnumerateArray().Select(v =>
                        v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int d) && d >= 0 ? d
                        : Fail<int>(src, $"tensor '{name}': shape entry {v} is not a non-negative 32-bit integer"))
                            .ToArray();
                    break;
                case "data_offsets":
                    if (p.Value.ValueKind != JsonValueKind.Array || p.Value.GetArrayLength() != 2)
                        Fail(src, $"tensor '{name}': data_offsets must be [begin, end]");
                    offsets = p.Value.EnumerateArray().Select(v =>
                        v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long o) && o >= 0 ? o
                        : Fail<long>(src, $"tensor '{name}': data offset {v} is not a non-negative integer")).ToArray();
                    break;
                default:
                    Fail(src, $"tensor '{name}': unknown key '{p.Name}' (expected dtype, shape, data_offsets)");
                    break;
            }
        }
        if (dtypeText == null || shape == null || offsets == null)
            Fail(src, $"tensor '{name}' lacks dtype, shape or data_offsets");
        var dtype = Enum.GetValues<DType>().FirstOrDefault(d => d.ToString() == dtypeText, (DType)(-1));
        if (!Enum.IsDefined(dtype))
            Fail(src, $"tensor '{name}' has dtype '{dtypeText}', which Pictor does not read; supported: F32, F16, "
                + $"BF16, I64, I32, U8");
        long numel = 1;
        foreach (int d in shape)
        {
            numel *= d;
            if (numel > Engine.Shape.MaxElements)
                Fail(src, $"tensor '{name}' shape [{string.Join(", ", shape)}] has too many elements");
        }
        if (offsets[1] < offsets[0])
            Fail(src, $"tensor '{name}': data_offsets [{offsets[0]}, {offsets[1]}] end before they begin");
        long bytes = numel * SizeOf(dtype);
        if (offsets[1] - offsets[0] != bytes)
            Fail(src, $"tensor '{name}': shape [{string.Join(", ", shape)}] of {dtype} needs {bytes} bytes but "
                + $"data_offsets [{offsets[0]}, {offsets[1]}] cover {offsets[1] - offsets[0]}");
        return new SafeTensorInfo(name, dtype, shape, offsets[0], offsets[1]);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Fail(string src, string why)
        => throw new SafeTensorsFormatException($"'{src}' is not a valid safetensors file: {why}");
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static T Fail<T>(string src, string why)
        => throw new SafeTensorsFormatException($"'{src}' is not a valid safetensors file: {why}");

    // ------------------------------------------------------------ access

    public bool Contains(string name) => byName.ContainsKey(name);

    public SafeTensorInfo Info(string name) =>
        byName.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"'{Source}' has no tensor '{name}'; it has: "
            + $"{string.Join(", ", byName.Keys.Take(20))}{(byName.Count > 20 ? ", ..." : "")}");

    public ReadOnlySpan<byte> Raw(string name)
    {
        var t = Info(name);
        return data.AsSpan((int)t.Begin, (int)(t.End - t.Begin));
    }

    /// <summary>Any floating dtype widened to float32 (F16 and BF16 exactly; integers converted).</summary>
    public float[] ReadFloat32(string name)
    {
        var t = Info(name); var raw = Raw(name); int n = t.Numel;
        var r = new float[n];
        switch (t.DType)
        {
            case DType.F32: for (int i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..]);
                break;
            case DType.F16:
                for (int i = 0; i < n; i++) r[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(2 * i)..]); break;
            case DType.BF16:
                for (int i = 0; i < n; i++)
                    r[i] = BFloat16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..])); break;
            case DType.I64: for (int i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadInt64LittleEndian(raw[(8 * i)..]);
                break;
            case DType.I32: for (int i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadInt32LittleEndian(raw[(4 * i)..]);
                break;
            default: for (int i = 0; i < n; i++) r[i] = raw[i]; break;
        }
        return r;
    }

    /// <summary>An integer tensor (I64, I32 or U8) as int32; I64 values must fit.</summary>
    public int[] ReadInt32(string name)
    {
        var t = Info(name); var raw = Raw(name); int n = t.Numel;
        var r = new int[n];
        switch (t.DType)
        {
            case DType.I64:
                for (int i = 0; i < n; i++)
                {
                    long v = BinaryPrimitives.ReadInt64LittleEndian(raw[(8 * i)..]);
                    if (v is < int.MinValue or > int.MaxValue)
                        throw new SafeTensorsFormatException(
                            $"'{Source}' tensor '{name}': value {v} does not fit in int32");
                    r[i] = (int)v;
                }
                break;
            case DType.I32: for (int i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadInt32LittleEndian(raw[(4 * i)..]);
                break;
            case DType.U8: for (int i = 0; i < n; i++) r[i] = raw[i]; break;
            default:
                throw new SafeTensorsFormatException($"'{Source}' tensor '{name}' is {t.DType}, not an integer type");
        }
        return r;
    }

    public Tensor GetTensor(string name) => Tensor.FromArray(ReadFloat32(name), Info(name).Shape);

    public IntTensor GetIntTensor(string name) => new(ReadInt32(name), Info(name).Shape);
}

/// <summary>Collects tensors and writes a safetensors file atomically, sorted by name, with optional
/// metadata.</summary>
public sealed class SafeTensorsWriter
{
    private readonly List<(string Name, DType DType, int[] Shape, byte[] Bytes)> items = new();
    private readonly HashSet<string> names = new(StringComparer.Ordinal);

    public SafeTensorsWriter Add(string name, Tensor t, DType storeAs = DType.F32)
        => Add(name, t.ToArray(), t.Shape, storeAs);

    public SafeTensorsWriter Add(string name, ReadOnlySpan<float> values, int[] shape, DType storeAs = DType.F32)
    {
        if (Shape.Numel(shape) != values.Length)
            Throw.Argument($"tensor '{name}': {values.Length} values for shape {Shape.Format(shape)}");
        int size = SafeTensorsFile.SizeOf(storeAs);
        var b = new byte[values.Length * size];
        for (int i = 0; i < values.Length; i++)
        {
            var dst = b.AsSpan(i * size);
            switch (storeAs)
            {
                case DType.F32: BinaryPrimitives.WriteSingleLittleEndian(dst, values[i]); break;
                case DType.F16: BinaryPrimitives.WriteHalfLittleEndian(dst, (Half)values[i]); break;
                case DType.BF16: BinaryPrimitives.WriteUInt16LittleEndian(dst, BFloat16.FromFloat(values[i])); break;
                default: Throw.Argument($"tensor '{name}': store float data as F32, F16 or BF16, not {storeAs}"); break;
            }
        }
        return AddRaw(name, storeAs, shape, b);
    }

    public SafeTensorsWriter AddInt64(string name, ReadOnlySpan<long> values, int[] shape)
    {
        if (Shape.Numel(shape) != values.Length)
            Throw.Argument($"tensor '{name}': {values.Length} values for shape {Shape.Format(shape)}");
        var b = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(8 * i), values[i]);
        return AddRaw(name, DType.I64, shape, b);
    }

    public SafeTensorsWriter AddInt32(string name, ReadOnlySpan<int> values, int[] shape)
    {
        if (Shape.Numel(shape) != values.Length)
            Throw.Argument($"tensor '{name}': {values.Length} values for shape {Shape.Format(shape)}");
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4 * i), values[i]);
        return AddRaw(name, DType.I32, shape, b);
    }

    public SafeTensorsWriter AddRaw(string name, DType dtype, int[] shape, byte[] bytes)
    {
        if (name == "__metadata__") Throw.Argument("'__metadata__' is reserved for the metadata map");
        if (!names.Add(name)) Throw.Argument($"tensor '{name}' added twice");
        if ((long)Shape.Numel(shape) * SafeTensorsFile.SizeOf(dtype) != bytes.Length)
            Throw.Argument($"tensor '{name}': {bytes.Length} bytes do not match shape "
                + $"{Shape.Format(shape)} of {dtype}");
        items.Add((name, dtype, (int[])shape.Clone(), bytes));
        return this;
    }

    public byte[] ToBytes(IReadOnlyDictionary<string, string>? metadata = null)
    {
        var sorted = items.OrderBy(i => i.Name, StringComparer.Ordinal).ToList();
        using var headerStream = new MemoryStream();
        using (var w = new Utf8JsonWriter(headerStream))
        {
            w.WriteStartObject();
            if (metadata != null && metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long at = 0;
            foreach (var it in sorted)
            {
                w.WriteStartObject(it.Name);
                w.WriteString("dtype", it.DType.ToString());
                w.WriteStartArray("shape"); foreach (int d in it.Shape) w.WriteNumberValue(d); w.WriteEndArray();
                w.WriteStartArray("data_offsets"); w.WriteNumberValue(at); w.WriteNumberValue(at + it.Bytes.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                at += it.Bytes.Length;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data is aligned (the format allows trailing spaces).
        int pad = (int)((8 - headerStream.Length % 8) % 8);
        for (int i = 0; i < pad; i++) headerStream.WriteByte((byte)' ');
        var header = headerStream.ToArray();
        using var outStream = new MemoryStream();
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        outStream.Write(len);
        outStream.Write(header);
        foreach (var it in sorted) outStream.Write(it.Bytes);
        return outStream.ToArray();
    }

    /// <summary>Writes atomically (temp file in the same folder, flush, rename).</summary>
    public void Write(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var bytes = ToBytes(metadata);
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}

/// <summary>bfloat16 conversion: the top 16 bits of a float32, rounded to nearest even; NaN stays NaN.</summary>
public static class BFloat16
{
    public static ushort FromFloat(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    public static float ToFloat(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);
}
