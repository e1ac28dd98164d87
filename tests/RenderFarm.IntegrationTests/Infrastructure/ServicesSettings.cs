using RenderFarm.Testing;

namespace RenderFarm.IntegrationTests.Infrastructure;

/// <summary>
/// The settings of services <c>deploy/local/services start</c> runs, typed as the farm's hosts take them: by default the
/// shared instance (<see cref="Instance"/>), or a test's own instance (<see cref="From"/>, the fault tests').
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

    private readonly Func<string, string> _require;
    private readonly Func<string, string?> _get;

    private ServicesSettings(Func<string, string> require, Func<string, string?> get)
    {
        _require = require;
        _get = get;
    }

    public static ServicesSettings Instance { get; } = new(LocalServiceSettings.Require, LocalServiceSettings.Get);

    /// <summary>Settings read from the export lines one instance's <c>start</c> printed.</summary>
    public static ServicesSettings From(IReadOnlyDictionary<string, string> values) => new(
        name => values.TryGetValue(name, out var value) ? value : throw new InvalidOperationException($"The services' settings have no {name}."),
        name => values.GetValueOrDefault(name));

    public string Postgres => _require(PostgresVariable);

    public Uri RabbitMq => new(_require(RabbitMqVariable));

    public Uri RabbitMqManagement => new(_require(ManagementVariable));

    public string S3Endpoint => _require(S3EndpointVariable);

    public string S3AccessKey => _require(S3AccessKeyVariable);

    public string S3SecretKey => _require(S3SecretKeyVariable);

    public bool S3Secure => bool.TryParse(_get(S3SecureVariable), out var secure) && secure;
}
