using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Dispatch;
using RenderFarm.Coordinator.Events;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Telemetry;
using RenderFarm.Domain.Policies;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>
/// Records what workers report about items. Every change is a conditional, set-based UPDATE on the item (its
/// expected state and attempt in the WHERE clause) plus one counter UPDATE on its job, in one transaction:
/// a duplicate or stale report matches no row and changes nothing, which is what makes completion idempotent
/// on (item id, attempt) without a separate dedup table. Hires jobs release their next parts (tiles after the base,
/// the stitch after the last tile) from the same transaction that records a success (<see cref="HiresJobs"/>).
/// </summary>
internal sealed class ItemLedger(
    CoordinatorDbContext db,
    IDatabaseDialect dialect,
    OutboxSignal signal,
    JobEventHub hub,
    TimeProvider clock,
    IOptions<CoordinatorOptions> options,
    CoordinatorMetrics metrics,
    ILogger<ItemLedger> logger)
{
    // A concurrent writer can move the item between our read and our conditional update; re-reading a few
    // times settles it (the other writer's commit is what we then see).
    private const int MaxRaces = 5;

    private readonly RetryPolicy _retry = options.Value.ToRetryPolicy();

    private sealed record Snapshot(Guid Id, Guid JobId, long Index, ItemState State, int Attempt, string Mode, bool Hires, string Model, int Width, int Height, string Sampler);

    /// <summary>Records one start; see <see cref="StartedAsync(IReadOnlyList{ItemStarted}, CancellationToken)"/>.</summary>
    public Task StartedAsync(ItemStarted message, CancellationToken cancellationToken) => StartedAsync([message], cancellationToken);

    /// <summary>
    /// Records a batch of starts in one transaction: one read of the items, a conditional update per item, and one
    /// counter update per job (rather than a transaction, two reads and two job-row updates per item, which capped a
    /// farm at tens of completions a second and made every start of a job queue on its job row's lock).
    /// </summary>
    public async Task StartedAsync(IReadOnlyList<ItemStarted> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var pending = messages.DistinctBy(m => (m.ItemId, m.Attempt)).ToList();
        for (var race = 0; race < MaxRaces && pending.Count > 0; race++)
        {
            var now = Now();
            await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
            var items = await ReadAsync(pending.Select(m => m.ItemId), cancellationToken);
            var started = new List<(ItemStarted Message, Snapshot Item)>();
            var raced = new List<ItemStarted>();
            // Item rows are locked in id order, so two batches sharing an item (a redelivery) cannot deadlock.
            foreach (var message in pending.OrderBy(m => m.ItemId))
            {
                if (!items.TryGetValue(message.ItemId, out var item) || item.Attempt != message.Attempt || item.State != ItemState.Queued)
                {
                    // Stale attempt, a redelivery, or the item finished first (events travel on separate queues).
                    if (item is { State: ItemState.Running } && item.Attempt == message.Attempt)
                    {
                        await db.Items.Where(i => i.Id == message.ItemId && i.State == ItemState.Running && i.Attempt == message.Attempt)
                            .ExecuteUpdateAsync(s => s.SetProperty(i => i.HeartbeatAt, now), cancellationToken);
                    }

                    continue;
                }

                var changed = await db.Items
                    .Where(i => i.Id == message.ItemId && i.State == ItemState.Queued && i.Attempt == message.Attempt)
                    .ExecuteUpdateAsync(s => s
                        .SetProperty(i => i.State, ItemState.Running)
                        .SetProperty(i => i.WorkerId, message.WorkerId)
                        .SetProperty(i => i.StartedAt, now)
                        .SetProperty(i => i.HeartbeatAt, now)
                        .SetProperty(i => i.StepsDone, 0)
                        .SetProperty(i => i.StepsTotal, (int?)null), cancellationToken);
                if (changed == 0)
                {
                    raced.Add(message);
                }
                else
                {
                    started.Add((message, item));
                }
            }

            var jobStates = new List<(Guid JobId, JobState? State)>();
            // Job rows are locked in id order too: batches touching the same jobs wait for each other, never deadlock.
            foreach (var job in started.GroupBy(s => s.Item.JobId).OrderBy(g => g.Key))
            {
                await JobCounters.MoveAsync(db, job.Key, ItemState.Queued, ItemState.Running, job.Count(), now, cancellationToken);
                jobStates.Add((job.Key, await JobCounters.DeriveAsync(db, job.Key, now, cancellationToken)));
            }

            var submitted = started.Count == 0 ? [] : await SubmittedAtAsync(started.Select(s => s.Item.JobId), cancellationToken);
            await tx.CommitAsync(cancellationToken);
            if (started.Count > 0)
            {
                // Started items leave the dispatcher's window: room for the next units.
                signal.Notify();
            }

            foreach (var (message, item) in started)
            {
                if (submitted.TryGetValue(item.JobId, out var at))
                {
                    metrics.QueueWait(now - at, item.Model, item.Width, item.Height, item.Sampler);
                }

                hub.Publish(WithPart(new JobEvent(JobEventTypes.ItemStarted, item.JobId, item.Index, message.ItemId, message.Attempt, message.WorkerId), item));
            }

            foreach (var (jobId, state) in jobStates)
            {
                PublishJobState(jobId, state);
            }

            pending = raced;
        }

        foreach (var message in pending)
        {
            logger.LogWarning("Item {ItemId} kept changing under ItemStarted; giving up on this delivery", message.ItemId);
        }
    }

    /// <summary>Records one image; see <see cref="RenderedAsync(IReadOnlyList{ItemRendered}, CancellationToken)"/>.</summary>
    public Task RenderedAsync(ItemRendered message, CancellationToken cancellationToken) => RenderedAsync([message], cancellationToken);

    /// <summary>
    /// Records a batch of images in one transaction, as <see cref="StartedAsync(IReadOnlyList{ItemStarted}, CancellationToken)"/>
    /// does starts. A hires job's parts are recorded one at a time within it, because each success may release the
    /// next parts and must see the counters as of itself (two last tiles in one batch would otherwise both release
    /// the stitch).
    /// </summary>
    public async Task RenderedAsync(IReadOnlyList<ItemRendered> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var pending = messages.DistinctBy(m => m.ItemId).ToList();
        for (var race = 0; race < MaxRaces && pending.Count > 0; race++)
        {
            var now = Now();
            await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
            var items = await ReadAsync(pending.Select(m => m.ItemId), cancellationToken);
            var done = new List<(ItemRendered Message, Snapshot Item, ItemState From)>();
            var raced = new List<ItemRendered>();
            foreach (var message in pending.OrderBy(m => m.ItemId))
            {
                // A final item already has its one image or its one failure: duplicates change nothing. A success
                // of an older attempt is still a good image (same key, same bytes), so it is taken.
                if (!items.TryGetValue(message.ItemId, out var item) || ItemStateMachine.IsFinal(item.State) || message.Attempt > item.Attempt)
                {
                    continue;
                }

                var from = item.State;
                var attempt = item.Attempt;
                var sha256 = ImageHashes.Normalize(message.Sha256);
                var modelHash = ImageHashes.Normalize(message.ModelHash);
                var changed = await db.Items
                    .Where(i => i.Id == message.ItemId && i.State == from && i.Attempt == attempt)
                    .ExecuteUpdateAsync(s => s
                        .SetProperty(i => i.State, ItemState.Succeeded)
                        .SetProperty(i => i.ArtifactKey, message.ArtifactKey)
                        .SetProperty(i => i.Sha256, sha256)
                        .SetProperty(i => i.ModelHash, modelHash)
                        .SetProperty(i => i.Safety, SafetyOutcome(message.Safety))
                        .SetProperty(i => i.RenderSeconds, message.Elapsed.TotalSeconds)
                        .SetProperty(i => i.WorkerId, message.WorkerId)
                        .SetProperty(i => i.FinishedAt, now)
                        .SetProperty(i => i.RetryAt, (DateTime?)null)
                        .SetProperty(i => i.Error, (string?)null)
                        .SetProperty(i => i.StepsDone, i => i.Steps), cancellationToken);
                if (changed == 0)
                {
                    raced.Add(message);
                }
                else
                {
                    done.Add((message, item, from));
                }
            }

            var released = new List<OutboxRow>();
            var jobStates = new List<(Guid JobId, JobState? State)>();
            foreach (var job in done.GroupBy(d => d.Item.JobId).OrderBy(g => g.Key))
            {
                if (job.First().Item.Hires)
                {
                    foreach (var (_, item, from) in job.OrderBy(d => d.Item.Index))
                    {
                        await JobCounters.MoveAsync(db, job.Key, from, ItemState.Succeeded, 1, now, cancellationToken);
                        released.AddRange(await HiresJobs.AfterSuccessAsync(db, job.Key, item.Index, item.Mode, now, cancellationToken));
                    }
                }
                else
                {
                    var delta = new Dictionary<ItemState, long> { [ItemState.Succeeded] = job.Count() };
                    foreach (var from in job.GroupBy(d => d.From))
                    {
                        delta[from.Key] = -from.Count();
                    }

                    await JobCounters.ShiftAsync(db, job.Key, delta, now, cancellationToken);
                }

                jobStates.Add((job.Key, await JobCounters.DeriveAsync(db, job.Key, now, cancellationToken)));
            }

            if (released.Count > 0)
            {
                await dialect.WriteOutboxAsync(db, released, cancellationToken);
            }

            await tx.CommitAsync(cancellationToken);
            if (released.Count > 0)
            {
                signal.Notify();
            }

            foreach (var (message, item, _) in done)
            {
                metrics.Completed(item.Model, item.Mode);
                hub.Publish(WithPart(new JobEvent(JobEventTypes.ItemDone, item.JobId, item.Index, message.ItemId, message.Attempt, message.WorkerId,
                    Url: CoordinatorRoutes.ImageUrl(item.JobId, item.Index)), item));
            }

            foreach (var (jobId, state) in jobStates)
            {
                PublishJobState(jobId, state);
            }

            pending = raced;
        }

        foreach (var message in pending)
        {
            logger.LogWarning("Item {ItemId} kept changing under ItemRendered; giving up on this delivery", message.ItemId);
        }
    }

    public async Task FailedAsync(ItemFailed message, CancellationToken cancellationToken)
    {
        for (var race = 0; race < MaxRaces; race++)
        {
            var now = Now();
            await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
            var item = await ReadAsync(message.ItemId, cancellationToken);
            if (item is null || item.Attempt != message.Attempt || item.State is not (ItemState.Queued or ItemState.Running))
            {
                return;
            }

            var from = item.State;
            var to = _retry.StateAfterFailure(message.Attempt, message.Retryable);
            DateTime? retryAt = to == ItemState.Retrying ? _retry.RetryAt(message.Attempt, new DateTimeOffset(now)).UtcDateTime : null;
            DateTime? finishedAt = to == ItemState.Failed ? now : null;
            var changed = await db.Items
                .Where(i => i.Id == message.ItemId && i.State == from && i.Attempt == message.Attempt)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(i => i.State, to)
                    .SetProperty(i => i.Error, message.Reason)
                    .SetProperty(i => i.WorkerId, message.WorkerId)
                    .SetProperty(i => i.RetryAt, retryAt)
                    .SetProperty(i => i.HeartbeatAt, (DateTime?)null)
                    .SetProperty(i => i.FinishedAt, finishedAt), cancellationToken);
            if (changed == 0)
            {
                continue;
            }

            await JobCounters.MoveAsync(db, item.JobId, from, to, 1, now, cancellationToken);
            var jobState = await JobCounters.DeriveAsync(db, item.JobId, now, cancellationToken);
            await tx.CommitAsync(cancellationToken);
            metrics.Failed(item.Model, item.Mode, to);

            hub.Publish(WithPart(new JobEvent(to == ItemState.Retrying ? JobEventTypes.ItemRetrying : JobEventTypes.ItemFailed,
                item.JobId, item.Index, message.ItemId, message.Attempt, message.WorkerId, Error: message.Reason), item));
            PublishJobState(item.JobId, jobState);
            return;
        }

        logger.LogWarning("Item {ItemId} kept changing under ItemFailed; giving up on this delivery", message.ItemId);
    }

    /// <summary>Upserts the worker's row and renews the leases of the items it says it is rendering.</summary>
    public async Task HeartbeatAsync(WorkerHeartbeat message, CancellationToken cancellationToken)
    {
        var now = Now();
        List<string> providers = [.. message.ExecutionProviders];
        List<string> models = [.. message.LoadedModels];
        List<Guid> current = [.. message.CurrentItemIds];
        DateTime? storeUnreachableSince = message.StoreUnreachableSince?.UtcDateTime;

        for (var race = 0; race < MaxRaces; race++)
        {
            var updated = await db.Workers.Where(w => w.Id == message.WorkerId).ExecuteUpdateAsync(s => s
                .SetProperty(w => w.Host, message.Host)
                .SetProperty(w => w.DeviceName, message.DeviceName)
                .SetProperty(w => w.MemoryTotalBytes, message.MemoryTotalBytes)
                .SetProperty(w => w.MemoryFreeBytes, message.MemoryFreeBytes)
                .SetProperty(w => w.MemoryBudgetBytes, message.MemoryBudgetBytes)
                .SetProperty(w => w.ExecutionProviders, providers)
                .SetProperty(w => w.LoadedModels, models)
                .SetProperty(w => w.CurrentItemIds, current)
                .SetProperty(w => w.State, message.State)
                .SetProperty(w => w.Strategy, message.Strategy)
                .SetProperty(w => w.Pool, message.Pool)
                .SetProperty(w => w.StoreUnreachableSince, storeUnreachableSince)
                .SetProperty(w => w.LastHeartbeatAt, now), cancellationToken);
            if (updated > 0)
            {
                break;
            }

            db.Workers.Add(new WorkerRow
            {
                Id = message.WorkerId,
                Host = message.Host,
                DeviceName = message.DeviceName,
                MemoryTotalBytes = message.MemoryTotalBytes,
                MemoryFreeBytes = message.MemoryFreeBytes,
                MemoryBudgetBytes = message.MemoryBudgetBytes,
                ExecutionProviders = providers,
                LoadedModels = models,
                CurrentItemIds = current,
                State = message.State,
                Strategy = message.Strategy,
                Pool = message.Pool,
                FirstSeenAt = now,
                LastHeartbeatAt = now,
                StoreUnreachableSince = storeUnreachableSince,
            });
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                break;
            }
            catch (DbUpdateException)
            {
                // Another coordinator inserted the same worker first: update its row instead.
                db.ChangeTracker.Clear();
            }
        }

        if (current.Count > 0)
        {
            var workerId = message.WorkerId;
            await db.Items.Where(i => current.Contains(i.Id) && i.State == ItemState.Running && i.WorkerId == workerId)
                .ExecuteUpdateAsync(s => s.SetProperty(i => i.HeartbeatAt, now), cancellationToken);
        }
    }

    /// <summary>A worker's safety outcome as the ledger keeps it; anything but the three words a stored image can carry is dropped, as a malformed hash is.</summary>
    private static string? SafetyOutcome(string? reported) =>
        reported is "passed" or "flagged" or "blurred" ? reported : null;

    private static readonly Expression<Func<ItemRow, Snapshot>> ToSnapshot =
        i => new Snapshot(i.Id, i.JobId, i.Index, i.State, i.Attempt, i.Mode, i.Hires != null, i.Model, i.Width, i.Height, i.Sampler);

    private async Task<Dictionary<Guid, DateTime>> SubmittedAtAsync(IEnumerable<Guid> jobIds, CancellationToken cancellationToken)
    {
        var ids = jobIds.Distinct().ToList();
        return await db.Jobs.AsNoTracking().Where(j => ids.Contains(j.Id)).ToDictionaryAsync(j => j.Id, j => j.CreatedAt, cancellationToken);
    }

    private Task<Snapshot?> ReadAsync(Guid itemId, CancellationToken cancellationToken) =>
        db.Items.AsNoTracking().Where(i => i.Id == itemId).Select(ToSnapshot).FirstOrDefaultAsync(cancellationToken);

    private async Task<Dictionary<Guid, Snapshot>> ReadAsync(IEnumerable<Guid> itemIds, CancellationToken cancellationToken)
    {
        var ids = itemIds.Distinct().ToList();
        var rows = await db.Items.AsNoTracking().Where(i => ids.Contains(i.Id)).Select(ToSnapshot).ToListAsync(cancellationToken);
        return rows.ToDictionary(r => r.Id);
    }

    // Item indexes of a hires job are base 0, tiles 1..N, stitch N + 1; the mode tells the part without reading the job.
    private static JobEvent WithPart(JobEvent jobEvent, Snapshot item) => !item.Hires ? jobEvent : item.Mode switch
    {
        RenderModes.HiresTile => jobEvent with { Part = HiresRoles.Tile, Tile = checked((int)(item.Index - 1)) },
        RenderModes.HiresStitch => jobEvent with { Part = HiresRoles.Stitch },
        _ => jobEvent with { Part = HiresRoles.Base },
    };

    private void PublishJobState(Guid jobId, JobState? state)
    {
        if (state is { } s)
        {
            hub.Publish(new JobEvent(JobStateMachine.IsFinal(s) ? JobEventTypes.JobDone : JobEventTypes.JobState, jobId, State: s.ToString()));
        }
    }

    private DateTime Now() => clock.GetUtcNow().UtcDateTime;
}
