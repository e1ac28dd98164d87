using RenderFarm.Testing;

namespace RenderFarm.Worker.Tests;

/// <summary>The settings of the services <c>deploy/local/services start</c> runs that the worker's tests use.</summary>
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

    /// <summary>The settings that have a value, or a failure that says how to start the services.</summary>
    public static IReadOnlyDictionary<string, string> Load()
    {
        LocalServiceSettings.Require(RabbitMq);
        LocalServiceSettings.Require(S3Endpoint);

        var settings = new Dictionary<string, string>();
        foreach (var name in Names)
        {
            if (LocalServiceSettings.Get(name) is { } value)
            {
                settings[name] = value;
            }
        }

        return settings;
    }
}
