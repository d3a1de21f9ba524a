using Pictor.Engine.IO;

namespace Pictor.TestSupport;

/// <summary>Finds tests/fixtures by walking up from the test binary (works from any build folder).</summary>
public static class Fixtures
{
    public static string Dir
    {
        get
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d != null && !Directory.Exists(Path.Combine(d.FullName, "tests", "fixtures"))) d = d.Parent;
            return d == null ? throw new DirectoryNotFoundException("tests/fixtures not found above " + AppContext.BaseDirectory)
                             : Path.Combine(d.FullName, "tests", "fixtures");
        }
    }

    public static SafeTensorsFile Load(string name) => SafeTensorsFile.Read(Path.Combine(Dir, name));
}
