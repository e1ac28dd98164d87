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
using RenderFarm.Domain.Items;
using RenderFarm.Domain.Policies;
using RenderFarm.Domain.States;
using RenderFarm.Messaging;
using RenderFarm.Telemetry;

namespace RenderFarm.Coordinator.Dispatch;

/// <summary>
/// Drains the outbox onto the bus within a window: cancels go at once; work units go in the order
/// <see cref="DispatchOrder"/> decides (priority, then fair share), only while the queues hold fewer unstarted items
/// than the window allows. Each unit is placed (<see cref="PlacementPolicy"/>: the shared queue, one worker's own
/// queue, or back into the outbox for later), sent, and its row deleted in the same transaction.
/// </summary>
/// <remarks>
/// <para>Why our own outbox: MassTransit's EF outbox is not served here, and the pattern is small. State and the
/// messages it owes commit together; a row is deleted only by the transaction that sent it. A crash after the
/// send but before the commit sends the row again on restart (at-least-once); consumers are idempotent on
/// (item id, attempt), so a duplicate unit costs a wasted render at worst, never a second image. On PostgreSQL
/// several coordinators share one outbox: one at a time fills the window (a transaction-scoped advisory lock, so two
/// never count the same room twice; the others skip the round), and the rows to send are claimed with
/// <c>FOR UPDATE SKIP LOCKED</c>, so no row is sent twice.</para>
/// <para>Why a window: the broker's queues are first in, first out, so whatever is in them has already been ordered.
/// Keeping them short (<see cref="OutboxDispatcherOptions.UnitsPerWorker"/>) leaves the order of everything else to
/// the database, where priority and fairness are decided at each dispatch, and a million-item job costs a million
/// rows, not a million messages. A sent item records <see cref="ItemRow.AssignedAt"/>; a queued item with it set is in
/// the broker (or a worker's prefetch), which is what the window counts. Every path that queues an item again clears
/// it. Starts free the window, and the ledger wakes the dispatcher on them (<see cref="OutboxSignal"/>).</para>
/// </remarks>
internal sealed partial class OutboxDispatcher(
    IServiceScopeFactory scopes,
    IDatabaseDialect dialect,
    IBus bus,
    OutboxSignal signal,
    TimeProvider clock,
    IOptions<OutboxDispatcherOptions> options,
    IOptions<CoordinatorOptions> coordinatorOptions,
    IOptions<BusOptions> busOptions,
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
    private readonly int _unitSize = coordinatorOptions.Value.WorkUnitSize;
    private readonly DispatchOrder _order = new(options.Value.FairShare, options.Value.FairShareBy == FairShareUnit.Tenant ? new TenantFairShareKey() : new JobFairShareKey());

    // One unit ahead on a worker's own queue for preference alone: a large item placed there waits behind at
    // most one unit of small ones (see PlacementPolicy).
    private readonly PlacementPolicy _policy = new(coordinatorOptions.Value.WorkUnitSize);

    // The fleet changes at most once per heartbeat, so a held unit is looked at again after one.
    private readonly TimeSpan _holdDelay = coordinatorOptions.Value.HeartbeatInterval;

    // Jobs whose wait was logged, so a held job logs once rather than on every look (cleared when a unit of it is placed).
    private readonly ConcurrentDictionary<Guid, byte> _held = new();

    // Items queued again per transaction when sends lost with an in-memory bus are recovered.
    private const int RecoveryPageSize = 1000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = ErrorBackoffInitial;
        var recovered = busOptions.Value.Transport != BusTransport.InMemory;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!recovered)
                {
                    await RequeueLostSendsAsync(stoppingToken);
                    recovered = true;
                }

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

    /// <summary>
    /// With the in-memory bus (the embedded farm) nothing sent survives the process: the units sent before this start are
    /// gone, and their items, still queued with <see cref="ItemRow.AssignedAt"/> set, would never run and would hold the
    /// window shut. They get outbox rows again (same attempt: no message of it is left to arrive late), in pages.
    /// </summary>
    internal async Task<int> RequeueLostSendsAsync(CancellationToken cancellationToken)
    {
        var planner = new WorkUnitPlanner(_unitSize);
        var total = 0;
        while (true)
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
            await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
            var lost = await db.Items.AsNoTracking()
                .Where(i => i.State == ItemState.Queued && i.AssignedAt != null)
                .OrderBy(i => i.JobId).ThenBy(i => i.Index)
                .Take(RecoveryPageSize)
                .ToListAsync(cancellationToken);
            if (lost.Count == 0)
            {
                await tx.CommitAsync(cancellationToken);
                break;
            }

            var ids = lost.Select(i => i.Id).ToList();
            await db.Items.Where(i => ids.Contains(i.Id) && i.State == ItemState.Queued)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(i => i.AssignedWorkerId, (string?)null)
                    .SetProperty(i => i.AssignedAt, (DateTime?)null), cancellationToken);
            await dialect.WriteOutboxAsync(db, WorkUnitOutbox.RowsFor(lost, planner, clock.GetUtcNow().UtcDateTime), cancellationToken);
            await tx.CommitAsync(cancellationToken);
            total += lost.Count;
        }

        if (total > 0)
        {
            LogRequeuedLost(total);
        }

        return total;
    }

    /// <summary>The most unstarted items the shared queue may hold with <paramref name="liveWorkers"/> live (at least one worker's worth).</summary>
    internal int SharedWindow(int liveWorkers) => checked(_options.UnitsPerWorker * Math.Max(1, liveWorkers) * _unitSize);

    /// <summary>The most unstarted items one worker's own queue may hold.</summary>
    internal int OwnWindow => checked(_options.UnitsPerWorker * _unitSize);

    /// <summary>Sends one batch; returns how many rows it claimed (sent, dropped or held).</summary>
    internal async Task<int> DispatchBatchAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var now = clock.GetUtcNow().UtcDateTime;

        // Cancels are not work: they go at once, whatever the window, and take the canceled units' rows with them.
        var events = await dialect.ClaimEventsAsync(db, now, _options.BatchSize, cancellationToken);
        foreach (var cancel in events.Where(r => r.Kind == OutboxKind.JobCanceled))
        {
            // Only rows written before the cancel: a retry after it writes rows of its own, which must stay.
            var jobId = cancel.JobId;
            var before = cancel.Id;
            await db.Outbox.Where(o => o.JobId == jobId && o.Kind == OutboxKind.WorkUnit && o.Id < before).ExecuteDeleteAsync(cancellationToken);
            await bus.Publish(new JobCanceled(cancel.JobId, new DateTimeOffset(cancel.CreatedAt, TimeSpan.Zero), cancel.Payload), cancellationToken);
        }

        var (units, sent, claimed) = await DispatchUnitsAsync(db, now, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        if (units > 0)
        {
            LogDispatched(claimed, units, sent);
        }

        return events.Count + claimed;
    }

    /// <summary>Sends what the window has room for, in dispatch order; returns the units and items sent and the rows claimed.</summary>
    private async Task<(int Units, int Items, int Rows)> DispatchUnitsAsync(CoordinatorDbContext db, DateTime now, CancellationToken cancellationToken)
    {
        if (!await dialect.TryLockDispatchAsync(db, cancellationToken))
        {
            // Another coordinator is filling the window now; its sends wake nothing here, so the poll looks again.
            return (0, 0, 0);
        }

        var liveAfter = _lease.ExpiredIfHeartbeatBefore(new DateTimeOffset(now)).UtcDateTime;
        var fleet = await Fleet.ReadLiveAsync(db, liveAfter, withLoad: true, cancellationToken);
        var load = await InFlight.ReadAsync(db, cancellationToken);
        var shared = SharedWindow(fleet.Count) - load.SharedQueued;
        var own = fleet.Where(w => w.RenderQueue is not null).ToDictionary(w => w.Id, w => OwnWindow - w.AssignedQueued, StringComparer.Ordinal);
        var room = Math.Max(0, shared) + own.Values.Sum(v => (long)Math.Max(0, v));
        if (room <= 0)
        {
            return (0, 0, 0);
        }

        // A row names at least one item, so no job can send more rows than the room has items.
        var candidates = await ReadCandidatesAsync(db, now, (int)Math.Min(_options.BatchSize, room), cancellationToken);
        if (candidates.Count == 0)
        {
            return (0, 0, 0);
        }

        // Only as many rows as the window could take, in order (a row names at most a unit's worth of items).
        var chosen = new List<OutboxRow>();
        long planned = 0;
        foreach (var candidate in _order.Order([.. candidates.Keys], load.ByJob))
        {
            if (chosen.Count >= _options.BatchSize || (chosen.Count > 0 && planned + candidate.ItemCount > room))
            {
                break;
            }

            chosen.Add(candidates[candidate]);
            planned += candidate.ItemCount;
        }

        var units = await BuildUnitsAsync(db, chosen, new DateTimeOffset(now, TimeSpan.Zero), cancellationToken);
        var absent = await Fleet.ReadAbsentAsync(db, liveAfter, liveAfter - (_lease.LeaseDuration * Fleet.AbsentLeases), cancellationToken);
        var placed = Place(units, fleet, absent, new Window(shared, load.SharedQueued, own));

        // Rows whose items were all canceled or started meanwhile are dropped with the ones sent.
        var built = units.Select(u => u.Row.Id).ToHashSet();
        var take = placed.Shared.Concat(placed.Direct.SelectMany(d => d.Value)).Select(u => u.Row.Id)
            .Concat(chosen.Where(r => !built.Contains(r.Id)).Select(r => r.Id))
            .ToList();
        var mine = (await dialect.ClaimOutboxRowsAsync(db, take, cancellationToken)).ToHashSet();
        bool Mine((OutboxRow Row, RenderWorkUnit Unit) u) => mine.Contains(u.Row.Id);
        var sharedUnits = placed.Shared.Where(Mine).ToList();
        var direct = placed.Direct.ToDictionary(d => d.Key, d => d.Value.Where(Mine).ToList(), StringComparer.Ordinal);
        var queues = placed.Queues;

        await RecordSentAsync(db, sharedUnits, direct, now, cancellationToken);
        if (placed.Held.Count > 0)
        {
            var held = placed.Held;
            var availableAt = now + _holdDelay;
            await db.Outbox.Where(o => held.Contains(o.Id)).ExecuteUpdateAsync(s => s.SetProperty(o => o.AvailableAt, availableAt), cancellationToken);
        }

        if (sharedUnits.Count > 0)
        {
            var endpoint = await bus.GetSendEndpoint(QueueNames.RenderAddress);
            await SendAsync(endpoint, sharedUnits, now, cancellationToken);
        }

        foreach (var (workerId, list) in direct.Where(d => d.Value.Count > 0))
        {
            var endpoint = await bus.GetSendEndpoint(QueueNames.WorkerQueueAddress(queues[workerId]));
            await SendAsync(endpoint, list, now, cancellationToken);
        }

        var sentUnits = sharedUnits.Concat(direct.SelectMany(d => d.Value)).ToList();
        if (direct.Count > 0 || placed.Held.Count > 0)
        {
            LogPlaced(sharedUnits.Count, sentUnits.Count - sharedUnits.Count, placed.Held.Count);
        }

        return (sentUnits.Count, sentUnits.Sum(u => u.Unit.Items.Count), mine.Count + placed.Held.Count);
    }

    /// <summary>The first <paramref name="perJob"/> due work-unit rows of each unfinished job, keyed as the order sees them.</summary>
    private async Task<Dictionary<DispatchCandidate, OutboxRow>> ReadCandidatesAsync(CoordinatorDbContext db, DateTime now, int perJob, CancellationToken cancellationToken)
    {
        var rows = await dialect.ReadDueUnitsAsync(db, now, perJob, cancellationToken);
        return rows.ToDictionary(r => new DispatchCandidate(r.Row.Id, r.Row.JobId, r.Priority, r.JobCreatedAt, r.Row.ItemCount, r.Tenant), r => r.Row);
    }

    /// <summary>Marks the sent items as sent (and those sent to one worker as placed on it), in the caller's transaction.</summary>
    private static async Task RecordSentAsync(
        CoordinatorDbContext db,
        List<(OutboxRow Row, RenderWorkUnit Unit)> shared,
        Dictionary<string, List<(OutboxRow Row, RenderWorkUnit Unit)>> direct,
        DateTime now,
        CancellationToken cancellationToken)
    {
        if (shared.Count > 0)
        {
            var ids = shared.SelectMany(u => u.Unit.Items.Select(i => i.ItemId)).ToList();
            await db.Items.Where(i => ids.Contains(i.Id) && i.State == ItemState.Queued)
                .ExecuteUpdateAsync(s => s.SetProperty(i => i.AssignedAt, now), cancellationToken);
        }

        foreach (var (workerId, units) in direct.Where(d => d.Value.Count > 0))
        {
            var ids = units.SelectMany(u => u.Unit.Items.Select(i => i.ItemId)).ToList();
            await db.Items.Where(i => ids.Contains(i.Id) && i.State == ItemState.Queued)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(i => i.AssignedWorkerId, workerId)
                    .SetProperty(i => i.AssignedAt, now), cancellationToken);
        }
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

    /// <summary>Room left in the window: items on the shared queue, the unstarted items sent there, and each own queue's room by worker id.</summary>
    private sealed record Window(long Shared, long SharedQueued, Dictionary<string, int> Own);

    /// <summary>Units to send (direct ones by worker id, with each worker's queue), and the ids of rows held for later.</summary>
    private sealed record Placed(
        List<(OutboxRow Row, RenderWorkUnit Unit)> Shared,
        Dictionary<string, List<(OutboxRow Row, RenderWorkUnit Unit)>> Direct,
        Dictionary<string, string> Queues,
        List<long> Held);

    /// <summary>
    /// Decides each unit's queue with <see cref="PlacementPolicy"/>, in dispatch order, while its queue has room.
    /// A unit that does not fit its queue's room stays in the outbox, and so does every later unit for that queue, so
    /// the order holds; a queue with nothing waiting takes one unit whatever its size, so no unit waits forever.
    /// </summary>
    private Placed Place(List<(OutboxRow Row, RenderWorkUnit Unit)> units, List<WorkerCapacity> fleet, List<WorkerCapacity> absent, Window window)
    {
        var shared = new List<(OutboxRow Row, RenderWorkUnit Unit)>();
        var direct = new Dictionary<string, List<(OutboxRow Row, RenderWorkUnit Unit)>>(StringComparer.Ordinal);
        var queues = new Dictionary<string, string>(StringComparer.Ordinal);
        var held = new List<long>();
        var sharedRoom = window.Shared;
        var sharedIdle = window.SharedQueued == 0;
        var sharedFull = false;
        var ownRoom = new Dictionary<string, int>(window.Own, StringComparer.Ordinal);
        var ownFull = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (row, unit) in units)
        {
            var size = unit.Items.Count;
            switch (_policy.Place(UnitShape.Of(unit.Items[0]), fleet, absent))
            {
                case PlacementDecision.Direct { Worker: var worker }:
                    var room = ownRoom.GetValueOrDefault(worker.Id);
                    if (ownFull.Contains(worker.Id) || (room < size && worker.AssignedQueued > 0))
                    {
                        ownFull.Add(worker.Id);
                        break;
                    }

                    ownRoom[worker.Id] = room - size;
                    queues[worker.Id] = worker.RenderQueue!;
                    (direct.TryGetValue(worker.Id, out var list) ? list : direct[worker.Id] = []).Add((row, unit));
                    fleet[fleet.IndexOf(worker)] = worker with { AssignedQueued = worker.AssignedQueued + size };
                    _held.TryRemove(unit.JobId, out _);
                    break;
                case PlacementDecision.Hold { Reason: var reason }:
                    held.Add(row.Id);
                    if (_held.TryAdd(unit.JobId, 0))
                    {
                        LogHeld(unit.JobId, reason);
                    }

                    break;
                default:
                    if (sharedFull || (sharedRoom < size && !sharedIdle))
                    {
                        sharedFull = true;
                        break;
                    }

                    sharedRoom -= size;
                    sharedIdle = false;
                    shared.Add((row, unit));
                    _held.TryRemove(unit.JobId, out _);
                    break;
            }
        }

        return new Placed(shared, direct, queues, held);
    }

    /// <summary>The units of <paramref name="rows"/> (their still-queued items), in the rows' order; rows with no such item make none.</summary>
    private static async Task<List<(OutboxRow Row, RenderWorkUnit Unit)>> BuildUnitsAsync(CoordinatorDbContext db, List<OutboxRow> rows, DateTimeOffset dispatchedAt, CancellationToken cancellationToken)
    {
        var units = new Dictionary<long, (OutboxRow, RenderWorkUnit)>(rows.Count);
        if (rows.Count == 0)
        {
            return [];
        }

        var jobIds = rows.Select(r => r.JobId).Distinct().ToList();
        // What every unit of a job carries besides its items: one read per round for all the round's jobs.
        var jobSettings = await db.Jobs.AsNoTracking()
            .Where(j => jobIds.Contains(j.Id))
            .Select(j => new { j.Id, j.Safety, j.Watermark, j.ShardSize })
            .ToDictionaryAsync(j => j.Id, cancellationToken);
        foreach (var job in rows.GroupBy(r => r.JobId))
        {
            var ordered = job.OrderBy(r => r.FirstIndex).ToList();
            var settings = jobSettings.GetValueOrDefault(job.Key);
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
                        unitItems.Add(ItemMessages.ToRenderItem(item, settings?.ShardSize));
                    }
                }

                if (unitItems.Count > 0)
                {
                    units[row.Id] = (row, new RenderWorkUnit(Guid.CreateVersion7(), job.Key, unitItems, dispatchedAt, settings?.Safety, settings?.Watermark));
                }
            }
        }

        // In the order given: the dispatch order.
        return [.. rows.Where(r => units.ContainsKey(r.Id)).Select(r => units[r.Id])];
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

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} queued items sent before this start were lost with the in-memory bus; they are queued again")]
    private partial void LogRequeuedLost(int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Outbox dispatch failed; the claimed rows stay in the outbox. Retrying in {Backoff}")]
    private partial void LogDispatchFailed(Exception exception, TimeSpan backoff);
}
