using System.Buffers.Binary;
using System.Text;
using Pictor.Engine;
using Pictor.Engine.IO;

namespace Pictor.Engine.Tests;

public class SafeTensorsTests
{
    private static byte[] File(string header, byte[] data, ulong? declared = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var r = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(r, declared ?? (ulong)h.Length);
        h.CopyTo(r, 8); data.CopyTo(r, 8 + h.Length);
        return r;
    }

    private static string Error(byte[] bytes) => Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Parse(bytes, "t.safetensors")).Message;

    [Fact]
    public void Round_trips_every_dtype_with_metadata()
    {
        var w = new SafeTensorsWriter();
        float[] vals = [0f, 1f, -2.5f, 3.140625f, 65504f, 1e-3f];
        w.Add("f32", vals, [2, 3]);
        w.Add("f16", vals, [6], DType.F16);
        w.Add("bf16", vals, [3, 2], DType.BF16);
        w.AddInt64("i64", [1L, -5L, 1L << 40], [3]);
        w.AddInt32("i32", [7, -8], [2]);
        w.AddRaw("u8", DType.U8, [4], [0, 1, 254, 255]);
        w.Add("empty", [], [0, 3]);
        var dir = Directory.CreateTempSubdirectory("pictor-st");
        var path = Path.Combine(dir.FullName, "x.safetensors");
        w.Write(path, new Dictionary<string, string> { ["format"] = "pictor-test", ["ü"] = "ñ" });
        var f = SafeTensorsFile.Read(path);
        Assert.Equal(vals, f.ReadFloat32("f32"));
        Assert.Equal(vals.Select(v => (float)(Half)v).ToArray(), f.ReadFloat32("f16"));
        Assert.Equal(new[] { 0f, 1f, -2.5f, 3.140625f, 65536f, 0.00099945068359375f }, f.ReadFloat32("bf16"));
        Assert.Equal(new[] { 3, 2 }, f.Info("bf16").Shape);
        Assert.Throws<SafeTensorsFormatException>(() => f.ReadInt32("i64"));   // 2^40 does not fit int32
        Assert.Equal(new[] { 7, -8 }, f.ReadInt32("i32"));
        Assert.Equal(new[] { 0, 1, 254, 255 }, f.ReadInt32("u8"));
        Assert.Equal(0, f.Info("empty").Numel);
        Assert.Equal("ñ", f.Metadata["ü"]);
        Assert.Empty(Directory.GetFiles(dir.FullName, "*.tmp"));   // atomic write left no temp file
        var e = Assert.Throws<KeyNotFoundException>(() => f.Info("nope"));
        Assert.Contains("has no tensor 'nope'", e.Message);
    }

    [Fact]
    public void Valid_minimal_files_parse()
    {
        Assert.Empty(SafeTensorsFile.Parse(File("{}", [])).Tensors);
        var f = SafeTensorsFile.Parse(File("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}   ", [1, 2]));
        Assert.Equal(new[] { 1, 2 }, f.ReadInt32("a"));   // trailing spaces in the header are allowed
    }

    [Fact] public void Truncated_file() => Assert.Contains("shorter than the 8-byte header length", Error([1, 2, 3]));
    [Fact] public void Header_length_past_end() => Assert.Contains("runs past the end", Error(File("{}", [], declared: 50)));
    [Fact] public void Header_too_long() => Assert.Contains("exceeds the 100 MB limit", Error(File("{}", [], declared: 100_000_001)));

    [Fact]
    public void Truncated_data() =>
        Assert.Contains("the file is truncated", Error(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[4])));

    [Fact]
    public void Trailing_bytes() =>
        Assert.Contains("trailing data is not allowed", Error(File("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", new byte[3])));

    [Fact]
    public void Overlapping_offsets() =>
        Assert.Contains("overlapping data", Error(File(
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", new byte[3])));

    [Fact]
    public void Gap_between_tensors() =>
        Assert.Contains("a gap between tensors", Error(File(
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]}}", new byte[5])));

    [Fact]
    public void Data_not_starting_at_zero() =>
        Assert.Contains("a gap between tensors", Error(File("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", new byte[3])));

    [Fact]
    public void Size_not_matching_shape() =>
        Assert.Contains("needs 12 bytes but data_offsets [0, 8] cover 8", Error(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8])));

    [Fact]
    public void Unknown_dtype() =>
        Assert.Contains("dtype 'F8_E4M3', which Pictor does not read", Error(File("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", new byte[1])));

    [Fact]
    public void Numeric_dtype_name_is_unknown() =>
        Assert.Contains("which Pictor does not read", Error(File("{\"a\":{\"dtype\":\"0\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4])));

    [Fact]
    public void Duplicate_keys() =>
        Assert.Contains("appears twice", Error(File(
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", new byte[2])));

    [Fact]
    public void Non_utf8_header()
    {
        var bytes = File("{\"a\":1}", []);
        bytes[10] = 0xFF;
        Assert.Contains("not valid UTF-8", Error(bytes));
    }

    [Fact] public void Header_not_an_object() => Assert.Contains("does not start with '{'", Error(File("[1,2]", [])));
    [Fact] public void Invalid_json() => Assert.Contains("not valid JSON", Error(File("{\"a\":", [])));
    [Fact] public void Metadata_values_must_be_strings() => Assert.Contains("is not a string", Error(File("{\"__metadata__\":{\"k\":1}}", [])));
    [Fact] public void Negative_shape() => Assert.Contains("non-negative", Error(File("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", [])));

    [Fact]
    public void Huge_shape_is_refused_before_allocating() =>
        Assert.Contains("too many elements", Error(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[100000,100000,100000],\"data_offsets\":[0,4]}}", new byte[4])));

    [Fact]
    public void Missing_file_names_the_path()
    {
        var e = Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Read("/nonexistent/w.safetensors"));
        Assert.Contains("/nonexistent/w.safetensors", e.Message);
    }
}
