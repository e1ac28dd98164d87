using Microsoft.Extensions.Options;

namespace RenderFarm.Messaging;

/// <summary>Which transport carries the farm's messages.</summary>
public enum BusTransport
{
    /// <summary>RabbitMQ: the distributed farm, coordinator and workers in separate processes.</summary>
    RabbitMq,

    /// <summary>MassTransit's in-memory transport: the embedded single-process farm (<c>renderfarm serve</c>).</summary>
    InMemory,
}

/// <summary>Bus settings shared by every host, bound from the <c>Bus</c> configuration section.</summary>
public sealed class BusOptions
{
    /// <summary>Configuration section the options bind from.</summary>
    public const string SectionName = "Bus";

    /// <summary>
    /// Environment variable (also read as a configuration key) that supplies <see cref="RabbitMq"/> when the
    /// section leaves it unset; <c>deploy/local/services start</c> exports it.
    /// </summary>
    public const string RabbitMqEnvironmentVariable = "RENDERFARM_RABBITMQ";

    /// <summary>
    /// Environment variable (also read as a configuration key) that supplies <see cref="RabbitMqManagement"/> when the
    /// section leaves it unset; <c>deploy/local/services start</c> exports it.
    /// </summary>
    public const string RabbitMqManagementEnvironmentVariable = "RENDERFARM_RABBITMQ_MANAGEMENT";

    /// <summary>Messages taken from the broker ahead of processing per receive endpoint, unless the endpoint overrides it.</summary>
    public const int DefaultPrefetchCount = 16;

    /// <summary>The transport; RabbitMQ unless the host runs the embedded farm.</summary>
    public BusTransport Transport { get; set; } = BusTransport.RabbitMq;

    /// <summary>RabbitMQ connection URI, e.g. <c>amqp://guest:guest@127.0.0.1:55672/</c>; required for <see cref="BusTransport.RabbitMq"/>.</summary>
    public Uri? RabbitMq { get; set; }

    /// <summary>
    /// RabbitMQ's management HTTP API, e.g. <c>http://127.0.0.1:55673/</c>: the coordinator reads and replays dead letters
    /// through it (with the credentials of <see cref="RabbitMq"/>). Optional; without it dead letters are not shown.
    /// </summary>
    public Uri? RabbitMqManagement { get; set; }

    /// <summary>
    /// Default prefetch for every receive endpoint. Event endpoints on the coordinator benefit from a deep
    /// prefetch; the render queue sets its own (a worker should hold only the work it can start).
    /// </summary>
    public int PrefetchCount { get; set; } = DefaultPrefetchCount;
}

internal sealed class BusOptionsValidator : IValidateOptions<BusOptions>
{
    public ValidateOptionsResult Validate(string? name, BusOptions options)
    {
        var failures = new List<string>();

        if (!Enum.IsDefined(options.Transport))
            failures.Add($"{BusOptions.SectionName}:{nameof(BusOptions.Transport)} must be one of {string.Join(", ", Enum.GetNames<BusTransport>())}.");

        if (options.Transport == BusTransport.RabbitMq)
        {
            if (options.RabbitMq is null)
            {
                failures.Add($"{BusOptions.SectionName}:{nameof(BusOptions.RabbitMq)} (or {BusOptions.RabbitMqEnvironmentVariable}) is required when the transport is RabbitMq; "
                    + "run `deploy/local/services start` for a local broker.");
            }
            else if (!options.RabbitMq.IsAbsoluteUri
                || options.RabbitMq.Scheme is not ("amqp" or "amqps" or "rabbitmq" or "rabbitmqs")
                || string.IsNullOrEmpty(options.RabbitMq.Host))
            {
                failures.Add($"{BusOptions.SectionName}:{nameof(BusOptions.RabbitMq)} must be an absolute amqp:// or amqps:// URI with a host, got '{options.RabbitMq}'.");
            }
        }

        if (options.PrefetchCount is < 1 or > 10_000)
            failures.Add($"{BusOptions.SectionName}:{nameof(BusOptions.PrefetchCount)} must be between 1 and 10000, got {options.PrefetchCount}.");

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
