using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Worker.Cancellation;

namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Stops this worker's running items of a canceled job between denoising steps, and makes queued units of the
/// job finish without rendering. Nothing further is published for those items: the coordinator already marked
/// them canceled when it published <see cref="JobCanceled"/>.
/// </summary>
public sealed partial class JobCanceledConsumer(JobCancellations cancellations, ILogger<JobCanceledConsumer> logger) : IConsumer<JobCanceled>
{
    public Task Consume(ConsumeContext<JobCanceled> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        cancellations.Cancel(context.Message.JobId, context.Message.CanceledAt);
        LogCanceled(context.Message.JobId);
        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} canceled; stopping its items")]
    private partial void LogCanceled(Guid jobId);
}

/// <summary>
/// Every worker process must hear every cancel, so each gets its own temporary (auto-deleted) queue bound to the
/// event, named after its worker id, instead of competing on a shared one.
/// </summary>
public sealed class JobCanceledConsumerDefinition : ConsumerDefinition<JobCanceledConsumer>
{
    public JobCanceledConsumerDefinition(IOptions<WorkerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var instanceId = options.Value.Id;
        Endpoint(e =>
        {
            e.InstanceId = instanceId;
            e.Temporary = true;
        });
    }
}
