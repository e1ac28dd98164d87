using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Hosting;
using RenderFarm.Coordinator.Monitoring;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;

namespace RenderFarm.Coordinator.Telemetry;

/// <summary>
/// Refreshes <see cref="CoordinatorMetrics.Snapshot"/> every <see cref="MetricsOptions.RefreshInterval"/>: one grouped
/// query over the jobs (items by state come from the jobs' per-state counters, never from counting item rows), one
/// over live workers and two small reads of the outbox. Scrapes read the last snapshot, however often they come.
/// </summary>
internal sealed partial class FarmSnapshotService(
    IServiceScopeFactory scopes,
    CoordinatorMetrics metrics,
    TimeProvider clock,
    IOptions<MetricsOptions> options,
    IOptions<CoordinatorOptions> coordinatorOptions,
    ILogger<FarmSnapshotService> logger) : PeriodicPassService(clock)
{
    protected override TimeSpan Interval => options.Value.RefreshInterval;

    protected override async Task PassAsync(CancellationToken cancellationToken) => metrics.Snapshot = await TakeAsync(cancellationToken);

    // The gauges keep the last good snapshot; the next tick tries again.
    protected override void PassFailed(Exception exception) => LogRefreshFailed(exception);

    internal async Task<FarmSnapshot> TakeAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var now = Clock.GetUtcNow();
        var (jobs, items) = await StateCounts.ReadAsync(db, cancellationToken);

        var liveAfter = coordinatorOptions.Value.ToLeasePolicy().ExpiredIfHeartbeatBefore(now).UtcDateTime;
        var live = await db.Workers.AsNoTracking().Where(w => w.LastHeartbeatAt >= liveAfter)
            .GroupBy(w => w.State).Select(g => new { g.Key, Count = g.LongCount() }).ToListAsync(cancellationToken);
        var workers = Enum.GetValues<WorkerState>().ToDictionary(s => s.ToString(), s => live.Where(g => g.Key == s).Sum(g => g.Count), StringComparer.Ordinal);

        var utcNow = now.UtcDateTime;
        var outboxRows = await db.Outbox.LongCountAsync(cancellationToken);
        var oldestDue = await db.Outbox.AsNoTracking().Where(o => o.AvailableAt <= utcNow).MinAsync(o => (DateTime?)o.AvailableAt, cancellationToken);
        var age = oldestDue is { } due && due < utcNow ? utcNow - due : TimeSpan.Zero;
        return new FarmSnapshot(items, jobs, workers, outboxRows, age, now);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refreshing the farm metrics snapshot failed; the gauges keep the last one")]
    private partial void LogRefreshFailed(Exception exception);
}
