using System.Text.Json;

namespace RenderFarm.Diffusion.Tests.Randomness;

/// <summary>
/// shared/rng/torch-cpu-randn.json, kept beside the repository (never committed into it), found by walking up from
/// the test binaries.
/// </summary>
internal static class TorchReferenceDraws
{
    private static readonly Lazy<JsonElement> Document = new(Load);

    public static JsonElement Case(string name) => Document.Value.GetProperty(name);

    private static JsonElement Load()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "shared", "rng", "torch-cpu-randn.json");
            if (File.Exists(candidate))
            {
                using var document = JsonDocument.Parse(File.ReadAllText(candidate));
                return document.RootElement.Clone();
            }
        }

        throw new FileNotFoundException(
            $"shared/rng/torch-cpu-randn.json was not found above {AppContext.BaseDirectory}; the tests expect it beside the repository (../shared/rng/).");
    }
}
