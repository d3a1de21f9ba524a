using Pictor.Engine.IO;
using Pictor.Imaging.Png;
using Pictor.TestSupport;

namespace Pictor.Imaging.Tests;

/// <summary>PngSuite conformance (tests/fixtures/pngsuite): every valid image decodes to exactly its expected pixels;
/// every x* file is rejected with a PngFormatException whose message names the problem.</summary>
public class PngSuiteTests
{
    private static readonly string Dir = Path.Combine(Fixtures.Dir, "pngsuite");
    private static readonly SafeTensorsFile Expected = SafeTensorsFile.Read(Path.Combine(Dir, "expected.safetensors"));

    public static IEnumerable<object[]> Valid() =>
        Directory.GetFiles(Path.Combine(Fixtures.Dir, "pngsuite"), "*.png").Select(Path.GetFileNameWithoutExtension)
                 .Where(n => !n!.StartsWith('x')).OrderBy(n => n).Select(n => new object[] { n! });

    public static IEnumerable<object[]> Corrupt() =>
        Directory.GetFiles(Path.Combine(Fixtures.Dir, "pngsuite"), "x*.png").Select(Path.GetFileNameWithoutExtension)
                 .OrderBy(n => n).Select(n => new object[] { n! });

    [Theory]
    [MemberData(nameof(Valid))]
    public void Valid_image_decodes_to_expected_pixels(string name)
    {
        var img = PngDecoder.DecodeFile(Path.Combine(Dir, name + ".png"), new PngDecodeOptions(Want16Bit: true));
        Assert.True(Expected.Contains(name), $"no expected pixels for {name}");
        var want = Expected.ReadInt32(name);
        if (img.BitDepth == 16)
        {
            Assert.Equal(want, img.Rgba16!.Select(v => (int)v).ToArray());
            if (Expected.Contains(name + "_to8"))
            {
                var to8 = Expected.ReadInt32(name + "_to8");
                var got8 = img.Rgba8.Select(v => (int)v).ToArray();
                if (img.ColorType == PngColorType.Grayscale)
                {
                    // The suite's 8-bit references for 16-bit grayscale came from another tool's conversion, which
                    // rounds some samples where the high byte truncates (e.g. 31232 -> 121 vs 122 = 31232 >> 8).
                    // The 16-bit samples above are exact; here the reduction may differ by one.
                    for (int i = 0; i < to8.Length; i++) Assert.True(Math.Abs(to8[i] - got8[i]) <= 1, $"{name}: sample {i} is {got8[i]}, reference {to8[i]}");
                }
                else Assert.Equal(to8, got8);
            }
            else   // no 8-bit reference: it must be the high byte of each 16-bit sample
                Assert.Equal(img.Rgba16!.Select(v => v >> 8).ToArray(), img.Rgba8.Select(v => (int)v).ToArray());
        }
        else
        {
            Assert.Equal(want, img.Rgba8.Select(v => (int)v).ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(Corrupt))]
    public void Corrupt_image_is_rejected_with_a_clear_error(string name)
    {
        var e = Assert.Throws<PngFormatException>(() => PngDecoder.DecodeFile(Path.Combine(Dir, name + ".png")));
        Assert.Contains(name + ".png", e.Message);
        Assert.True(e.Message.Length > name.Length + 20, $"error for {name} says too little: {e.Message}");
    }

    [Fact]
    public void Every_suite_image_is_covered()
    {
        Assert.Equal(161, Valid().Count());
        Assert.Equal(14, Corrupt().Count());
    }
}

/// <summary>Regression guard for the fuzzer's finding: corrupt deflate data inside valid chunks (CRCs recomputed)
/// must be a PngFormatException, never a ZLibException or IOException.</summary>
public class PngCorruptDataTests
{
    [Fact]
    public void Corrupted_idat_with_valid_crc_is_a_format_error()
    {
        var src = PngEncoder.Encode(Enumerable.Range(0, 16 * 16 * 4).Select(i => (byte)(i * 7)).ToArray(), 16, 16);
        var rng = new Pictor.Engine.Rng(5);
        int idat = IndexOf(src, "IDAT"u8) - 4;
        int len = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(src.AsSpan(idat));
        for (int c = 0; c < 2000; c++)
        {
            var d = (byte[])src.Clone();
            for (int k = 0; k < 1 + c % 4; k++) d[idat + 8 + rng.NextInt(len)] = (byte)rng.NextInt(256);
            uint crc = Crc(d.AsSpan(idat + 4, 4 + len));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(idat + 8 + len), crc);
            try { PngDecoder.Decode(d); }
            catch (PngFormatException) { }
        }
    }

    private static int IndexOf(byte[] a, ReadOnlySpan<byte> what) => a.AsSpan().IndexOf(what);

    private static uint Crc(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data) { c ^= b; for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1; }
        return ~c;
    }
}
