using MassTransit;
using Microsoft.Extensions.Options;
using RenderFarm.Messaging;

namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Every policy for render work, in one place: how many units run at once, how many the broker may push ahead,
/// how a unit is retried, how long a batch may take, how items are batched, and how often progress and previews are sent.
/// </summary>
/// <param name="ConcurrentUnits">Units rendered at once: one per slot, so every delivery finds a slot free.</param>
/// <param name="PrefetchCount">
/// Units the broker hands this worker ahead of acknowledgement. Equal to the slots: a worker holds only work it can
/// start now, and a unit queued behind a busy worker stays available to an idle one.
/// </param>
/// <param name="RetryIntervals">
/// In-process redeliveries of a unit whose handling threw (broker or storage faults outside an item). Render
/// faults never throw: they become <c>ItemFailed</c>, and the coordinator owns item retries and backoff.
/// </param>
/// <param name="RenderTimeout">A batch still rendering after this fails its items as retryable.</param>
/// <param name="MaxBatchSize">Items of one unit with equal settings denoised together, at most.</param>
/// <param name="MinProgressInterval">Least time between two progress events of an item, besides its first and last step.</param>
/// <param name="PreviewInterval">Least time between two previews of an item; null when previews are off.</param>
/// <param name="UnitReports">Starts and images reported per unit or per item (<see cref="WorkerOptions.UnitReports"/>).</param>
/// <param name="ReportWindow">Longest a per-unit image report is held (<see cref="WorkerOptions.ReportWindow"/>); zero sends each alone.</param>
public sealed record RenderWorkPolicy(
    int ConcurrentUnits,
    int PrefetchCount,
    IReadOnlyList<TimeSpan> RetryIntervals,
    TimeSpan RenderTimeout,
    int MaxBatchSize,
    TimeSpan MinProgressInterval,
    TimeSpan? PreviewInterval = null,
    UnitReportMode UnitReports = UnitReportMode.PerUnit,
    TimeSpan ReportWindow = default)
{
    /// <summary>Short: a retry re-renders the unit's finished items too, so it only covers a blip.</summary>
    public static IReadOnlyList<TimeSpan> DefaultRetryIntervals { get; } = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)];

    public static RenderWorkPolicy From(WorkerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new RenderWorkPolicy(
            ConcurrentUnits: options.Slots,
            PrefetchCount: options.Slots,
            RetryIntervals: DefaultRetryIntervals,
            RenderTimeout: options.RenderTimeout,
            MaxBatchSize: options.MaxBatchSize,
            MinProgressInterval: TimeSpan.FromSeconds(1 / options.ProgressEventsPerSecond),
            PreviewInterval: options.PreviewInterval > TimeSpan.Zero ? options.PreviewInterval : null,
            UnitReports: options.UnitReports,
            ReportWindow: options.ReportWindow);
    }

    /// <summary>Prefetch, concurrency and retry of a render endpoint; every endpoint of render work gets the same.</summary>
    public void ConfigureEndpoint(IReceiveEndpointConfigurator endpointConfigurator)
    {
        ArgumentNullException.ThrowIfNull(endpointConfigurator);
        endpointConfigurator.PrefetchCount = PrefetchCount;
        endpointConfigurator.ConcurrentMessageLimit = ConcurrentUnits;
        endpointConfigurator.UseMessageRetry(retry =>
        {
            retry.Intervals([.. RetryIntervals]);
            // Shutdown past the grace or a canceled job: back to the broker (or done), never a retry here.
            retry.Ignore<OperationCanceledException>();
        });
    }
}

/// <summary>
/// Puts <see cref="RenderWorkUnitConsumer"/> on the shared render queue (<see cref="QueueNames.Render"/>) with the
/// limits of <see cref="RenderWorkPolicy"/>.
/// </summary>
public sealed class RenderWorkUnitConsumerDefinition : ConsumerDefinition<RenderWorkUnitConsumer>
{
    private readonly RenderWorkPolicy _policy;

    public RenderWorkUnitConsumerDefinition(IOptions<WorkerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _policy = RenderWorkPolicy.From(options.Value);
        EndpointName = QueueNames.Render;
        ConcurrentMessageLimit = _policy.ConcurrentUnits;
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<RenderWorkUnitConsumer> consumerConfigurator,
        IRegistrationContext context)
    {
        _policy.ConfigureEndpoint(endpointConfigurator);
    }
}
