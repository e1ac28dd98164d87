using Microsoft.EntityFrameworkCore;
using RenderFarm.Coordinator.Dispatch;
using RenderFarm.Coordinator.Events;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>What a cancel request found.</summary>
internal enum CancelOutcome
{
    Canceled,
    NotFound,
    AlreadyFinished,
}

/// <summary>
/// Cancels a job: every unfinished item becomes Canceled, the job becomes Canceled, pending work units are
/// dropped from the outbox and a <c>JobCanceled</c> event is queued in it, all in one transaction. Workers
/// stop running items between denoising steps when the event reaches them; whatever they report afterwards
/// finds a final item and changes nothing.
/// </summary>
internal sealed class JobCancellation(CoordinatorDbContext db, IDatabaseDialect dialect, JobEventHub hub, OutboxSignal signal, TimeProvider clock)
{
    private static readonly ItemState[] Unfinished = [ItemState.Queued, ItemState.Running, ItemState.Retrying];

    public Task<CancelOutcome> CancelAsync(Guid jobId, string? reason, CancellationToken cancellationToken) =>
        dialect.RetryOnConflict(db).ExecuteAsync(
            (jobId, reason),
            (_, state, ct) => CancelOnceAsync(state.jobId, state.reason, ct),
            verifySucceeded: null,
            cancellationToken);

    private async Task<CancelOutcome> CancelOnceAsync(Guid jobId, string? reason, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var state = await db.Jobs.Where(j => j.Id == jobId).Select(j => (JobState?)j.State).FirstOrDefaultAsync(cancellationToken);
        if (state is null)
        {
            return CancelOutcome.NotFound;
        }

        if (JobStateMachine.IsFinal(state.Value))
        {
            return CancelOutcome.AlreadyFinished;
        }

        // Items first (all of them, in id order), job second: the lock order every other writer uses.
        await dialect.LockUnfinishedItemsAsync(db, jobId, cancellationToken);
        var delta = new Dictionary<ItemState, long>();
        long canceled = 0;
        foreach (var from in Unfinished)
        {
            var n = await db.Items.Where(i => i.JobId == jobId && i.State == from)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(i => i.State, ItemState.Canceled)
                    .SetProperty(i => i.FinishedAt, now)
                    .SetProperty(i => i.RetryAt, (DateTime?)null), cancellationToken);
            delta[from] = -n;
            canceled += n;
        }

        delta[ItemState.Canceled] = canceled;
        await JobCounters.ShiftAsync(db, jobId, delta, now, cancellationToken);
        var moved = await db.Jobs
            .Where(j => j.Id == jobId && !JobStateMachine.FinalStates.Contains(j.State))
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.State, JobState.Canceled)
                .SetProperty(j => j.CancelReason, reason)
                .SetProperty(j => j.FinishedAt, now), cancellationToken);
        if (moved == 0)
        {
            // Its last item finished while we were canceling the rest (there were none left).
            return CancelOutcome.AlreadyFinished;
        }

        await db.Outbox.Where(o => o.JobId == jobId && o.Kind == OutboxKind.WorkUnit).ExecuteDeleteAsync(cancellationToken);
        await dialect.WriteOutboxAsync(db, [new OutboxRow
        {
            Kind = OutboxKind.JobCanceled,
            JobId = jobId,
            Payload = reason,
            CreatedAt = now,
            AvailableAt = now,
        }], cancellationToken);
        await tx.CommitAsync(cancellationToken);

        signal.Notify();
        hub.Publish(new JobEvent(JobEventTypes.JobDone, jobId, State: nameof(JobState.Canceled)));
        return CancelOutcome.Canceled;
    }
}
