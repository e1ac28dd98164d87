namespace RenderFarm.Worker.Tests;

/// <summary>
/// Connection settings of the services <c>deploy/local/services start</c> runs: from the environment, else from
/// <c>.state/services/services.env</c> in the repository (found by walking up to RenderFarm.sln).
/// </summary>
internal static class ServiceSettings
{
    public const string RabbitMq = "RENDERFARM_RABBITMQ";
    public const string RabbitMqManagement = "RENDERFARM_RABBITMQ_MANAGEMENT";
    public const string S3Endpoint = "RENDERFARM_S3_ENDPOINT";

    private static readonly string[] Names =
    [
        RabbitMq, RabbitMqManagement, S3Endpoint,
        "RENDERFARM_S3_ACCESS_KEY", "RENDERFARM_S3_SECRET_KEY", "RENDERFARM_S3_BUCKET", "RENDERFARM_S3_SECURE",
    ];

    /// <summary>The settings, or a failure that says how to start the services.</summary>
    public static IReadOnlyDictionary<string, string> Load()
    {
        var settings = new Dictionary<string, string>();
        var file = FindEnvFile();
        if (file is not null)
        {
            foreach (var line in File.ReadLines(file))
            {
                var text = line.Trim();
                if (text.StartsWith("export ", StringComparison.Ordinal))
                {
                    text = text["export ".Length..];
                }

                var equals = text.IndexOf('=', StringComparison.Ordinal);
                if (equals > 0)
                {
                    settings[text[..equals]] = text[(equals + 1)..].Trim('\'', '"');
                }
            }
        }

        foreach (var name in Names)
        {
            if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } value)
            {
                settings[name] = value;
            }
        }

        if (!settings.ContainsKey(RabbitMq) || !settings.ContainsKey(S3Endpoint))
        {
            Assert.Fail($"{RabbitMq} and {S3Endpoint} are not set and no services.env was found ({file ?? "no repository root"}). " +
                "Run `deploy/local/services start` (from the repository root) and try again.");
        }

        return settings;
    }

    private static string? FindEnvFile()
    {
        // The output folder may lie outside the repository (--artifacts-path), so the source file's own location is
        // tried as well.
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory(), SourceDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "RenderFarm.sln")))
                {
                    var env = Path.Combine(dir.FullName, ".state", "services", "services.env");
                    return File.Exists(env) ? env : null;
                }
            }
        }

        return null;
    }

    private static string SourceDirectory([System.Runtime.CompilerServices.CallerFilePath] string path = "") =>
        Path.GetDirectoryName(path) ?? ".";
}
