using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Monitoring;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.States;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>The hires part of a job's view: a page of its tiles and where the final image is once stitched.</summary>
/// <param name="Tiles">Tiles with an index above the page's cursor, in index order.</param>
/// <param name="ResultImage">URL of the stitched image; null until the stitch has succeeded.</param>
internal sealed record HiresJobView(IReadOnlyList<JobTile> Tiles, string? ResultImage);

/// <summary>Reads the hires view of a job: geometry from the accepted request, states from the tile items.</summary>
internal static class HiresView
{
    public const int DefaultTilesLimit = 1000;

    public const int MaxTilesLimit = 10_000;

    /// <summary>The view of a hires job, or null when the job is missing or not a hires job.</summary>
    /// <param name="db">The coordinator's database.</param>
    /// <param name="jobId">The job.</param>
    /// <param name="tilesAfter">Cursor: only tiles with a larger index (-1 for the first page).</param>
    /// <param name="tilesLimit">Most tiles returned (clamped to <see cref="MaxTilesLimit"/>).</param>
    /// <param name="cancellationToken">Cancels the reads.</param>
    public static async Task<HiresJobView?> ReadAsync(CoordinatorDbContext db, Guid jobId, long tilesAfter, int tilesLimit, CancellationToken cancellationToken)
    {
        var job = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId && (j.Mode == RenderModes.Hires || j.Mode == RenderModes.Upscale))
            .Select(j => new { j.Request, j.TotalItems }).FirstOrDefaultAsync(cancellationToken);
        if (job is null)
        {
            return null;
        }

        // The stored request has its hires defaults resolved at submission, so this is the grid the items were cut from.
        var request = JsonSerializer.Deserialize<JobRequest>(job.Request, JobSubmission.RequestJson)
            ?? throw new InvalidOperationException($"Job {jobId} has no stored request.");
        var grid = TileGrid.Create(request.Width, request.Height, request.Tile ?? HiresLimits.DefaultTile, request.Overlap ?? HiresLimits.DefaultOverlap);
        var stitch = job.TotalItems - 1;
        var fromItem = HiresExpansion.ItemIndexOfTile((int)Math.Clamp(tilesAfter + 1, 0, grid.Tiles.Count));
        var limit = Math.Clamp(tilesLimit, 0, MaxTilesLimit);
        var items = await db.Items.AsNoTracking()
            .Where(i => i.JobId == jobId && i.Index >= fromItem && i.Index < stitch)
            .OrderBy(i => i.Index).Take(limit)
            .Select(i => new { i.Index, i.WorkerId, i.State })
            .ToListAsync(cancellationToken);
        var tiles = items.Select(i =>
        {
            var t = grid.Tiles[(int)(i.Index - 1)];
            return new JobTile(t.Index, t.X, t.Y, t.Width, t.Height, i.WorkerId, i.State);
        }).ToList();

        var stitched = await db.Items.AsNoTracking()
            .AnyAsync(i => i.JobId == jobId && i.Index == stitch && i.State == ItemState.Succeeded, cancellationToken);
        return new HiresJobView(tiles, stitched ? CoordinatorRoutes.ImageUrl(jobId, stitch) : null);
    }
}
