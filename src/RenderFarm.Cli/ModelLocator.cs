using RenderFarm.ModelGenerator;

namespace RenderFarm.Cli;

/// <summary>Where models live when the user names none: the tiny model, generated on first use, so a fresh machine renders with no download.</summary>
internal static class ModelLocator
{
    public const string TinyModelName = "tiny-sd";

    /// <summary><c>$RENDERFARM_HOME</c>, else <c>~/.cache/renderfarm</c>.</summary>
    public static string Home
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable("RENDERFARM_HOME");
            if (!string.IsNullOrWhiteSpace(configured))
            {
                return configured;
            }

            var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrWhiteSpace(cache))
            {
                cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            }

            return Path.Combine(cache, "renderfarm");
        }
    }

    /// <summary>
    /// The folder to load: <paramref name="modelOption"/> when given, else the tiny model (generated if missing) with
    /// its shipped memory profile beside it, so <c>renderfarm plan</c> works on a fresh install.
    /// </summary>
    public static string Resolve(string? modelOption) =>
        string.IsNullOrWhiteSpace(modelOption)
            ? TestModels.EnsureTiny(Path.Combine(Home, "models", TinyModelName), memoryProfile: true)
            : modelOption;
}
