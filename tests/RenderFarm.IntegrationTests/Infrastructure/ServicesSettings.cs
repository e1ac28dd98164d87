using System.Reflection;

namespace RenderFarm.IntegrationTests.Infrastructure;

/// <summary>
/// Connection settings of the services <c>deploy/local/services start</c> runs: from the environment when exported,
/// else from <c>.state/services/services.env</c> in the folder holding RenderFarm.sln. A missing setting fails the
/// test (never skips it): these tests exist to run against the real services.
/// </summary>
internal sealed class ServicesSettings
{
    public const string PostgresVariable = "RENDERFARM_POSTGRES";
    public const string RabbitMqVariable = "RENDERFARM_RABBITMQ";
    public const string ManagementVariable = "RENDERFARM_RABBITMQ_MANAGEMENT";
    public const string S3EndpointVariable = "RENDERFARM_S3_ENDPOINT";
    public const string S3AccessKeyVariable = "RENDERFARM_S3_ACCESS_KEY";
    public const string S3SecretKeyVariable = "RENDERFARM_S3_SECRET_KEY";
    public const string S3SecureVariable = "RENDERFARM_S3_SECURE";

    private const string StartHint = "Run `deploy/local/services start` (or export its settings) before the integration tests.";

    private static readonly Lazy<ServicesSettings> Current = new(Load);

    private readonly Dictionary<string, string> _fromFile;
    private readonly string _source;

    private ServicesSettings(Dictionary<string, string> fromFile, string source)
    {
        _fromFile = fromFile;
        _source = source;
    }

    public static ServicesSettings Instance => Current.Value;

    public string Postgres => Require(PostgresVariable);

    public Uri RabbitMq => new(Require(RabbitMqVariable));

    public Uri RabbitMqManagement => new(Require(ManagementVariable));

    public string S3Endpoint => Require(S3EndpointVariable);

    public string S3AccessKey => Require(S3AccessKeyVariable);

    public string S3SecretKey => Require(S3SecretKeyVariable);

    public bool S3Secure => bool.TryParse(Get(S3SecureVariable), out var secure) && secure;

    public string Require(string name) =>
        Get(name) ?? throw new InvalidOperationException($"{name} is not set and not in {_source}. {StartHint}");

    private string? Get(string name)
    {
        var value = Environment.GetEnvironmentVariable(name);
        if (!string.IsNullOrWhiteSpace(value))
            return value;
        return _fromFile.TryGetValue(name, out value) && !string.IsNullOrWhiteSpace(value) ? value : null;
    }

    private static ServicesSettings Load()
    {
        var root = RepositoryRoot.Find();
        var state = Environment.GetEnvironmentVariable("RENDERFARM_STATE")
            ?? (root is null ? null : Path.Combine(root, ".state", "services"));
        var file = state is null ? null : Path.Combine(state, "services.env");

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (file is not null && File.Exists(file))
        {
            // Lines are `export NAME='value'`, as deploy/local/services writes them.
            foreach (var raw in File.ReadAllLines(file))
            {
                var line = raw.Trim();
                if (line.StartsWith("export ", StringComparison.Ordinal))
                    line = line["export ".Length..];
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0 || line.StartsWith('#'))
                    continue;
                values[line[..eq]] = line[(eq + 1)..].Trim('\'', '"');
            }
        }

        return new ServicesSettings(values, file ?? "(no RenderFarm.sln found above the test assembly or its source folder)");
    }
}

internal static class RepositoryRoot
{
    public static string? Find()
    {
        var sourceDirectory = typeof(RepositoryRoot).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "SourceDirectory")?.Value;

        // The build output first (tests run from a copy of the repository), then the source tree the assembly was
        // built from (an --artifacts-path outside the repository).
        foreach (var start in new[] { AppContext.BaseDirectory, sourceDirectory })
        {
            for (var dir = start is null ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "RenderFarm.sln")))
                    return dir.FullName;
            }
        }

        return null;
    }
}
