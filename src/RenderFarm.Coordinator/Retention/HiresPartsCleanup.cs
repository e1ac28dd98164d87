using Microsoft.EntityFrameworkCore;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;
using RenderFarm.Storage;

namespace RenderFarm.Coordinator.Retention;

/// <summary>
/// Removes the base and tiles of hires jobs whose stitched image is stored: at 16384² they are several times the
/// final image's size and nothing reads them once the stitch has succeeded. The items stay (Succeeded, with their
/// worker, seed and timing); their artifact key is cleared, which is how the image routes and manifests know the
/// part's image is gone rather than missing.
/// </summary>
/// <remarks>
/// Objects first, keys second, as <see cref="JobDeletion"/>: a pass cut short leaves keys that point at deleted
/// objects, and the next pass deletes them again (deleting a missing object is not an error) and clears them.
/// </remarks>
internal sealed class HiresPartsCleanup(CoordinatorDbContext db, IArtifactStore store)
{
    /// <summary>Cleans at most <paramref name="jobs"/> jobs; returns how many jobs and objects it removed parts of.</summary>
    public async Task<(int Jobs, int Objects)> RunOnceAsync(int jobs, CancellationToken cancellationToken)
    {
        // The base (item 0) keeps its key until its job is cleaned, so it marks the jobs still to do.
        var pending = await db.Jobs.AsNoTracking()
            .Where(j => (j.Mode == RenderModes.Hires || j.Mode == RenderModes.Upscale) && j.State == JobState.Succeeded
                && db.Items.Any(i => i.JobId == j.Id && i.Index == 0 && i.ArtifactKey != null))
            .OrderBy(j => j.FinishedAt)
            .Select(j => new { j.Id, Stitch = j.TotalItems - 1 })
            .Take(jobs)
            .ToListAsync(cancellationToken);

        var objects = 0;
        foreach (var job in pending)
        {
            var keys = await db.Items.AsNoTracking()
                .Where(i => i.JobId == job.Id && i.Index < job.Stitch && i.ArtifactKey != null)
                .Select(i => i.ArtifactKey!)
                .ToListAsync(cancellationToken);
            foreach (var key in keys)
            {
                await store.DeleteAsync(key, cancellationToken);
                objects++;
            }

            await db.Items.Where(i => i.JobId == job.Id && i.Index < job.Stitch)
                .ExecuteUpdateAsync(s => s.SetProperty(i => i.ArtifactKey, (string?)null), cancellationToken);
        }

        return (pending.Count, objects);
    }
}
