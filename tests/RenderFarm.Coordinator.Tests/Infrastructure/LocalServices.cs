namespace RenderFarm.Coordinator.Tests.Infrastructure;

/// <summary>
/// Connection settings of the services <c>deploy/local/services start</c> runs: read from the environment when
/// exported there, else from <c>.state/services/services.env</c> under the repository root.
/// </summary>
internal static class LocalServices
{
    public const string PostgresVariable = "RENDERFARM_POSTGRES";

    private static readonly Lazy<IReadOnlyDictionary<string, string>> FromFile = new(ReadFile);

    public static string Postgres => Get(PostgresVariable)
        ?? throw new InvalidOperationException(
            $"{PostgresVariable} is not set and .state/services/services.env has none: run `deploy/local/services start` first (these tests need the real PostgreSQL).");

    public static string? Get(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value
        : FromFile.Value.TryGetValue(name, out var fromFile) ? fromFile : null;

    public static string RepositoryRoot()
    {
        // Recorded at build time, because the binaries may be built outside the repository (--artifacts-path).
        var recorded = typeof(LocalServices).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "RepositoryRoot")?.Value;
        if (recorded is not null && File.Exists(Path.Combine(recorded, "RenderFarm.sln")))
        {
            return Path.GetFullPath(recorded);
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "RenderFarm.sln")))
            {
                return dir.FullName;
            }
        }

        // Built with --artifacts-path outside the repository: fall back to the working directory's ancestors.
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "RenderFarm.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the repository root (the folder with RenderFarm.sln) above the test binaries or the working directory.");
    }

    // Lines are `export NAME='value'`, as deploy/local/services writes them.
    private static Dictionary<string, string> ReadFile()
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        string path;
        try
        {
            path = Path.Combine(RepositoryRoot(), ".state", "services", "services.env");
        }
        catch (InvalidOperationException)
        {
            return values;
        }

        if (!File.Exists(path))
        {
            return values;
        }

        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Trim();
            if (line.StartsWith("export ", StringComparison.Ordinal))
            {
                line = line["export ".Length..];
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            values[line[..eq]] = line[(eq + 1)..].Trim('\'', '"');
        }

        return values;
    }
}
