using MassTransit;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Messaging;

namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Renders units placed on this worker process alone, from its own queue (<see cref="QueueNames.WorkerQueue"/>),
/// exactly as <see cref="RenderWorkUnitConsumer"/> renders the shared queue's: it is that consumer, on a second
/// endpoint. Both wait on the same slot pool, whose waiters are served in arrival order, so neither queue starves
/// the other. A type of its own because MassTransit gives each consumer registration one endpoint.
/// </summary>
public sealed class WorkerQueueRenderConsumer(RenderWorkUnitConsumer inner) : IConsumer<RenderWorkUnit>
{
    public Task Consume(ConsumeContext<RenderWorkUnit> context) => inner.Consume(context);
}

/// <summary>
/// Puts <see cref="WorkerQueueRenderConsumer"/> on <see cref="QueueNames.WorkerQueue"/> of this process's id with the
/// render policy of <see cref="RenderWorkPolicy"/>. On RabbitMQ the queue expires <see cref="UnusedQueueExpiry"/>
/// after the process's last consumer goes: it belongs to this process only, and the coordinator sends to the exchange
/// of the same name (<see cref="QueueNames.WorkerQueueAddress"/>), so work sent after the worker vanished is dropped,
/// not stranded, and the coordinator places it again.
/// </summary>
public sealed class WorkerQueueRenderConsumerDefinition : ConsumerDefinition<WorkerQueueRenderConsumer>
{
    /// <summary>How long the queue outlives its last consumer on RabbitMQ (its process gone, or a reconnect that did not come).</summary>
    public static readonly TimeSpan UnusedQueueExpiry = TimeSpan.FromMinutes(1);

    private readonly RenderWorkPolicy _policy;

    public WorkerQueueRenderConsumerDefinition(IOptions<WorkerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _policy = RenderWorkPolicy.From(options.Value);
        EndpointName = QueueNames.WorkerQueue(options.Value.Id);
        ConcurrentMessageLimit = _policy.ConcurrentUnits;
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<WorkerQueueRenderConsumer> consumerConfigurator,
        IRegistrationContext context)
    {
        ArgumentNullException.ThrowIfNull(endpointConfigurator);
        _policy.ConfigureEndpoint(endpointConfigurator);
        // Only work addressed to this process: no binding from the RenderWorkUnit message exchange (a publish is
        // not placement).
        endpointConfigurator.ConfigureConsumeTopology = false;
        if (endpointConfigurator is IRabbitMqReceiveEndpointConfigurator rabbit)
        {
            // Not MassTransit's AutoDelete: it applies to the endpoint's exchange as well, and every sender declares
            // that exchange durable and not auto-delete (QueueNames.WorkerQueueAddress), so a sender's channel would
            // fail on the mismatch. RabbitMQ's queue expiry deletes the queue alone once no consumer has used it
            // for UnusedQueueExpiry, and unlike auto-delete it survives a reconnect within that time.
            rabbit.SetQueueArgument("x-expires", (int)UnusedQueueExpiry.TotalMilliseconds);
        }
    }
}
