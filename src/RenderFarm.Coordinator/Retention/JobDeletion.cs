using Microsoft.EntityFrameworkCore;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;
using RenderFarm.Storage;

namespace RenderFarm.Coordinator.Retention;

/// <summary>What a delete found.</summary>
internal enum DeleteOutcome
{
    Deleted,
    NotFound,
    NotFinished,
}

/// <summary>
/// Deletes a finished job: every object under its folder in the store (images, hires bases and tiles, inputs), then
/// its rows (items and idempotency keys go with the job, outbox rows explicitly). One path for <c>DELETE
/// /v1/jobs/{id}</c> and the retention service.
/// </summary>
/// <remarks>
/// Objects go first and rows last, so a delete cut short (a crash, the store down) leaves the job listed, and
/// deleting it again finishes the work; the other order would leave objects nobody can find to delete. An unfinished
/// job is refused: its workers are still writing into its folder.
/// </remarks>
internal sealed class JobDeletion(CoordinatorDbContext db, IDatabaseDialect dialect, IArtifactStore store)
{
    public async Task<(DeleteOutcome Outcome, JobState? State, int Objects)> DeleteAsync(Guid jobId, CancellationToken cancellationToken)
    {
        var state = await db.Jobs.Where(j => j.Id == jobId).Select(j => (JobState?)j.State).FirstOrDefaultAsync(cancellationToken);
        if (state is null)
        {
            return (DeleteOutcome.NotFound, null, 0);
        }

        if (!JobStateMachine.IsFinal(state.Value))
        {
            return (DeleteOutcome.NotFinished, state, 0);
        }

        var objects = 0;
        var keys = new List<string>();
        // A WebDataset job's shards, stats and leftover parts (a late duplicate delivery's) live under its dataset folder.
        foreach (var prefix in new[] { ArtifactKeys.JobPrefix(jobId), ArtifactKeys.DatasetPrefix(jobId) })
        {
            await foreach (var artifact in store.ListAsync(prefix, cancellationToken))
            {
                keys.Add(artifact.Key);
            }
        }

        foreach (var key in keys)
        {
            await store.DeleteAsync(key, cancellationToken);
            objects++;
        }

        // Deletes of one job, or a delete beside a retry of it, conflict in the database (PostgreSQL deadlocks, SQLite
        // busy): retried like every other writer's transaction, not answered as a 500 (seen in the fuzz test).
        var rows = await dialect.RetryOnConflict(db).ExecuteAsync(
            jobId,
            (_, id, ct) => DeleteRowsOnceAsync(id, ct),
            verifySucceeded: null,
            cancellationToken);
        return (rows.Outcome, rows.State ?? state, objects);
    }

    private async Task<(DeleteOutcome Outcome, JobState? State)> DeleteRowsOnceAsync(Guid jobId, CancellationToken cancellationToken)
    {
        db.ChangeTracker.Clear();
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);

        // The job row first, as a retry takes it, so the two serialize instead of deadlocking; and only while the job
        // is still final: a retry that reopened it since the check above owns it again (its workers write into its
        // folder), and a delete that got here first leaves nothing to delete.
        var locked = await db.Jobs
            .Where(j => j.Id == jobId && JobStateMachine.FinalStates.Contains(j.State))
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.UpdatedAt, j => j.UpdatedAt), cancellationToken);
        if (locked == 0)
        {
            var now = await db.Jobs.Where(j => j.Id == jobId).Select(j => (JobState?)j.State).FirstOrDefaultAsync(cancellationToken);
            return now is null ? (DeleteOutcome.NotFound, null) : (DeleteOutcome.NotFinished, now);
        }

        await db.Outbox.Where(o => o.JobId == jobId).ExecuteDeleteAsync(cancellationToken);
        await db.DatasetShards.Where(s => s.JobId == jobId).ExecuteDeleteAsync(cancellationToken);
        await db.IdempotencyKeys.Where(k => k.JobId == jobId).ExecuteDeleteAsync(cancellationToken);
        await db.Items.Where(i => i.JobId == jobId).ExecuteDeleteAsync(cancellationToken);
        await db.Jobs.Where(j => j.Id == jobId).ExecuteDeleteAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return (DeleteOutcome.Deleted, null);
    }
}
