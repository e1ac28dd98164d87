using System.Reflection;

namespace RenderFarm.Storage.Tests;

/// <summary>
/// The S3 settings of the services that <c>deploy/local/services start</c> runs: from the environment
/// (RENDERFARM_S3_*), else from the services.env file it writes. Missing settings fail the test: an S3 suite that
/// skips silently would pass on a machine where nothing was tested.
/// </summary>
internal static class LocalServices
{
    private static readonly Lazy<IReadOnlyDictionary<string, string>> Settings = new(Load);

    public static StorageOptions S3Options() => new()
    {
        Provider = StorageProvider.S3,
        Endpoint = Require("RENDERFARM_S3_ENDPOINT"),
        AccessKey = Require("RENDERFARM_S3_ACCESS_KEY"),
        SecretKey = Require("RENDERFARM_S3_SECRET_KEY"),
        Bucket = Require("RENDERFARM_S3_BUCKET"),
        Secure = bool.Parse(Require("RENDERFARM_S3_SECURE")),
    };

    private static string Require(string name) =>
        Settings.Value.TryGetValue(name, out var value) && value.Length > 0
            ? value
            : throw new InvalidOperationException($"{name} is missing from the S3 settings ({Describe()}).");

    private static Dictionary<string, string> Load()
    {
        if (Environment.GetEnvironmentVariable("RENDERFARM_S3_ENDPOINT") is { Length: > 0 })
        {
            return Environment.GetEnvironmentVariables().Keys.Cast<string>()
                .Where(k => k.StartsWith("RENDERFARM_", StringComparison.Ordinal))
                .ToDictionary(k => k, k => Environment.GetEnvironmentVariable(k) ?? string.Empty, StringComparer.Ordinal);
        }

        var file = ServicesEnvPath();
        if (file is null || !File.Exists(file))
        {
            throw new InvalidOperationException(
                "No S3 settings: RENDERFARM_S3_ENDPOINT is not set and " + (file ?? ".state/services/services.env (repository root not found)")
                + " does not exist. Run `deploy/local/services start` in the repository first.");
        }

        return ParseEnvFile(file);
    }

    private static string Describe() =>
        Environment.GetEnvironmentVariable("RENDERFARM_S3_ENDPOINT") is { Length: > 0 } ? "environment" : ServicesEnvPath() ?? "?";

    private static string? ServicesEnvPath()
    {
        if (Environment.GetEnvironmentVariable("RENDERFARM_STATE") is { Length: > 0 } state)
        {
            return Path.Combine(state, "services.env");
        }

        var projectDirectory = typeof(LocalServices).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "RenderFarm.ProjectDirectory")?.Value;
        string?[] starts = [AppContext.BaseDirectory, projectDirectory, Environment.CurrentDirectory];
        foreach (var start in starts.OfType<string>())
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "RenderFarm.sln")))
                {
                    return Path.Combine(dir.FullName, ".state", "services", "services.env");
                }
            }
        }

        return null;
    }

    /// <summary>Reads <c>export NAME='value'</c> lines, the format deploy/local/services writes.</summary>
    internal static Dictionary<string, string> ParseEnvFile(string path)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            if (line.StartsWith("export ", StringComparison.Ordinal))
            {
                line = line["export ".Length..].TrimStart();
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            var value = line[(eq + 1)..];
            if (value.Length >= 2 && (value[0] == '\'' || value[0] == '"') && value[^1] == value[0])
            {
                value = value[1..^1];
            }

            values[line[..eq]] = value;
        }

        return values;
    }
}
