using MassTransit;

namespace RenderFarm.Worker.Heartbeats;

/// <summary>
/// Where this process is in its life: whether the bus is up, whether it is draining (no new work, current items
/// finishing), and a nudge for an immediate heartbeat when that changes.
/// </summary>
public sealed class WorkerLifecycle
{
    private readonly TaskCompletionSource _busStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _busStopped = new();
    private readonly SemaphoreSlim _beat = new(0, 1);
    private volatile bool _draining;

    /// <summary>True from the first sign of shutdown (SIGTERM or the bus stopping) on.</summary>
    public bool IsDraining => _draining;

    /// <summary>Completes when the bus can publish.</summary>
    public Task BusStarted => _busStarted.Task;

    /// <summary>Canceled once the bus has stopped and nothing more can be published.</summary>
    public CancellationToken BusStopped => _busStopped.Token;

    /// <summary>Stops taking work; heartbeats switch to Draining at once.</summary>
    public void BeginDraining()
    {
        if (!_draining)
        {
            _draining = true;
            RequestHeartbeat();
        }
    }

    /// <summary>Asks the heartbeat loop to beat now rather than at its next tick.</summary>
    public void RequestHeartbeat()
    {
        if (_beat.CurrentCount == 0)
        {
            try
            {
                _beat.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another caller asked in the same instant; one beat answers both.
            }
        }
    }

    /// <summary>Waits for <paramref name="delay"/> or for a requested heartbeat, whichever comes first.</summary>
    internal Task WaitForNextBeatAsync(TimeSpan delay, CancellationToken cancellationToken) =>
        _beat.WaitAsync(delay, cancellationToken);

    internal void OnBusStarted() => _busStarted.TrySetResult();

    internal void OnBusStopped()
    {
        _draining = true;
        _busStarted.TrySetResult();
        _busStopped.Cancel();
    }

    /// <summary>Feeds the bus's life cycle into <see cref="WorkerLifecycle"/>.</summary>
    internal sealed class BusObserver(WorkerLifecycle lifecycle) : IBusObserver
    {
        public void PostCreate(IBus bus)
        {
        }

        public void CreateFaulted(Exception exception)
        {
        }

        public Task PreStart(IBus bus) => Task.CompletedTask;

        public Task PostStart(IBus bus, Task<BusReady> busReady)
        {
            lifecycle.OnBusStarted();
            return Task.CompletedTask;
        }

        public Task StartFaulted(IBus bus, Exception exception) => Task.CompletedTask;

        public Task PreStop(IBus bus)
        {
            lifecycle.BeginDraining();
            return Task.CompletedTask;
        }

        public Task PostStop(IBus bus)
        {
            lifecycle.OnBusStopped();
            return Task.CompletedTask;
        }

        public Task StopFaulted(IBus bus, Exception exception)
        {
            lifecycle.OnBusStopped();
            return Task.CompletedTask;
        }
    }
}
