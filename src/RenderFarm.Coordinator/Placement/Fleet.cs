using Microsoft.EntityFrameworkCore;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Placement;

/// <summary>Reads the live fleet (fresh heartbeat, not draining) as placement sees it.</summary>
internal static class Fleet
{
    /// <summary>
    /// A worker whose heartbeat lapsed less than this many leases ago (and that did not drain) is "absent", not
    /// gone: it may be restarting and come back to the shared queue (see <see cref="PlacementPolicy.Place"/>).
    /// </summary>
    public const int AbsentLeases = 10;

    /// <summary>Workers not live now whose last heartbeat is at or after <paramref name="seenAfter"/> and that did not drain.</summary>
    public static async Task<List<WorkerCapacity>> ReadAbsentAsync(CoordinatorDbContext db, DateTime liveAfter, DateTime seenAfter, CancellationToken cancellationToken)
    {
        var rows = await db.Workers.AsNoTracking()
            .Where(w => w.LastHeartbeatAt < liveAfter && w.LastHeartbeatAt >= seenAfter && w.State != WorkerState.Draining)
            .Select(w => new { w.Id, w.MemoryBudgetBytes, w.MaxPixels, w.ResidentMaxPixels })
            .ToListAsync(cancellationToken);
        return [.. rows.Select(w => new WorkerCapacity(w.Id, w.MemoryBudgetBytes, w.MaxPixels, w.ResidentMaxPixels, [], [], null, 0, 0))];
    }

    /// <summary>
    /// Workers whose last heartbeat is at or after <paramref name="liveAfter"/> and that are not draining; with
    /// <paramref name="withLoad"/>, each with the count of items placed on it and not started yet (one grouped
    /// query over the (state, assigned worker) index).
    /// </summary>
    public static async Task<List<WorkerCapacity>> ReadLiveAsync(CoordinatorDbContext db, DateTime liveAfter, bool withLoad, CancellationToken cancellationToken)
    {
        var rows = await db.Workers.AsNoTracking()
            .Where(w => w.LastHeartbeatAt >= liveAfter && w.State != WorkerState.Draining)
            .ToListAsync(cancellationToken);
        if (rows.Count == 0)
        {
            return [];
        }

        var assigned = new Dictionary<string, int>(StringComparer.Ordinal);
        if (withLoad)
        {
            var counts = await db.Items.AsNoTracking()
                .Where(i => i.State == ItemState.Queued && i.AssignedWorkerId != null)
                .GroupBy(i => i.AssignedWorkerId!)
                .Select(g => new { WorkerId = g.Key, Count = g.Count() })
                .ToListAsync(cancellationToken);
            foreach (var count in counts)
            {
                assigned[count.WorkerId] = count.Count;
            }
        }

        return [.. rows.Select(w => new WorkerCapacity(
            w.Id, w.MemoryBudgetBytes, w.MaxPixels, w.ResidentMaxPixels, w.LoadedModels, w.InstalledModels, w.RenderQueue,
            w.CurrentItemIds.Count, assigned.GetValueOrDefault(w.Id)))];
    }

    /// <summary>
    /// Every worker whose last heartbeat is at or after <paramref name="seenAfter"/> (live or not, draining or not),
    /// with its capacity as placement sees it, including the items placed on it and not started yet.
    /// </summary>
    public static async Task<List<(WorkerRow Row, WorkerCapacity Capacity)>> ReadRecentAsync(CoordinatorDbContext db, DateTime seenAfter, CancellationToken cancellationToken)
    {
        var rows = await db.Workers.AsNoTracking()
            .Where(w => w.LastHeartbeatAt >= seenAfter)
            .OrderBy(w => w.Id)
            .ToListAsync(cancellationToken);
        if (rows.Count == 0)
        {
            return [];
        }

        var assigned = await db.Items.AsNoTracking()
            .Where(i => i.State == ItemState.Queued && i.AssignedWorkerId != null)
            .GroupBy(i => i.AssignedWorkerId!)
            .Select(g => new { WorkerId = g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.WorkerId, g => g.Count, StringComparer.Ordinal, cancellationToken);
        return [.. rows.Select(w => (w, new WorkerCapacity(
            w.Id, w.MemoryBudgetBytes, w.MaxPixels, w.ResidentMaxPixels, w.LoadedModels, w.InstalledModels, w.RenderQueue,
            w.CurrentItemIds.Count, assigned.GetValueOrDefault(w.Id))))];
    }

    /// <summary>Saves what a heartbeat says about the worker's capacity (the columns placement reads) on its row.</summary>
    /// <remarks>Runs after <c>ItemLedger.HeartbeatAsync</c> has upserted the row, in the same consumer call.</remarks>
    public static Task SaveCapacityAsync(CoordinatorDbContext db, WorkerHeartbeat heartbeat, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        List<string> installed = [.. heartbeat.InstalledModels ?? []];
        var id = heartbeat.WorkerId;
        return db.Workers.Where(w => w.Id == id).ExecuteUpdateAsync(s => s
            .SetProperty(w => w.MaxPixels, Math.Max(0, heartbeat.MaxPixels))
            .SetProperty(w => w.ResidentMaxPixels, Math.Max(0, heartbeat.ResidentMaxPixels))
            .SetProperty(w => w.InstalledModels, installed)
            .SetProperty(w => w.RenderQueue, heartbeat.RenderQueue), cancellationToken);
    }
}
