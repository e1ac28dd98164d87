using MassTransit;

namespace RenderFarm.Messaging;

/// <summary>
/// The farm's one default retry policy, applied to every receive endpoint by <see cref="BusServiceCollectionExtensions.AddRenderFarmBus"/>.
/// </summary>
/// <remarks>
/// A consumer definition that configures its own <c>UseMessageRetry</c> overrides this for its consumer:
/// MassTransit uses the retry policy closest to the exception, and an outer policy does not retry again what
/// an inner one already handled. Permanent failures (bad input, a model missing everywhere) should be reported
/// as <c>ItemFailed</c> with <c>Retryable = false</c> rather than thrown.
/// </remarks>
public static class RetryDefaults
{
    /// <summary>Waits between in-process redeliveries: short enough to ride out a broker or storage blip, few enough not to stall a queue.</summary>
    public static IReadOnlyList<TimeSpan> Intervals { get; } =
    [
        TimeSpan.FromMilliseconds(200),
        TimeSpan.FromSeconds(1),
        TimeSpan.FromSeconds(5),
    ];

    /// <summary>Applies the default policy to a retry configurator.</summary>
    /// <param name="retry">The configurator given by <c>UseMessageRetry</c>.</param>
    public static void Apply(IRetryConfigurator retry)
    {
        ArgumentNullException.ThrowIfNull(retry);
        retry.Intervals([.. Intervals]);
        // Cancellation is the consumer being told to stop (shutdown, job canceled), not a fault to retry here;
        // the message goes back to the broker and is redelivered elsewhere.
        retry.Ignore<OperationCanceledException>();
    }
}
