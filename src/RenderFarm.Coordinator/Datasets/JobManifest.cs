using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Datasets;

/// <summary>
/// Reads a job's manifest from the database in keyset pages of items in index order, so a manifest of a million items
/// streams with one page in memory at a time, whatever the writer.
/// </summary>
/// <remarks>
/// Each page is its own query: a manifest of a job that is still running shows each item as it was when its page was
/// read. <c>duplicateOf</c> is answered per page by one grouped query over the page's hashes (the items index on job,
/// hash and index covers it), not by a table of every hash seen so far, which would grow with the job.
/// </remarks>
internal sealed class JobManifest(CoordinatorDbContext db)
{
    /// <summary>Items per page (and per Parquet row group): large enough that the per-page queries cost little.</summary>
    public const int DefaultPageSize = 5000;

    public Task<bool> JobExistsAsync(Guid jobId, CancellationToken cancellationToken) =>
        db.Jobs.AsNoTracking().AnyAsync(j => j.Id == jobId, cancellationToken);

    /// <summary>The job's items in index order, one page at a time; empty for an unknown job.</summary>
    public async IAsyncEnumerable<IReadOnlyList<ManifestEntry>> ReadPagesAsync(
        Guid jobId,
        int pageSize = DefaultPageSize,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var shardSize = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId).Select(j => j.ShardSize).FirstOrDefaultAsync(cancellationToken);
        var after = -1L;
        while (true)
        {
            var rows = await db.Items.AsNoTracking()
                .Where(i => i.JobId == jobId && i.Index > after)
                .OrderBy(i => i.Index)
                .Take(pageSize)
                .Select(i => new
                {
                    i.Index, i.Prompt, i.NegativePrompt, i.Seed, i.Steps, i.GuidanceScale, i.Sampler, i.Model,
                    i.ModelHash, i.Width, i.Height, i.Sha256, i.State, i.Error, Stored = i.ArtifactKey != null, i.Safety,
                })
                .ToListAsync(cancellationToken);
            if (rows.Count == 0)
            {
                yield break;
            }

            var firsts = await FirstIndexByHashAsync(jobId, [.. rows.Where(r => r.Sha256 is not null).Select(r => r.Sha256!).Distinct()], cancellationToken);
            yield return [.. rows.Select(r => new ManifestEntry(
                DatasetKeys.Of(r.Index), r.Index, r.Prompt, r.NegativePrompt, r.Seed, r.Steps, r.GuidanceScale, r.Sampler, r.Model,
                r.ModelHash, r.Width, r.Height, r.Sha256, ManifestStatus.Of(r.State),
                r.State == ItemState.Succeeded ? null : r.Error,
                shardSize is { } size ? DatasetShards.Of(r.Index, size) : null,
                r.State == ItemState.Succeeded && r.Stored ? CoordinatorRoutes.ImageUrl(jobId, r.Index) : null,
                r.Sha256 is { } hash && firsts.TryGetValue(hash, out var first) && first < r.Index ? DatasetKeys.Of(first) : null,
                r.Safety))];
            if (rows.Count < pageSize)
            {
                yield break;
            }

            after = rows[^1].Index;
        }
    }

    // Only succeeded items carry a hash (the ledger sets it with the success and nothing takes a success back), so no
    // state filter is needed and the (job, hash, index) index answers this alone.
    private async Task<Dictionary<string, long>> FirstIndexByHashAsync(Guid jobId, List<string> hashes, CancellationToken cancellationToken)
    {
        if (hashes.Count == 0)
        {
            return [];
        }

        return await db.Items.AsNoTracking()
            .Where(i => i.JobId == jobId && i.Sha256 != null && hashes.Contains(i.Sha256))
            .GroupBy(i => i.Sha256!)
            .Select(g => new { Hash = g.Key, First = g.Min(i => i.Index) })
            .ToDictionaryAsync(g => g.Hash, g => g.First, StringComparer.Ordinal, cancellationToken);
    }
}
