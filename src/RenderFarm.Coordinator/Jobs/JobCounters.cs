using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>Keeps a job's per-state item counters in step with its items, and derives the job's state from them.</summary>
internal static class JobCounters
{
    /// <summary>Adds <paramref name="delta"/> items per state to the job's counters in one set-based UPDATE (which also locks the job row until commit).</summary>
    public static Task<int> ShiftAsync(CoordinatorDbContext db, Guid jobId, IReadOnlyDictionary<ItemState, long> delta, DateTime now, CancellationToken cancellationToken) =>
        db.Jobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s =>
        {
            foreach (var (state, n) in delta)
            {
                if (n != 0)
                {
                    var column = Column(state);
                    s.SetProperty(column, Plus(column, n));
                }
            }

            s.SetProperty(j => j.UpdatedAt, now);
        }, cancellationToken);

    /// <summary>Moves <paramref name="n"/> items of a job from one state's counter to another's.</summary>
    public static Task<int> MoveAsync(CoordinatorDbContext db, Guid jobId, ItemState from, ItemState to, long n, DateTime now, CancellationToken cancellationToken) =>
        ShiftAsync(db, jobId, new Dictionary<ItemState, long> { [from] = -n, [to] = n }, now, cancellationToken);

    /// <summary>
    /// Re-derives the job's state from its counters (<see cref="JobStateMachine.Derive"/>) and stores it when it
    /// changed. Call inside the transaction that shifted the counters, after the shift: the shift holds the
    /// job row's lock, so the counters read here are the ones this transaction commits. For a hires job it first
    /// fails the parts a terminal failure made unreachable (<see cref="HiresJobs.FailUnreachableAsync"/>).
    /// </summary>
    /// <returns>The new state when it changed; null otherwise.</returns>
    public static async Task<JobState?> DeriveAsync(CoordinatorDbContext db, Guid jobId, DateTime now, CancellationToken cancellationToken)
    {
        var job = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId).FirstOrDefaultAsync(cancellationToken);
        if (job is null || JobStateMachine.IsFinal(job.State) || job.TotalItems == 0)
        {
            return null;
        }

        // Hires items waiting on a part that failed for good can never be released; fail them so the job finishes.
        if (await HiresJobs.FailUnreachableAsync(db, job, now, cancellationToken) > 0)
        {
            job = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId).FirstAsync(cancellationToken);
        }

        var derived = JobStateMachine.Derive(CoordinatorDbContext.CountsOf(job), partialSuccess: !RenderModes.IsTiled(job.Mode));
        // Events on different queues arrive in any order, so a job may see its only item finish before it saw
        // it start: Queued → Succeeded is then Queued → Running → Succeeded in one step.
        var allowed = JobStateMachine.CanMove(job.State, derived)
            || (job.State == JobState.Queued && JobStateMachine.CanMove(JobState.Running, derived));
        if (derived == job.State || !allowed)
        {
            return null;
        }

        var finishedAt = JobStateMachine.IsFinal(derived) ? now : (DateTime?)null;
        var old = job.State;
        await db.Jobs.Where(j => j.Id == jobId && j.State == old).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.State, derived)
            .SetProperty(j => j.FinishedAt, finishedAt)
            .SetProperty(j => j.UpdatedAt, now), cancellationToken);
        return derived;
    }

    internal static Expression<Func<JobRow, long>> Column(ItemState state) => state switch
    {
        ItemState.Queued => j => j.QueuedItems,
        ItemState.Running => j => j.RunningItems,
        ItemState.Retrying => j => j.RetryingItems,
        ItemState.Succeeded => j => j.SucceededItems,
        ItemState.Failed => j => j.FailedItems,
        ItemState.Canceled => j => j.CanceledItems,
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    // column + n, with n captured (not inlined) so EF sends it as a parameter and the statement text stays
    // the same for every delta.
    private static Expression<Func<JobRow, long>> Plus(Expression<Func<JobRow, long>> column, long n)
    {
        var box = new DeltaBox(n);
        var value = Expression.Property(Expression.Constant(box), nameof(DeltaBox.Value));
        return Expression.Lambda<Func<JobRow, long>>(Expression.Add(column.Body, value), column.Parameters);
    }

    private sealed class DeltaBox(long value)
    {
        public long Value { get; } = value;
    }
}
