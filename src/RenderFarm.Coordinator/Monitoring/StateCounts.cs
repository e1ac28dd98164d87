using Microsoft.EntityFrameworkCore;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Monitoring;

/// <summary>Jobs and items by state, keyed by the state's name, with every state present (zeros included).</summary>
internal sealed record StateCounts(IReadOnlyDictionary<string, long> Jobs, IReadOnlyDictionary<string, long> Items)
{
    /// <summary>
    /// One grouped read of the jobs table: items are summed from the jobs' per-state counters, never counted row by
    /// row, so the cost does not grow with a million-item job. Shared by the operators' API and the metrics snapshot.
    /// </summary>
    public static async Task<StateCounts> ReadAsync(CoordinatorDbContext db, CancellationToken cancellationToken)
    {
        var byState = await db.Jobs.AsNoTracking().GroupBy(j => j.State).Select(g => new
        {
            State = g.Key,
            Jobs = g.LongCount(),
            Queued = g.Sum(j => j.QueuedItems),
            Running = g.Sum(j => j.RunningItems),
            Retrying = g.Sum(j => j.RetryingItems),
            Succeeded = g.Sum(j => j.SucceededItems),
            Failed = g.Sum(j => j.FailedItems),
            Canceled = g.Sum(j => j.CanceledItems),
        }).ToListAsync(cancellationToken);

        // Every state is reported, so a state that empties drops to 0 instead of vanishing.
        var jobs = Enum.GetValues<JobState>().ToDictionary(s => s.ToString(), s => byState.Where(g => g.State == s).Sum(g => g.Jobs), StringComparer.Ordinal);
        var items = new Dictionary<string, long>(StringComparer.Ordinal)
        {
            [nameof(ItemState.Queued)] = byState.Sum(g => g.Queued),
            [nameof(ItemState.Running)] = byState.Sum(g => g.Running),
            [nameof(ItemState.Retrying)] = byState.Sum(g => g.Retrying),
            [nameof(ItemState.Succeeded)] = byState.Sum(g => g.Succeeded),
            [nameof(ItemState.Failed)] = byState.Sum(g => g.Failed),
            [nameof(ItemState.Canceled)] = byState.Sum(g => g.Canceled),
        };
        return new StateCounts(jobs, items);
    }
}
