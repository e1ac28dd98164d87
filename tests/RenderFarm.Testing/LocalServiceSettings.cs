using System.Runtime.CompilerServices;

namespace RenderFarm.Testing;

/// <summary>
/// Connection settings of the services <c>deploy/local/services start</c> runs (RENDERFARM_POSTGRES, RENDERFARM_RABBITMQ,
/// RENDERFARM_S3_ENDPOINT, ...). A variable set in the environment wins; otherwise the value comes from the services.env
/// file that script writes: <c>$RENDERFARM_STATE/services.env</c>, by default <c>.state/services/services.env</c> in the
/// repository. A missing setting fails the test, never skips it: these suites exist to run against the real services,
/// and one that skipped would pass on a machine where nothing was tested.
/// </summary>
public static class LocalServiceSettings
{
    private const string StartHint =
        "Run `deploy/local/services start` in the repository first (it writes that file), or export the settings it prints.";

    private static readonly Lazy<string?> EnvFile = new(FindEnvFile);

    private static readonly Lazy<IReadOnlyDictionary<string, string>> FromFile = new(() =>
        EnvFile.Value is { } file && File.Exists(file) ? ParseEnvFile(file) : new Dictionary<string, string>());

    /// <summary>The setting, or null when neither the environment nor services.env has a value for it.</summary>
    public static string? Get(string name)
    {
        var value = Environment.GetEnvironmentVariable(name);
        if (!string.IsNullOrWhiteSpace(value))
        {
            return value;
        }

        return FromFile.Value.TryGetValue(name, out value) && !string.IsNullOrWhiteSpace(value) ? value : null;
    }

    /// <summary>The setting, or an <see cref="InvalidOperationException"/> that says where it was looked for and how to start the services.</summary>
    public static string Require(string name) => Get(name) ?? throw new InvalidOperationException(EnvFile.Value switch
    {
        null => $"{name} is not set, and there is no services.env to read it from: RENDERFARM_STATE is not set and no RenderFarm.sln "
            + $"lies above the test binaries, the working directory or the test sources. {StartHint}",
        var file when !File.Exists(file) => $"{name} is not set, and {file} does not exist. {StartHint}",
        var file => $"{name} is not set, and {file} does not have it. {StartHint}",
    });

    /// <summary>The folder holding RenderFarm.sln, or null when none lies above any of the places looked from.</summary>
    public static string? FindRepositoryRoot()
    {
        // The build output first, then the working directory and this file's own source folder: with an artifacts path
        // outside the repository the binaries have no repository above them.
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory, SourceDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "RenderFarm.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    }

    /// <summary>Reads <c>export NAME='value'</c> lines, the format deploy/local/services writes.</summary>
    public static IReadOnlyDictionary<string, string> ParseEnvFile(string path)
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

    // The same folder deploy/local/services writes to: RENDERFARM_STATE when set, else .state/services in the repository.
    private static string? FindEnvFile()
    {
        if (Environment.GetEnvironmentVariable("RENDERFARM_STATE") is { Length: > 0 } state)
        {
            return Path.Combine(state, "services.env");
        }

        return FindRepositoryRoot() is { } root ? Path.Combine(root, ".state", "services", "services.env") : null;
    }

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path) ?? ".";
}
