using System.Buffers.Binary;
using System.Diagnostics;
using Pictor.Engine;
using Pictor.Imaging.Png;

namespace Pictor.Bench;

/// <summary>
/// Mutation fuzzing of the PNG decoder over the PngSuite files. Mutations: flip bits, overwrite bytes, insert or delete
/// runs, truncate, set chunk lengths to extreme values, duplicate or swap chunks. Half the cases then recompute every
/// chunk CRC so the mutation reaches the parsers behind the checksum. Pass criteria: every failure is a
/// PngFormatException (never another exception), no case takes more than a second, and no case allocates more than
/// the caps allow (64 MP of RGBA plus the inflated data, here with a 4 MP cap: under 64 MiB).
/// </summary>
internal static class PngFuzz
{
    public static int Run(string suiteDir, int cases, ulong seed)
    {
        var files = Directory.GetFiles(suiteDir, "*.png").OrderBy(f => f).Select(File.ReadAllBytes).ToArray();
        if (files.Length == 0) { Console.Error.WriteLine($"no PNG files in {suiteDir}"); return 2; }
        var rng = new Rng(seed);
        var options = new PngDecodeOptions(MaxPixels: 4L * 1024 * 1024);
        int decoded = 0, rejected = 0, other = 0;
        double worstMs = 0; long worstBytes = 0;
        var otherExamples = new List<string>();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < cases; i++)
        {
            var data = Mutate(files[rng.NextInt(files.Length)], rng);
            if (i % 2 == 1) FixCrcs(data);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var t0 = Stopwatch.GetTimestamp();
            try { PngDecoder.Decode(data, options); decoded++; }
            catch (PngFormatException) { rejected++; }
            catch (Exception e)
            {
                other++;
                if (otherExamples.Count < 5) otherExamples.Add($"case {i}: {e.GetType().Name}: {e.Message}");
            }
            worstMs = Math.Max(worstMs, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            worstBytes = Math.Max(worstBytes, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Console.WriteLine($"| cases | decoded | rejected (PngFormatException) | other exceptions | worst ms/case | worst bytes allocated/case | total s |");
        Console.WriteLine($"|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {cases} | {decoded} | {rejected} | {other} | {worstMs:F1} | {worstBytes:N0} | {sw.Elapsed.TotalSeconds:F1} |");
        foreach (var e in otherExamples) Console.WriteLine("  " + e);
        bool ok = other == 0 && worstMs < 1000 && worstBytes < 64L * 1024 * 1024;
        Console.WriteLine(ok ? "PASS" : "FAIL");
        return ok ? 0 : 1;
    }

    private static byte[] Mutate(byte[] src, Rng r)
    {
        var d = new List<byte>(src);
        int n = 1 + r.NextInt(4);
        for (int k = 0; k < n; k++)
        {
            if (d.Count == 0) break;
            int at = r.NextInt(d.Count);
            switch (r.NextInt(8))
            {
                case 0: d[at] ^= (byte)(1 << r.NextInt(8)); break;
                case 1: d[at] = (byte)r.NextInt(256); break;
                case 2: d.InsertRange(at, Enumerable.Range(0, 1 + r.NextInt(16)).Select(_ => (byte)r.NextInt(256))); break;
                case 3: d.RemoveRange(at, Math.Min(d.Count - at, 1 + r.NextInt(16))); break;
                case 4: d.RemoveRange(at, d.Count - at); break;                                       // truncate
                case 5: SetChunkLength(d, r, r.NextInt(2) == 0 ? 0x7FFFFFFF : r.NextInt(1 << 20)); break;
                case 6: SetIhdrSize(d, r); break;
                default: DuplicateChunk(d, r); break;
            }
        }
        return d.ToArray();
    }

    private static List<(int Pos, int Len)> Chunks(List<byte> d)
    {
        var r = new List<(int, int)>();
        int pos = 8;
        while (pos + 12 <= d.Count)
        {
            uint len = (uint)(d[pos] << 24 | d[pos + 1] << 16 | d[pos + 2] << 8 | d[pos + 3]);
            if (len > (uint)(d.Count - pos - 12)) break;
            r.Add((pos, (int)len));
            pos += 12 + (int)len;
        }
        return r;
    }

    private static void SetChunkLength(List<byte> d, Rng r, int value)
    {
        var c = Chunks(d); if (c.Count == 0) return;
        int pos = c[r.NextInt(c.Count)].Pos;
        d[pos] = (byte)(value >> 24); d[pos + 1] = (byte)(value >> 16); d[pos + 2] = (byte)(value >> 8); d[pos + 3] = (byte)value;
    }

    private static void SetIhdrSize(List<byte> d, Rng r)
    {
        if (d.Count < 24) return;
        int[] sizes = [0, 1, 3, 4096, 65535, 1 << 20, int.MaxValue];
        int v = sizes[r.NextInt(sizes.Length)], at = 16 + 4 * r.NextInt(2);
        d[at] = (byte)(v >> 24); d[at + 1] = (byte)(v >> 16); d[at + 2] = (byte)(v >> 8); d[at + 3] = (byte)v;
    }

    private static void DuplicateChunk(List<byte> d, Rng r)
    {
        var c = Chunks(d); if (c.Count == 0) return;
        var (pos, len) = c[r.NextInt(c.Count)];
        var copy = d.GetRange(pos, len + 12);
        var (to, _) = c[r.NextInt(c.Count)];
        d.InsertRange(to, copy);
    }

    /// <summary>Recomputes every chunk's CRC so mutations reach the chunk parsers.</summary>
    private static void FixCrcs(byte[] d)
    {
        int pos = 8;
        while (pos + 12 <= d.Length)
        {
            uint len = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(pos));
            if (len > (uint)(d.Length - pos - 12)) break;
            uint crc = Crc32.Compute(d.AsSpan(pos + 4, 4), d.AsSpan(pos + 8, (int)len));
            BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(pos + 8 + (int)len), crc);
            pos += 12 + (int)len;
        }
    }
}
