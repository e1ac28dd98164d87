using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Dispatch;
using RenderFarm.Coordinator.Events;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.Items;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>What a retry request found.</summary>
internal abstract record RetryOutcome
{
    private RetryOutcome()
    {
    }

    public sealed record Requeued(long Items, JobState State) : RetryOutcome;

    public sealed record NotFound : RetryOutcome;

    /// <summary>The job has no failed or canceled item.</summary>
    public sealed record NothingToRetry(JobState State) : RetryOutcome;

    /// <summary>A hires job's parts depend on each other (tiles on the base, the stitch on the tiles).</summary>
    public sealed record HiresUnsupported : RetryOutcome;
}

/// <summary>
/// Queues a new attempt of every failed and canceled item of a job, with the same seeds and parameters, through
/// the normal path: the items become Queued with the next attempt number, the job's counters and state follow, and
/// outbox rows of their work units are written, all in one transaction; the dispatcher sends them.
/// </summary>
/// <remarks>
/// Completions of the old attempts that arrive later are stale (attempt numbers differ) and change nothing. A
/// canceled job's workers remember the cancel; they render the retry's units because those are dispatched after it
/// (<see cref="RenderWorkUnit.DispatchedAt"/>). Each retried item gets one more attempt; if it fails again the
/// ledger's usual retry limit applies to the new attempt count.
/// </remarks>
internal sealed class JobRetry(
    CoordinatorDbContext db,
    IDatabaseDialect dialect,
    JobEventHub hub,
    OutboxSignal signal,
    TimeProvider clock,
    IOptions<CoordinatorOptions> options)
{
    private readonly WorkUnitPlanner _planner = new(options.Value.WorkUnitSize);
    private readonly int _pageSize = options.Value.InsertPageSize;

    public Task<RetryOutcome> RetryAsync(Guid jobId, CancellationToken cancellationToken) =>
        dialect.RetryOnConflict(db).ExecuteAsync(
            jobId,
            (_, id, ct) => RetryOnceAsync(id, ct),
            verifySucceeded: null,
            cancellationToken);

    private async Task<RetryOutcome> RetryOnceAsync(Guid jobId, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);

        // The job row first, unlike every other writer (items first): the items this moves are final, and no other
        // writer locks final items, so no cycle can form; and holding the job serializes two retries of one job,
        // so each item is queued (and dispatched) once.
        if (await JobCounters.ShiftAsync(db, jobId, new Dictionary<ItemState, long>(), now, cancellationToken) == 0)
        {
            return new RetryOutcome.NotFound();
        }

        db.ChangeTracker.Clear();
        var job = await db.Jobs.AsNoTracking().FirstAsync(j => j.Id == jobId, cancellationToken);
        if (RenderModes.IsTiled(job.Mode))
        {
            return new RetryOutcome.HiresUnsupported();
        }

        if (job.FailedItems + job.CanceledItems == 0)
        {
            return new RetryOutcome.NothingToRetry(job.State);
        }

        long failed = 0, canceled = 0;
        var after = -1L;
        while (true)
        {
            var page = await db.Items.AsNoTracking()
                .Where(i => i.JobId == jobId && i.Index > after && (i.State == ItemState.Failed || i.State == ItemState.Canceled))
                .OrderBy(i => i.Index).Take(_pageSize)
                .ToListAsync(cancellationToken);
            if (page.Count == 0)
            {
                break;
            }

            after = page[^1].Index;
            var ids = page.Select(i => i.Id).ToList();
            failed += page.Count(i => i.State == ItemState.Failed);
            canceled += page.Count(i => i.State == ItemState.Canceled);

            // Error stays: it tells why the item is being retried, and the new attempt's success clears it.
            await db.Items.Where(i => ids.Contains(i.Id)).ExecuteUpdateAsync(s => s
                .SetProperty(i => i.State, ItemState.Queued)
                .SetProperty(i => i.Attempt, i => i.Attempt + 1)
                .SetProperty(i => i.WorkerId, (string?)null)
                .SetProperty(i => i.StartedAt, (DateTime?)null)
                .SetProperty(i => i.HeartbeatAt, (DateTime?)null)
                .SetProperty(i => i.RetryAt, (DateTime?)null)
                .SetProperty(i => i.FinishedAt, (DateTime?)null)
                .SetProperty(i => i.StepsDone, 0)
                .SetProperty(i => i.StepsTotal, (int?)null)
                .SetProperty(i => i.AssignedWorkerId, (string?)null)
                .SetProperty(i => i.AssignedAt, (DateTime?)null), cancellationToken);
            await dialect.WriteOutboxAsync(db, WorkUnitOutbox.RowsFor(page, _planner, now), cancellationToken);
        }

        await JobCounters.ShiftAsync(db, jobId, new Dictionary<ItemState, long>
        {
            [ItemState.Failed] = -failed,
            [ItemState.Canceled] = -canceled,
            [ItemState.Queued] = failed + canceled,
        }, now, cancellationToken);

        // A final job is open again: Queued when nothing else of it is unfinished and nothing succeeded, else Running.
        var counts = CoordinatorDbContext.CountsOf(job) with
        {
            Queued = job.QueuedItems + failed + canceled,
            Failed = job.FailedItems - failed,
            Canceled = job.CanceledItems - canceled,
        };
        var state = JobStateMachine.Derive(counts, partialSuccess: !RenderModes.IsTiled(job.Mode));
        await db.Jobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.State, state)
            .SetProperty(j => j.FinishedAt, (DateTime?)null)
            // A WebDataset's shards of the retried items are assembled again once those items are final.
            .SetProperty(j => j.DatasetPublishedAt, (DateTime?)null)
            .SetProperty(j => j.CancelReason, (string?)null), cancellationToken);
        await tx.CommitAsync(cancellationToken);

        signal.Notify();
        hub.Publish(new JobEvent(JobEventTypes.JobState, jobId, State: state.ToString()));
        return new RetryOutcome.Requeued(failed + canceled, state);
    }
}
