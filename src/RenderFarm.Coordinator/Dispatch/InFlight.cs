using Microsoft.EntityFrameworkCore;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Dispatch;

/// <summary>What is dispatched and not finished, as the window and the fair share count it.</summary>
/// <param name="SharedQueued">Items sent to the shared queue and not started: what the shared queue's window holds.</param>
/// <param name="ByJob">Per job: items sent and not started (either queue) plus items running.</param>
internal sealed record InFlight(long SharedQueued, IReadOnlyDictionary<Guid, long> ByJob)
{
    /// <summary>
    /// Two grouped reads: queued items with <see cref="ItemRow.AssignedAt"/> set (the (state, assigned at) index keeps
    /// it to the sent ones, never the million waiting in the outbox), and the running counters of unfinished jobs.
    /// </summary>
    public static async Task<InFlight> ReadAsync(CoordinatorDbContext db, CancellationToken cancellationToken)
    {
        var sent = await db.Items.AsNoTracking()
            .Where(i => i.State == ItemState.Queued && i.AssignedAt != null)
            .GroupBy(i => new { i.JobId, Shared = i.AssignedWorkerId == null })
            .Select(g => new { g.Key.JobId, g.Key.Shared, Count = g.LongCount() })
            .ToListAsync(cancellationToken);
        var running = await db.Jobs.AsNoTracking()
            .Where(j => (j.State == JobState.Queued || j.State == JobState.Running) && j.RunningItems > 0)
            .Select(j => new { j.Id, j.RunningItems })
            .ToListAsync(cancellationToken);
        var byJob = new Dictionary<Guid, long>();
        foreach (var group in sent)
        {
            byJob[group.JobId] = byJob.GetValueOrDefault(group.JobId) + group.Count;
        }

        foreach (var job in running)
        {
            byJob[job.Id] = byJob.GetValueOrDefault(job.Id) + job.RunningItems;
        }

        return new InFlight(sent.Where(g => g.Shared).Sum(g => g.Count), byJob);
    }
}
