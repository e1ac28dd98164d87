using RenderFarm.Testing;

namespace RenderFarm.IntegrationTests.Infrastructure;

/// <summary>The settings of the services <c>deploy/local/services start</c> runs, typed as the farm's hosts take them.</summary>
internal sealed class ServicesSettings
{
    public const string PostgresVariable = "RENDERFARM_POSTGRES";
    public const string RabbitMqVariable = "RENDERFARM_RABBITMQ";
    public const string ManagementVariable = "RENDERFARM_RABBITMQ_MANAGEMENT";
    public const string S3EndpointVariable = "RENDERFARM_S3_ENDPOINT";
    public const string S3AccessKeyVariable = "RENDERFARM_S3_ACCESS_KEY";
    public const string S3SecretKeyVariable = "RENDERFARM_S3_SECRET_KEY";
    public const string S3SecureVariable = "RENDERFARM_S3_SECURE";

    private ServicesSettings()
    {
    }

    public static ServicesSettings Instance { get; } = new();

    public string Postgres => LocalServiceSettings.Require(PostgresVariable);

    public Uri RabbitMq => new(LocalServiceSettings.Require(RabbitMqVariable));

    public Uri RabbitMqManagement => new(LocalServiceSettings.Require(ManagementVariable));

    public string S3Endpoint => LocalServiceSettings.Require(S3EndpointVariable);

    public string S3AccessKey => LocalServiceSettings.Require(S3AccessKeyVariable);

    public string S3SecretKey => LocalServiceSettings.Require(S3SecretKeyVariable);

    public bool S3Secure => bool.TryParse(LocalServiceSettings.Get(S3SecureVariable), out var secure) && secure;
}
