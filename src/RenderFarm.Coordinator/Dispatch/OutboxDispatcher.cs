using System.Collections.Concurrent;
using System.Diagnostics;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Placement;
using RenderFarm.Coordinator.Telemetry;
using RenderFarm.Domain.Policies;
using RenderFarm.Domain.States;
using RenderFarm.Messaging;
using RenderFarm.Telemetry;

namespace RenderFarm.Coordinator.Dispatch;

/// <summary>
/// Drains the outbox onto the bus: claims a batch of due rows, places each work unit (<see cref="PlacementPolicy"/>:
/// the shared queue, one worker's own queue, or back into the outbox for later), sends, and deletes the rows in the
/// same transaction.
/// </summary>
/// <remarks>
/// Why our own outbox: MassTransit's EF outbox is not served here, and the pattern is small. State and the
/// messages it owes commit together; a row is deleted only by the transaction that sent it. A crash after the
/// send but before the commit sends the row again on restart (at-least-once); consumers are idempotent on
/// (item id, attempt), so a duplicate unit costs a wasted render at worst, never a second image. On PostgreSQL
/// the claim uses <c>FOR UPDATE SKIP LOCKED</c>, so several coordinators drain one outbox without blocking each other.
/// </remarks>
internal sealed partial class OutboxDispatcher(
    IServiceScopeFactory scopes,
    IDatabaseDialect dialect,
    IBus bus,
    OutboxSignal signal,
    TimeProvider clock,
    IOptions<OutboxDispatcherOptions> options,
    IOptions<CoordinatorOptions> coordinatorOptions,
    CoordinatorMetrics metrics,
    ILogger<OutboxDispatcher> logger) : BackgroundService
{
    // After an error (database or broker down) wait this long, doubling to the cap, so a long outage costs a
    // few log lines rather than a hot loop.
    private static readonly TimeSpan ErrorBackoffInitial = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ErrorBackoffMax = TimeSpan.FromSeconds(30);

    // Ranges of one job closer than this are read with one query.
    private const long MergeGap = 64;

    private readonly OutboxDispatcherOptions _options = options.Value;
    private readonly LeasePolicy _lease = coordinatorOptions.Value.ToLeasePolicy();

    // One unit ahead on a worker's own queue for preference alone: a large item placed there waits behind at
    // most one unit of small ones (see PlacementPolicy).
    private readonly PlacementPolicy _policy = new(coordinatorOptions.Value.WorkUnitSize);

    // The fleet changes at most once per heartbeat, so a held unit is looked at again after one.
    private readonly TimeSpan _holdDelay = coordinatorOptions.Value.HeartbeatInterval;

    // Jobs whose wait was logged, so a held job logs once rather than on every look (cleared when a unit of it is placed).
    private readonly ConcurrentDictionary<Guid, byte> _held = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = ErrorBackoffInitial;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var claimed = await DispatchBatchAsync(stoppingToken);
                backoff = ErrorBackoffInitial;
                if (claimed < _options.BatchSize)
                {
                    await signal.WaitAsync(_options.PollInterval, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogDispatchFailed(ex, backoff);
                await Task.Delay(backoff, clock, stoppingToken);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, ErrorBackoffMax.Ticks));
            }
        }
    }

    /// <summary>Sends one batch; returns how many rows it claimed.</summary>
    internal async Task<int> DispatchBatchAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var now = clock.GetUtcNow().UtcDateTime;
        var rows = await dialect.ClaimOutboxAsync(db, now, _options.BatchSize, cancellationToken);
        if (rows.Count == 0)
        {
            await tx.CommitAsync(cancellationToken);
            return 0;
        }

        var units = await BuildUnitsAsync(db, rows.Where(r => r.Kind == OutboxKind.WorkUnit).ToList(), new DateTimeOffset(now, TimeSpan.Zero), cancellationToken);
        var placed = await PlaceAsync(db, units, now, cancellationToken);
        if (placed.Shared.Count > 0)
        {
            var endpoint = await bus.GetSendEndpoint(QueueNames.RenderAddress);
            await SendAsync(endpoint, placed.Shared, now, cancellationToken);
        }

        foreach (var (queue, direct) in placed.Direct)
        {
            var endpoint = await bus.GetSendEndpoint(QueueNames.WorkerQueueAddress(queue));
            await SendAsync(endpoint, direct, now, cancellationToken);
        }

        foreach (var cancel in rows.Where(r => r.Kind == OutboxKind.JobCanceled))
        {
            await bus.Publish(new JobCanceled(cancel.JobId, new DateTimeOffset(cancel.CreatedAt, TimeSpan.Zero), cancel.Payload), cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        LogDispatched(rows.Count, units.Count, units.Sum(u => u.Unit.Items.Count));
        if (placed.Direct.Count > 0 || placed.Held > 0)
        {
            LogPlaced(placed.Shared.Count, placed.Direct.Sum(d => d.Value.Count), placed.Held);
        }

        return rows.Count;
    }

    /// <summary>
    /// Sends the units concurrently (as <c>SendBatch</c> does), each inside a span continuing the trace of the request
    /// that wrote its row: MassTransit's send span is its child and carries the context on in the message headers.
    /// </summary>
    private async Task SendAsync(ISendEndpoint endpoint, List<(OutboxRow Row, RenderWorkUnit Unit)> units, DateTime now, CancellationToken cancellationToken)
    {
        var spans = new List<Activity>(units.Count);
        var sends = new List<Task>(units.Count);
        var previous = Activity.Current;
        try
        {
            foreach (var (row, unit) in units)
            {
                metrics.OutboxLag(now - row.CreatedAt);
                ActivityContext.TryParse(row.Payload, null, out var parent);
                var span = RenderFarmDiagnostics.CoordinatorActivitySource.StartActivity("outbox dispatch", ActivityKind.Internal, parent);
                if (span is not null)
                {
                    var first = unit.Items[0];
                    span.SetTag(RenderFarmTags.JobId, unit.JobId.ToString());
                    span.SetTag(RenderFarmTags.ItemIndex, first.Index);
                    span.SetTag(RenderFarmTags.ItemCount, unit.Items.Count);
                    span.SetTag(RenderFarmTags.Model, first.Model);
                    span.SetTag(RenderFarmTags.Mode, first.Mode);
                    span.SetTag(RenderFarmTags.Size, RenderFarmTags.SizeOf(first.Width, first.Height));
                    span.SetTag(RenderFarmTags.Sampler, first.Sampler);
                    spans.Add(span);
                }

                // The send captures the current span now; the next unit's span must not nest under this one.
                sends.Add(endpoint.Send(unit, cancellationToken));
                Activity.Current = previous;
            }

            await Task.WhenAll(sends);
        }
        finally
        {
            foreach (var span in spans)
            {
                span.Dispose();
            }

            Activity.Current = previous;
        }
    }

    private sealed record Placed(List<(OutboxRow Row, RenderWorkUnit Unit)> Shared, Dictionary<string, List<(OutboxRow Row, RenderWorkUnit Unit)>> Direct, int Held);

    /// <summary>
    /// Decides each unit's queue with <see cref="PlacementPolicy"/>, records direct placements on their items, and
    /// puts held units back in the outbox for later, all in the caller's transaction.
    /// </summary>
    private async Task<Placed> PlaceAsync(CoordinatorDbContext db, List<(OutboxRow Row, RenderWorkUnit Unit)> units, DateTime now, CancellationToken cancellationToken)
    {
        var shared = new List<(OutboxRow Row, RenderWorkUnit Unit)>();
        var direct = new Dictionary<string, List<(OutboxRow Row, RenderWorkUnit Unit)>>(StringComparer.Ordinal);
        if (units.Count == 0)
        {
            return new Placed(shared, direct, 0);
        }

        var liveAfter = _lease.ExpiredIfHeartbeatBefore(new DateTimeOffset(now)).UtcDateTime;
        var fleet = await Fleet.ReadLiveAsync(db, liveAfter, withLoad: true, cancellationToken);
        var absent = await Fleet.ReadAbsentAsync(db, liveAfter, liveAfter - (_lease.LeaseDuration * Fleet.AbsentLeases), cancellationToken);
        var assignments = new Dictionary<string, List<Guid>>(StringComparer.Ordinal);
        var held = new List<OutboxRow>();
        foreach (var (row, unit) in units)
        {
            switch (_policy.Place(UnitShape.Of(unit.Items[0]), fleet, absent))
            {
                case PlacementDecision.Direct { Worker: var worker }:
                    var queue = worker.RenderQueue!;
                    (direct.TryGetValue(queue, out var list) ? list : direct[queue] = []).Add((row, unit));
                    (assignments.TryGetValue(worker.Id, out var ids) ? ids : assignments[worker.Id] = []).AddRange(unit.Items.Select(i => i.ItemId));
                    fleet[fleet.IndexOf(worker)] = worker with { AssignedQueued = worker.AssignedQueued + unit.Items.Count };
                    _held.TryRemove(unit.JobId, out _);
                    break;
                case PlacementDecision.Hold { Reason: var reason }:
                    held.Add(new OutboxRow
                    {
                        Kind = row.Kind,
                        JobId = row.JobId,
                        FirstIndex = row.FirstIndex,
                        ItemCount = row.ItemCount,
                        Payload = row.Payload,
                        CreatedAt = row.CreatedAt,
                        AvailableAt = now + _holdDelay,
                    });
                    if (_held.TryAdd(unit.JobId, 0))
                    {
                        LogHeld(unit.JobId, reason);
                    }

                    break;
                default:
                    shared.Add((row, unit));
                    _held.TryRemove(unit.JobId, out _);
                    break;
            }
        }

        foreach (var (workerId, ids) in assignments)
        {
            await db.Items.Where(i => ids.Contains(i.Id) && i.State == ItemState.Queued)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(i => i.AssignedWorkerId, workerId)
                    .SetProperty(i => i.AssignedAt, now), cancellationToken);
        }

        await dialect.WriteOutboxAsync(db, held, cancellationToken);
        return new Placed(shared, direct, held.Count);
    }

    private static async Task<List<(OutboxRow Row, RenderWorkUnit Unit)>> BuildUnitsAsync(CoordinatorDbContext db, List<OutboxRow> rows, DateTimeOffset dispatchedAt, CancellationToken cancellationToken)
    {
        var units = new List<(OutboxRow, RenderWorkUnit)>(rows.Count);
        if (rows.Count == 0)
        {
            return units;
        }

        foreach (var job in rows.GroupBy(r => r.JobId))
        {
            var ordered = job.OrderBy(r => r.FirstIndex).ToList();
            var items = new Dictionary<long, ItemRow>();
            foreach (var (from, to) in MergeRanges(ordered))
            {
                var jobId = job.Key;
                var page = await db.Items.AsNoTracking()
                    .Where(i => i.JobId == jobId && i.Index >= from && i.Index < to && i.State == ItemState.Queued)
                    .ToListAsync(cancellationToken);
                foreach (var item in page)
                {
                    items[item.Index] = item;
                }
            }

            foreach (var row in ordered)
            {
                var unitItems = new List<RenderItem>(row.ItemCount);
                for (var index = row.FirstIndex; index < row.FirstIndex + row.ItemCount; index++)
                {
                    // Items no longer queued (canceled, or already started from an earlier send) are left out.
                    if (items.TryGetValue(index, out var item))
                    {
                        unitItems.Add(ItemMessages.ToRenderItem(item));
                    }
                }

                if (unitItems.Count > 0)
                {
                    units.Add((row, new RenderWorkUnit(Guid.CreateVersion7(), job.Key, unitItems, dispatchedAt)));
                }
            }
        }

        return units;
    }

    private static IEnumerable<(long From, long To)> MergeRanges(List<OutboxRow> ordered)
    {
        var from = ordered[0].FirstIndex;
        var to = from + ordered[0].ItemCount;
        foreach (var row in ordered.Skip(1))
        {
            if (row.FirstIndex > to + MergeGap)
            {
                yield return (from, to);
                from = row.FirstIndex;
            }

            to = Math.Max(to, row.FirstIndex + row.ItemCount);
        }

        yield return (from, to);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Dispatched {Rows} outbox rows as {Units} work units ({Items} items)")]
    private partial void LogDispatched(int rows, int units, int items);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Placement: {Shared} units to the shared queue, {Direct} to workers' own queues, {Held} held for later")]
    private partial void LogPlaced(int shared, int direct, int held);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} waits: {Reason} It is placed again as the fleet changes.")]
    private partial void LogHeld(Guid jobId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Outbox dispatch failed; the claimed rows stay in the outbox. Retrying in {Backoff}")]
    private partial void LogDispatchFailed(Exception exception, TimeSpan backoff);
}
