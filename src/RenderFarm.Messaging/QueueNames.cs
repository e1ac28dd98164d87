namespace RenderFarm.Messaging;

/// <summary>
/// Queue names the hosts agree on. Everything else is named by <c>ConfigureEndpoints</c> from the consumer
/// type (kebab case with the <see cref="Prefix"/>), so only queues that one host sends to and another
/// consumes from need a constant here.
/// </summary>
/// <remarks>
/// Routing in short: the coordinator <em>sends</em> <c>RenderWorkUnit</c> and <c>CancelJob</c> commands;
/// workers <em>publish</em> events (<c>ItemStarted</c> or a unit's <c>ItemsStarted</c>, <c>ItemProgressed</c>, <c>ItemPreviewed</c>,
/// <c>ItemRendered</c> or gathered <c>ItemsRendered</c>, <c>ItemFailed</c>, <c>WorkerHeartbeat</c>), which reach the coordinator's consumer endpoints through the
/// exchanges named by <c>MessageNames</c>. Workers never need to know a coordinator queue name.
/// </remarks>
public static class QueueNames
{
    /// <summary>Prefix of every queue the farm declares, so the farm's queues stand apart on a shared broker.</summary>
    public const string Prefix = "renderfarm";

    /// <summary>
    /// The queue every worker competes on for <c>RenderWorkUnit</c>s. A worker's render consumer is
    /// configured on this endpoint name; the coordinator sends to <see cref="RenderAddress"/>.
    /// </summary>
    public const string Render = Prefix + "-render";

    /// <summary>Send address of <see cref="Render"/>, transport-neutral (MassTransit's <c>queue:</c> short address).</summary>
    public static Uri RenderAddress { get; } = QueueAddress(Render);

    /// <summary>
    /// The queue of work placed on one worker process alone (items only some workers can take). Each worker
    /// process consumes its own besides <see cref="Render"/>; it names it in its heartbeats, and the coordinator
    /// sends to <see cref="WorkerQueueAddress"/>.
    /// </summary>
    /// <param name="workerId">The worker process's id; characters a queue name cannot hold become '-'.</param>
    public static string WorkerQueue(string workerId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(workerId);
        var safe = new char[workerId.Length];
        for (var i = 0; i < workerId.Length; i++)
        {
            var c = workerId[i];
            safe[i] = char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-';
        }

        return Render + "-" + new string(safe);
    }

    /// <summary>
    /// Send address of a worker's own queue, through the exchange of the same name: when the worker is gone the
    /// exchange has no queue bound and the message is dropped rather than stranded in a queue nobody reads; the
    /// coordinator's placement then sends the item elsewhere (it tracks what it placed, see the README).
    /// </summary>
    public static Uri WorkerQueueAddress(string queueName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(queueName);
        return new Uri("exchange:" + queueName);
    }

    /// <summary>The transport-neutral send address of a queue, for <c>ISendEndpointProvider.GetSendEndpoint</c>.</summary>
    /// <param name="queueName">A queue name, such as <see cref="Render"/>.</param>
    public static Uri QueueAddress(string queueName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(queueName);
        return new Uri("queue:" + queueName);
    }
}
