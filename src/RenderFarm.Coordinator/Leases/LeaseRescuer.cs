using BusHealthStatus = MassTransit.BusHealthStatus;
using IBusControl = MassTransit.IBusControl;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Consumers;
using RenderFarm.Coordinator.Dispatch;
using RenderFarm.Coordinator.Events;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Telemetry;
using RenderFarm.Domain.Items;
using RenderFarm.Domain.Policies;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Leases;

/// <summary>
/// Returns lost work to the queue, on a ticker, in the manner of River's job rescuer: named defaults, validated
/// options, pages of <see cref="LeaseRescuerOptions.BatchSize"/> items, one bulk UPDATE per page, and a log line
/// only when something moved.
/// </summary>
/// <remarks>
/// Four passes per tick, each in batched transactions:
/// <list type="number">
/// <item>Running items whose lease lapsed (their worker's heartbeats stopped renewing it) become
/// <see cref="ItemState.Retrying"/> with the policy's backoff, or <see cref="ItemState.Failed"/> once out of
/// attempts (a lapse counts as a retryable failure).</item>
/// <item>Retrying items whose backoff has passed become <see cref="ItemState.Queued"/> with a new attempt and get
/// new outbox rows, so the dispatcher sends them again. Reports of the old attempt are then stale and ignored.</item>
/// <item>Queued items placed on one worker's own queue whose worker is gone are placed again (new attempt, new
/// outbox rows): the safety net of capability-aware placement.</item>
/// <item>Queued items of a shared-queue unit that a worker gone silent still holds are placed again
/// (<see cref="ReplaceHeldBySilentWorkersAsync"/>).</item>
/// </list>
/// Rows are locked items-first, jobs-second, the same order as <see cref="ItemLedger"/>, so the two never deadlock.
/// </remarks>
internal sealed partial class LeaseRescuer(
    IServiceScopeFactory scopes,
    IDatabaseDialect dialect,
    JobEventHub hub,
    OutboxSignal signal,
    TimeProvider clock,
    IBusControl bus,
    DatabaseOutageWatch outages,
    IOptions<LeaseRescuerOptions> options,
    IOptions<CoordinatorOptions> coordinatorOptions,
    CoordinatorMetrics metrics,
    ILogger<LeaseRescuer> logger) : BackgroundService
{
    private readonly LeaseRescuerOptions _options = options.Value;
    private readonly LeasePolicy _lease = coordinatorOptions.Value.ToLeasePolicy();
    private readonly RetryPolicy _retry = coordinatorOptions.Value.ToRetryPolicy();
    private readonly WorkUnitPlanner _planner = new(coordinatorOptions.Value.WorkUnitSize);

    internal readonly record struct Result(int Retried, int Failed, int Requeued, int Replaced)
    {
        public bool Any => Retried + Failed + Requeued > 0;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Interval, clock);
        // Two leases: a heartbeat held back by the consumers' outage retry (at most 10 s apart) lands within them at the
        // default 30 s lease, and a coordinator started with short test leases still rescues within seconds.
        var gate = new LeaseJudgeGate(2 * _lease.LeaseDuration);
        do
        {
            try
            {
                var now = clock.GetUtcNow();
                var judge = gate.MayJudge(now, bus.CheckHealth().Status == BusHealthStatus.Healthy, outages.LastFailureAt);
                var result = await RunOnceAsync(judgeLeases: judge, stoppingToken);
                if (result.Any)
                {
                    LogRescued(result.Retried, result.Failed, result.Requeued);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                gate.Disturbed();
                LogRescueFailed(ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    internal Task<Result> RunOnceAsync(CancellationToken cancellationToken) => RunOnceAsync(judgeLeases: true, cancellationToken);

    /// <param name="judgeLeases">False: only due retries move; lapsed leases and departed workers wait for a later pass.</param>
    /// <param name="cancellationToken">Stops the pass.</param>
    internal async Task<Result> RunOnceAsync(bool judgeLeases, CancellationToken cancellationToken)
    {
        int retried = 0, failed = 0, requeued = 0;
        while (judgeLeases)
        {
            var (r, f, n) = await RescueLapsedBatchAsync(cancellationToken);
            retried += r;
            failed += f;
            if (n < _options.BatchSize)
            {
                break;
            }
        }

        while (true)
        {
            var n = await RequeueDueBatchAsync(cancellationToken);
            requeued += n;
            if (n < _options.BatchSize)
            {
                break;
            }
        }

        var replaced = 0;
        while (judgeLeases)
        {
            var n = await ReplaceOrphanedBatchAsync(cancellationToken);
            replaced += n;
            if (n < _options.BatchSize)
            {
                break;
            }
        }

        if (judgeLeases)
        {
            replaced += await ReplaceHeldBySilentWorkersAsync(cancellationToken);
        }

        if (requeued + replaced > 0)
        {
            signal.Notify();
        }

        return new Result(retried, failed, requeued, replaced);
    }

    private async Task<(int Retried, int Failed, int Fetched)> RescueLapsedBatchAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var now = clock.GetUtcNow().UtcDateTime;
        var cutoff = _lease.ExpiredIfHeartbeatBefore(new DateTimeOffset(now)).UtcDateTime;

        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var lapsed = await dialect.LockLapsedLeasesAsync(db, cutoff, _options.BatchSize, cancellationToken);
        if (lapsed.Count == 0)
        {
            await tx.CommitAsync(cancellationToken);
            return (0, 0, 0);
        }

        var decided = lapsed.Select(i => (Item: i, To: _retry.StateAfterFailure(i.Attempt, retryable: true))).ToList();
        foreach (var group in decided.GroupBy(d => (d.To, d.Item.Attempt)))
        {
            var ids = group.Select(d => d.Item.Id).ToList();
            var to = group.Key.To;
            DateTime? retryAt = to == ItemState.Retrying ? _retry.RetryAt(group.Key.Attempt, new DateTimeOffset(now)).UtcDateTime : null;
            DateTime? finishedAt = to == ItemState.Failed ? now : null;
            await db.Items.Where(i => ids.Contains(i.Id) && i.State == ItemState.Running)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(i => i.State, to)
                    .SetProperty(i => i.RetryAt, retryAt)
                    .SetProperty(i => i.FinishedAt, finishedAt)
                    .SetProperty(i => i.HeartbeatAt, (DateTime?)null)
                    .SetProperty(i => i.Error, i => "The lease lapsed: worker " + (i.WorkerId ?? "?") + " stopped heartbeating while rendering this item."),
                    cancellationToken);
        }

        var jobStates = new List<(Guid JobId, JobState State)>();
        foreach (var job in decided.GroupBy(d => d.Item.JobId).OrderBy(g => g.Key))
        {
            var delta = new Dictionary<ItemState, long>
            {
                [ItemState.Running] = -job.Count(),
                [ItemState.Retrying] = job.Count(d => d.To == ItemState.Retrying),
                [ItemState.Failed] = job.Count(d => d.To == ItemState.Failed),
            };
            await JobCounters.ShiftAsync(db, job.Key, delta, now, cancellationToken);
            if (await JobCounters.DeriveAsync(db, job.Key, now, cancellationToken) is { } state)
            {
                jobStates.Add((job.Key, state));
            }
        }

        await tx.CommitAsync(cancellationToken);
        metrics.LeaseRescued(decided.Count);

        foreach (var (item, to) in decided)
        {
            metrics.Failed(item.Model, item.Mode, to);
            hub.Publish(new JobEvent(to == ItemState.Retrying ? JobEventTypes.ItemRetrying : JobEventTypes.ItemFailed,
                item.JobId, item.Index, item.Id, item.Attempt, item.WorkerId, Error: "The lease lapsed."));
        }

        foreach (var (jobId, state) in jobStates)
        {
            hub.Publish(new JobEvent(JobStateMachine.IsFinal(state) ? JobEventTypes.JobDone : JobEventTypes.JobState, jobId, State: state.ToString()));
        }

        var retried = decided.Count(d => d.To == ItemState.Retrying);
        return (retried, decided.Count - retried, lapsed.Count);
    }

    private async Task<int> RequeueDueBatchAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var now = clock.GetUtcNow().UtcDateTime;

        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var due = await dialect.LockDueRetriesAsync(db, now, _options.BatchSize, cancellationToken);
        if (due.Count == 0)
        {
            await tx.CommitAsync(cancellationToken);
            return 0;
        }

        var ids = due.Select(i => i.Id).ToList();
        await db.Items.Where(i => ids.Contains(i.Id) && i.State == ItemState.Retrying)
            .ExecuteUpdateAsync(s => s
                .SetProperty(i => i.State, ItemState.Queued)
                .SetProperty(i => i.Attempt, i => i.Attempt + 1)
                .SetProperty(i => i.RetryAt, (DateTime?)null)
                .SetProperty(i => i.WorkerId, (string?)null)
                .SetProperty(i => i.StartedAt, (DateTime?)null)
                .SetProperty(i => i.AssignedWorkerId, (string?)null)
                .SetProperty(i => i.AssignedAt, (DateTime?)null)
                .SetProperty(i => i.StepsDone, 0)
                .SetProperty(i => i.StepsTotal, (int?)null), cancellationToken);

        foreach (var job in due.GroupBy(i => i.JobId).OrderBy(g => g.Key))
        {
            await JobCounters.MoveAsync(db, job.Key, ItemState.Retrying, ItemState.Queued, job.Count(), now, cancellationToken);
        }

        await dialect.WriteOutboxAsync(db, OutboxRowsFor(due, now), cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return due.Count;
    }

    /// <summary>
    /// Queued items placed on one worker's own queue whose worker is gone (heartbeat older than the lease, or
    /// draining, or no row at all) are placed again: a new attempt, so a late delivery of the old unit is stale and
    /// ignored, no assignment, and new outbox rows. The queue counters do not move (queued stays queued).
    /// </summary>
    /// <remarks>
    /// Why this is needed: the dispatcher sends such units through the worker queue's exchange, so a unit sent to a
    /// worker that died is dropped by the broker (or dies with its auto-delete queue) rather than redelivered to
    /// another worker as the shared queue would. The update is conditional on the attempt and assignment read, so
    /// an item its worker started meanwhile is left alone.
    /// </remarks>
    private async Task<int> ReplaceOrphanedBatchAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var now = clock.GetUtcNow().UtcDateTime;
        var liveAfter = _lease.ExpiredIfHeartbeatBefore(new DateTimeOffset(now)).UtcDateTime;

        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var orphaned = await db.Items.AsNoTracking()
            .Where(i => i.State == ItemState.Queued && i.AssignedWorkerId != null
                && !db.Workers.Any(w => w.Id == i.AssignedWorkerId && w.LastHeartbeatAt >= liveAfter && w.State != WorkerState.Draining))
            .OrderBy(i => i.AssignedAt)
            .Take(_options.BatchSize)
            .ToListAsync(cancellationToken);
        if (orphaned.Count == 0)
        {
            await tx.CommitAsync(cancellationToken);
            return 0;
        }

        var replaced = new List<ItemRow>(orphaned.Count);
        foreach (var group in orphaned.GroupBy(i => (i.Attempt, i.AssignedWorkerId)))
        {
            var ids = group.Select(i => i.Id).ToList();
            var (attempt, worker) = group.Key;
            await db.Items.Where(i => ids.Contains(i.Id) && i.State == ItemState.Queued && i.Attempt == attempt && i.AssignedWorkerId == worker)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(i => i.Attempt, attempt + 1)
                    .SetProperty(i => i.AssignedWorkerId, (string?)null)
                    .SetProperty(i => i.AssignedAt, (DateTime?)null), cancellationToken);

            // Only the rows this update moved get outbox rows (a worker may have started one in between).
            var moved = await db.Items.AsNoTracking()
                .Where(i => ids.Contains(i.Id) && i.State == ItemState.Queued && i.Attempt == attempt + 1 && i.AssignedWorkerId == null)
                .Select(i => i.Id).ToListAsync(cancellationToken);
            var movedSet = moved.ToHashSet();
            replaced.AddRange(group.Where(i => movedSet.Contains(i.Id)));
        }

        await dialect.WriteOutboxAsync(db, OutboxRowsFor(replaced, now), cancellationToken);
        await tx.CommitAsync(cancellationToken);
        if (replaced.Count > 0)
        {
            LogReplaced(replaced.Count, string.Join(", ", orphaned.Select(i => i.AssignedWorkerId).Distinct()));
        }

        // The batch is full when the query filled it, whatever the races did to it.
        return orphaned.Count;
    }

    /// <summary>
    /// Queued items sent on the shared queue that a worker gone silent named in its last heartbeat (the rest of a unit
    /// it had taken) are placed again: a new attempt, no assignment, new outbox rows.
    /// </summary>
    /// <remarks>
    /// Why: the broker hands a unit to another worker only when the holder's connection closes. A worker that stops
    /// heartbeating while its connection stays open (a hung process) keeps the unit: its running item's lease lapses
    /// and is retried, but the unit's other items would stay Queued for as long as the connection lives. An item sent
    /// after that last heartbeat (<c>assignedAt</c> later) is not the silent worker's, so an item placed again is never
    /// placed a second time for the same heartbeat. When the holder died instead, the broker also redelivers the unit:
    /// the old attempt's image, if it comes first, is kept, and the new attempt's report then changes nothing.
    /// </remarks>
    private async Task<int> ReplaceHeldBySilentWorkersAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var now = clock.GetUtcNow().UtcDateTime;
        var liveAfter = _lease.ExpiredIfHeartbeatBefore(new DateTimeOffset(now)).UtcDateTime;
        var silent = (await db.Workers.AsNoTracking()
                .Where(w => w.LastHeartbeatAt < liveAfter)
                .Select(w => new { w.Id, w.LastHeartbeatAt, w.CurrentItemIds })
                .ToListAsync(cancellationToken))
            .Where(w => w.CurrentItemIds.Count > 0)
            .ToList();
        if (silent.Count == 0)
        {
            return 0;
        }

        var lastBeatOf = silent.SelectMany(w => w.CurrentItemIds.Select(id => (id, w.LastHeartbeatAt)))
            .GroupBy(p => p.id).ToDictionary(g => g.Key, g => g.Max(p => p.LastHeartbeatAt));
        var ids = lastBeatOf.Keys.ToList();

        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var held = (await db.Items.AsNoTracking()
                .Where(i => ids.Contains(i.Id) && i.State == ItemState.Queued && i.AssignedWorkerId == null && i.AssignedAt != null)
                .ToListAsync(cancellationToken))
            .Where(i => i.AssignedAt <= lastBeatOf[i.Id])
            .Take(_options.BatchSize)
            .ToList();
        if (held.Count == 0)
        {
            await tx.CommitAsync(cancellationToken);
            return 0;
        }

        var replaced = new List<ItemRow>(held.Count);
        foreach (var item in held)
        {
            var (id, attempt, assignedAt) = (item.Id, item.Attempt, item.AssignedAt);
            var moved = await db.Items
                .Where(i => i.Id == id && i.State == ItemState.Queued && i.Attempt == attempt && i.AssignedWorkerId == null && i.AssignedAt == assignedAt)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(i => i.Attempt, attempt + 1)
                    .SetProperty(i => i.AssignedAt, (DateTime?)null), cancellationToken);
            if (moved > 0)
            {
                replaced.Add(item);
            }
        }

        await dialect.WriteOutboxAsync(db, OutboxRowsFor(replaced, now), cancellationToken);
        await tx.CommitAsync(cancellationToken);
        if (replaced.Count > 0)
        {
            LogReplacedHeld(replaced.Count, string.Join(", ", silent.Select(w => w.Id)));
        }

        return replaced.Count;
    }

    private List<OutboxRow> OutboxRowsFor(IEnumerable<ItemRow> items, DateTime now) => WorkUnitOutbox.RowsFor(items, _planner, now);

    [LoggerMessage(Level = LogLevel.Information, Message = "Lease rescuer: {Retried} lapsed items will be retried, {Failed} failed out of attempts, {Requeued} retries queued again")]
    private partial void LogRescued(int retried, int failed, int requeued);

    [LoggerMessage(Level = LogLevel.Information, Message = "Lease rescuer: {Count} queued items placed on departed workers ({Workers}) are placed again")]
    private partial void LogReplaced(int count, string workers);

    [LoggerMessage(Level = LogLevel.Information, Message = "Lease rescuer: {Count} queued items held by silent workers ({Workers}) are placed again")]
    private partial void LogReplacedHeld(int count, string workers);

    [LoggerMessage(Level = LogLevel.Error, Message = "Lease rescuer pass failed; it runs again at the next tick")]
    private partial void LogRescueFailed(Exception exception);
}
