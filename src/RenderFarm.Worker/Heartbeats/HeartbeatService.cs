using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RenderFarm.Worker.Slots;

namespace RenderFarm.Worker.Heartbeats;

/// <summary>
/// Warms every slot up, then heartbeats each slot every <see cref="WorkerOptions.HeartbeatInterval"/> (at once when
/// the state changes). The loop outlives the host's stop signal and ends only when the bus has stopped: items
/// that finish during a drain still need their leases renewed, whatever order the hosted services stop in.
/// </summary>
internal sealed partial class HeartbeatService(
    WorkerSlotPool pool,
    HeartbeatPublisher publisher,
    WorkerLifecycle lifecycle,
    IBus bus,
    IHostApplicationLifetime hostLifetime,
    IOptions<WorkerOptions> options,
    ILogger<HeartbeatService> logger) : BackgroundService
{
    private readonly CancellationTokenSource _disposed = new();
    private Task? _loop;

    // Only the loop reads and writes it.
    private DateTimeOffset? _brokerUnreachableSince;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        hostLifetime.ApplicationStopping.Register(lifecycle.BeginDraining);
        return base.StartAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Deliberately not tied to stoppingToken (see the class summary); Dispose ends it if the bus never stops.
        _loop = RunAsync(_disposed.Token);
        return _loop;
    }

    public override Task StopAsync(CancellationToken cancellationToken)
    {
        lifecycle.BeginDraining();
        return Task.CompletedTask;
    }

    public override void Dispose()
    {
        _disposed.Cancel();
        _disposed.Dispose();
        base.Dispose();
    }

    private async Task RunAsync(CancellationToken disposed)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(disposed, lifecycle.BusStopped);
        try
        {
            await lifecycle.BusStarted.WaitAsync(stop.Token);
            var warmUp = WarmUpAsync(stop.Token);
            while (!stop.IsCancellationRequested)
            {
                await BeatAsync(stop.Token);
                await lifecycle.WaitForNextBeatAsync(options.Value.HeartbeatInterval, stop.Token);
            }

            await warmUp;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The bus stopped or the host is disposing: nothing more can be sent.
        }
    }

    private async Task BeatAsync(CancellationToken stop)
    {
        foreach (var slot in pool.Slots)
        {
            // A publish may wait on a broker connection that is being re-established; bounded, so one lost beat
            // never holds up the next.
            using var beat = CancellationTokenSource.CreateLinkedTokenSource(stop);
            beat.CancelAfter(PublishTimeout(options.Value.HeartbeatInterval));
            try
            {
                await publisher.PublishAsync(slot, bus, beat.Token);
                if (_brokerUnreachableSince is { } since)
                {
                    _brokerUnreachableSince = null;
                    LogBrokerBack(slot.WorkerId, (DateTimeOffset.UtcNow - since).TotalSeconds);
                }
            }
            catch (Exception ex) when (!stop.IsCancellationRequested)
            {
                // Nothing a failed publish throws may end the loop, a cancellation included: a publish canceled by
                // the broker connection's own shutdown once ended it for good while the process lived on. The lease
                // outlasts several missed beats, and the next tick tries again.
                _brokerUnreachableSince ??= DateTimeOffset.UtcNow;
                LogHeartbeatFailed(ex, slot.WorkerId, _brokerUnreachableSince.Value);
            }
        }
    }

    /// <summary>How long one heartbeat publish may wait for the broker: several intervals, at least five seconds.</summary>
    internal static TimeSpan PublishTimeout(TimeSpan interval) =>
        TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(5).Ticks, interval.Ticks * 3));

    /// <summary>Loads the default model into each slot while holding it, so no render shares the renderer meanwhile.</summary>
    private async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var leases = new List<WorkerSlotPool.SlotLease>();
        try
        {
            for (var i = 0; i < pool.Slots.Count; i++)
            {
                leases.Add(await pool.AcquireAsync(cancellationToken));
            }

            await Task.WhenAll(leases.Select(async lease =>
            {
                if (settings.WarmUp)
                {
                    try
                    {
                        await lease.Slot.Renderer.WarmUpAsync(settings.DefaultModel, cancellationToken);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        // The slot still serves other models; items for this one will fail with the reason.
                        LogWarmUpFailed(ex, lease.Slot.WorkerId, settings.DefaultModel);
                    }
                }

                lease.Slot.MarkReady();
            }));
        }
        finally
        {
            foreach (var lease in leases)
            {
                lease.Dispose();
            }
        }

        lifecycle.RequestHeartbeat();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Heartbeat of {WorkerId} failed: the broker cannot be reached (since {Since:O}); retrying at the next interval")]
    private partial void LogHeartbeatFailed(Exception exception, string workerId, DateTimeOffset since);

    [LoggerMessage(Level = LogLevel.Information, Message = "Heartbeat of {WorkerId} reached the broker again after {Seconds:F1} s")]
    private partial void LogBrokerBack(string workerId, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Slot {WorkerId} could not warm up model {Model}")]
    private partial void LogWarmUpFailed(Exception exception, string workerId, string model);
}
