namespace RenderFarm.Coordinator.Dispatch;

/// <summary>
/// Wakes the dispatcher when this process wrote outbox rows, so a submission is sent at once instead of at the
/// next poll. Rows written by other coordinators are found by polling.
/// </summary>
internal sealed class OutboxSignal
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Notify()
    {
        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled; one wake-up drains everything that is due.
        }
    }

    /// <summary>Waits for a notification or the timeout, whichever comes first.</summary>
    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _signal.WaitAsync(timeout, cancellationToken);
}
