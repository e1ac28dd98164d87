using MassTransit;

namespace RenderFarm.Coordinator.Consumers;

/// <summary>
/// When a coordinator consumer last failed because the database could not be reached (observed on the consumers'
/// <see cref="DatabaseOutageRetry"/>). The lease rescuer reads it: while heartbeats and completions are still being
/// retried, a lease that looks lapsed may only be a report that has not landed yet.
/// </summary>
/// <remarks>
/// Why the consumers' failures and not only the rescuer's own: after PostgreSQL restarted, the rescuer's fresh
/// connection worked at once while consumers went on failing for a while (a pool's worth of dead connections, each
/// found on use, with up to 10 s between tries), and the rescuer lapsed items whose images were waiting in those retries.
/// </remarks>
internal sealed class DatabaseOutageWatch(TimeProvider clock) : IRetryObserver
{
    private long _lastFailureTicks;

    /// <summary>The last such failure, or null if none since this coordinator started.</summary>
    public DateTimeOffset? LastFailureAt =>
        Interlocked.Read(ref _lastFailureTicks) is var ticks and > 0 ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;

    public void Failed() => Interlocked.Exchange(ref _lastFailureTicks, clock.GetUtcNow().UtcTicks);

    // The retry calls PostFault for every failure it will retry and RetryFault when it gives up: both are failures the
    // retry's filter accepted, which is only the database being unreachable.
    public Task PostFault<T>(RetryContext<T> context)
        where T : class, PipeContext
    {
        Failed();
        return Task.CompletedTask;
    }

    public Task RetryFault<T>(RetryContext<T> context)
        where T : class, PipeContext
    {
        Failed();
        return Task.CompletedTask;
    }

    public Task PostCreate<T>(RetryPolicyContext<T> context)
        where T : class, PipeContext => Task.CompletedTask;

    public Task PreRetry<T>(RetryContext<T> context)
        where T : class, PipeContext => Task.CompletedTask;

    public Task RetryComplete<T>(RetryContext<T> context)
        where T : class, PipeContext => Task.CompletedTask;
}
