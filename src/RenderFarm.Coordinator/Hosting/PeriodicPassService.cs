namespace RenderFarm.Coordinator.Hosting;

/// <summary>
/// A background service that runs a pass when the host starts and then on every tick of <see cref="Interval"/>: a
/// failed pass is reported and the next tick tries again, and shutdown ends the loop without an error. The ticker runs
/// on the injected <see cref="TimeProvider"/>, so tests advance it instead of waiting.
/// </summary>
internal abstract class PeriodicPassService(TimeProvider clock) : BackgroundService
{
    protected TimeProvider Clock { get; } = clock;

    protected abstract TimeSpan Interval { get; }

    /// <summary>One pass; its own logging says what it did.</summary>
    protected abstract Task PassAsync(CancellationToken cancellationToken);

    /// <summary>Reports a pass that threw; the service keeps running.</summary>
    protected abstract void PassFailed(Exception exception);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, Clock);
        do
        {
            try
            {
                await PassAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                PassFailed(ex);
            }
        }
        while (await NextTickAsync(timer, stoppingToken));
    }

    private static async Task<bool> NextTickAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
