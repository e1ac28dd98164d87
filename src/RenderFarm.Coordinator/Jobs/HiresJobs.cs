using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>
/// The coordinator's side of hires jobs: writing their items, and the gates between their parts. A hires job is
/// base (item 0) → tiles (items 1..N) → stitch (item N + 1), every part an ordinary item (leases, retries, cancel and
/// placement apply unchanged); what makes it a pipeline is only when each part gets its outbox rows.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Submission writes every item but an outbox row for the base alone (for the tiles at once when the client
/// gave the base image, which is then recorded as the base item's image).</item>
/// <item>The transaction that records the base's image writes the tiles' outbox rows; the one that records the last
/// tile's image writes the stitch's. Each success is recorded once (conditional update on the item), so each
/// release happens once, and the job row lock taken by the counter update orders concurrent last tiles.</item>
/// <item>When the base or a tile fails for good, the items that can never be released (the waiting tiles, the
/// stitch) fail with it in the same transaction, so the job ends Failed instead of waiting forever.</item>
/// </list>
/// Unreleased items sit Queued with no outbox row: the dispatcher never sees them and the job counts them as queued.
/// </remarks>
internal static class HiresJobs
{
    internal static readonly JsonSerializerOptions PartJson = new(JsonSerializerDefaults.Web);

    /// <summary>The reason recorded on tiles and stitch that fail because the base did.</summary>
    public const string BaseFailedError = "Not rendered: the base image of this hires job failed for good (see item 0's error).";

    /// <summary>The reason recorded on a stitch that fails because a tile did.</summary>
    public const string TileFailedError = "Not stitched: a tile of this hires job failed for good (see the tile's error).";

    /// <summary>The item rows of a hires job; the base is already succeeded when the client gave its image.</summary>
    public static List<ItemRow> Rows(Guid jobId, HiresExpansion expansion, DateTime now)
    {
        var rows = new List<ItemRow>(checked((int)expansion.Count));
        foreach (var item in expansion.Items)
        {
            var row = ItemMessages.ToRow(jobId, item.Spec);
            row.Hires = JsonSerializer.Serialize(item.Part, PartJson);
            rows.Add(row);
        }

        if (expansion.BaseImage is { } given)
        {
            var baseRow = rows[(int)HiresExpansion.BaseIndex];
            baseRow.State = ItemState.Succeeded;
            baseRow.ArtifactKey = given.Key;
            baseRow.FinishedAt = now;
            baseRow.StepsDone = baseRow.Steps;
        }

        return rows;
    }

    /// <summary>Outbox rows that release items <paramref name="first"/>..<paramref name="last"/>, one per item.</summary>
    /// <remarks>
    /// One item per unit, whatever <c>Coordinator:WorkUnitSize</c> says: a tile is a full-size render, and a unit of
    /// eight would keep eight tiles on one worker while the others idle; spreading tiles is the point of the farm.
    /// </remarks>
    public static IEnumerable<OutboxRow> Release(Guid jobId, long first, long last, DateTime now)
    {
        for (var index = first; index <= last; index++)
        {
            yield return new OutboxRow
            {
                Kind = OutboxKind.WorkUnit,
                JobId = jobId,
                FirstIndex = index,
                ItemCount = 1,
                // The submission's trace, or the completion's that released the next parts: a hires job's tiles and
                // stitch stay in the trace of what let them run.
                Payload = System.Diagnostics.Activity.Current?.Id,
                CreatedAt = now,
                AvailableAt = now,
            };
        }
    }

    /// <summary>
    /// After an item of a hires job succeeded (inside the transaction that recorded it, after its job's counters moved):
    /// releases the tiles when it was the base, the stitch when it was the last tile.
    /// </summary>
    /// <returns>The outbox rows to write (empty when nothing is released).</returns>
    public static async Task<IReadOnlyList<OutboxRow>> AfterSuccessAsync(CoordinatorDbContext db, Guid jobId, long index, string mode, DateTime now, CancellationToken cancellationToken)
    {
        var job = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId)
            .Select(j => new { j.Mode, j.TotalItems, j.SucceededItems })
            .FirstOrDefaultAsync(cancellationToken);
        if (job is null || !RenderModes.IsTiled(job.Mode))
        {
            return [];
        }

        var stitch = job.TotalItems - 1;
        if (index == HiresExpansion.BaseIndex)
        {
            return [.. Release(jobId, HiresExpansion.BaseIndex + 1, stitch - 1, now)];
        }

        // Every item but the stitch has its image: this success was the last tile's (counters are read under the job
        // row's lock, which the counter update of this transaction holds).
        return mode == RenderModes.HiresTile && job.SucceededItems == stitch ? [.. Release(jobId, stitch, stitch, now)] : [];
    }

    /// <summary>
    /// Fails the items of a hires job that a terminal failure has made unreachable: every waiting tile and the stitch
    /// when the base failed, the stitch when a tile failed. Called by <see cref="JobCounters.DeriveAsync"/>, so the
    /// ledger and the lease rescuer (a tile whose workers kept dying) both end the job.
    /// </summary>
    /// <remarks>
    /// Runs after the job row is locked; the items it updates were never released, so no worker report can hold
    /// their rows. A concurrent cancel can (it locks the job's unfinished items in id order, and a waiting part may
    /// sort before the failed item): PostgreSQL then aborts one transaction, and each side re-runs its own.
    /// </remarks>
    /// <returns>How many items it failed (their counters already moved).</returns>
    public static async Task<long> FailUnreachableAsync(CoordinatorDbContext db, JobRow job, DateTime now, CancellationToken cancellationToken)
    {
        if (!RenderModes.IsTiled(job.Mode) || job.FailedItems == 0 || job.QueuedItems == 0)
        {
            return 0;
        }

        var jobId = job.Id;
        var stitch = job.TotalItems - 1;
        var baseFailed = await db.Items.AnyAsync(i => i.JobId == jobId && i.Index == HiresExpansion.BaseIndex && i.State == ItemState.Failed, cancellationToken);
        var from = baseFailed ? HiresExpansion.BaseIndex + 1 : stitch;
        var error = baseFailed ? BaseFailedError : TileFailedError;
        var failed = await db.Items
            .Where(i => i.JobId == jobId && i.Index >= from && i.Index <= stitch && i.State == ItemState.Queued)
            .ExecuteUpdateAsync(s => s
                .SetProperty(i => i.State, ItemState.Failed)
                .SetProperty(i => i.Error, error)
                .SetProperty(i => i.FinishedAt, now), cancellationToken);
        if (failed > 0)
        {
            await JobCounters.MoveAsync(db, jobId, ItemState.Queued, ItemState.Failed, failed, now, cancellationToken);
        }

        return failed;
    }
}
