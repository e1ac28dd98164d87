using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Coordinator.Hosting;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;
using RenderFarm.Storage;
using RenderFarm.Storage.Datasets;

namespace RenderFarm.Coordinator.Datasets.ShardAssembler;

/// <summary>
/// Publishes the shards of WebDataset jobs. Workers store a unit's images as one tar part per shard
/// (<c>datasets/{jobId}/parts/{shard}/…</c>) and report each item's part; once every item of a shard's index range is
/// final, a pass reads the recorded parts' members, writes the shard (each sample's <c>.png</c>, <c>.json</c> and
/// <c>.txt</c>) to a spool file, uploads it in one put, writes its <c>_stats.json</c>, and in one transaction points
/// the items at the shard and records it (<see cref="DatasetShardRow"/>); only then are the parts it read deleted.
/// </summary>
/// <remarks>
/// <para>Why this keeps every invariant: the ledger keeps the first report of an item, so an item whose unit was
/// delivered twice names one part and is written once; a put replaces an object whole, so a reader sees no shard or a
/// whole one; a crash anywhere before the transaction leaves the items pointing at their parts, and the next pass
/// starts the shard over; a crash after it leaves only parts no item names, removed with the job.</para>
/// <para>A shard is rebuilt when any of its succeeded items points at a part again (a retry of its failed items): its
/// other samples are read back from the published shard itself. Several coordinators may run passes at once: the
/// item update is conditional on the part it read, so the loser's shard equals the winner's.</para>
/// </remarks>
internal sealed partial class ShardAssembler(
    IServiceScopeFactory scopes,
    TimeProvider clock,
    IOptions<ShardAssemblerOptions> options,
    ILogger<ShardAssembler> logger) : PeriodicPassService(clock)
{
    private const string TarContentType = "application/x-tar";
    private const string JsonContentType = "application/json";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        // Data files, never embedded in HTML: prompts keep their characters.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly ShardAssemblerOptions _options = options.Value;

    /// <summary>What a pass did.</summary>
    internal readonly record struct Result(int Shards, int Samples, int PartsDeleted, int DatasetsCompleted);

    protected override TimeSpan Interval => _options.Interval;

    protected override async Task PassAsync(CancellationToken cancellationToken)
    {
        var result = await RunOnceAsync(cancellationToken);
        if (result.Shards + result.DatasetsCompleted > 0)
        {
            LogPublished(result.Shards, result.Samples, result.PartsDeleted, result.DatasetsCompleted);
        }
    }

    protected override void PassFailed(Exception exception) => LogPassFailed(exception);

    /// <summary>One pass over the WebDataset jobs not yet wholly published.</summary>
    internal async Task<Result> RunOnceAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var store = scope.ServiceProvider.GetRequiredService<IArtifactStore>();
        var jobs = await db.Jobs.AsNoTracking()
            .Where(j => j.ShardSize != null && j.DatasetPublishedAt == null)
            .OrderBy(j => j.CreatedAt)
            .Select(j => new { j.Id, ShardSize = j.ShardSize!.Value, j.TotalItems })
            .Take(_options.JobsPerPass)
            .ToListAsync(cancellationToken);

        var result = new Result();
        foreach (var job in jobs)
        {
            var pass = await RunJobAsync(db, store, job.Id, job.ShardSize, job.TotalItems, cancellationToken);
            result = new Result(result.Shards + pass.Shards, result.Samples + pass.Samples, result.PartsDeleted + pass.PartsDeleted, result.DatasetsCompleted + pass.DatasetsCompleted);
        }

        return result;
    }

    private async Task<Result> RunJobAsync(CoordinatorDbContext db, IArtifactStore store, Guid jobId, int shardSize, long totalItems, CancellationToken cancellationToken)
    {
        var size = (long)shardSize;
        var unfinished = (await db.Items.AsNoTracking()
            .Where(i => i.JobId == jobId && i.State != ItemState.Succeeded && i.State != ItemState.Failed && i.State != ItemState.Canceled)
            .Select(i => i.Index / size)
            .Distinct()
            .ToListAsync(cancellationToken)).ToHashSet();
        var published = (await db.DatasetShards.AsNoTracking().Where(s => s.JobId == jobId).Select(s => s.Shard).ToListAsync(cancellationToken)).ToHashSet();
        var partsPrefix = ArtifactKeys.DatasetPrefix(jobId) + "parts/";
        var stale = (await db.Items.AsNoTracking()
            .Where(i => i.JobId == jobId && i.State == ItemState.Succeeded && i.ArtifactKey != null && i.ArtifactKey.StartsWith(partsPrefix))
            .Select(i => i.Index / size)
            .Distinct()
            .ToListAsync(cancellationToken)).ToHashSet();

        var shardCount = DatasetShards.Count(totalItems, shardSize);
        var ready = Enumerable.Range(0, shardCount)
            .Where(s => !unfinished.Contains(s) && (!published.Contains(s) || stale.Contains(s)))
            .Take(_options.ShardsPerPass)
            .ToList();

        int shards = 0, samples = 0, deleted = 0;
        foreach (var shard in ready)
        {
            (int Samples, int PartsDeleted)? assembled;
            try
            {
                assembled = await AssembleAsync(db, store, jobId, shard, shardSize, totalItems, cancellationToken);
            }
            catch (Exception ex) when (ex is InvalidDataException or ArtifactNotFoundException)
            {
                // A damaged or missing part holds back its own shard only; the others go on.
                LogShardFailed(ex, shard, jobId);
                db.ChangeTracker.Clear();
                continue;
            }

            if (assembled is { } done)
            {
                shards++;
                samples += done.Samples;
                deleted += done.PartsDeleted;
                published.Add(shard);
                stale.Remove(shard);
            }
        }

        var completed = 0;
        if (unfinished.Count == 0 && stale.Count == 0 && published.Count == shardCount)
        {
            // Conditional on the job being finished: a retry that started meanwhile leaves it open for its new items.
            var now = Clock.GetUtcNow().UtcDateTime;
            completed = await db.Jobs
                .Where(j => j.Id == jobId && j.DatasetPublishedAt == null && JobStateMachine.FinalStates.Contains(j.State))
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.DatasetPublishedAt, now), cancellationToken);
        }

        return new Result(shards, samples, deleted, completed);
    }

    private sealed record ShardItem(
        Guid Id, long Index, string Prompt, string NegativePrompt, long Seed, int Steps, double GuidanceScale, string Sampler, string Mode,
        double? Strength, string Model, string? ModelHash, int Width, int Height, string? Sha256, string? WorkerId, ItemState State,
        string? ArtifactKey, DateTime? StartedAt, DateTime? FinishedAt, double? RenderSeconds, string? Safety);

    private async Task<(int Samples, int PartsDeleted)?> AssembleAsync(
        CoordinatorDbContext db, IArtifactStore store, Guid jobId, int shard, int shardSize, long totalItems, CancellationToken cancellationToken)
    {
        var (from, to) = DatasetShards.Range(shard, shardSize, totalItems);
        var items = await db.Items.AsNoTracking()
            .Where(i => i.JobId == jobId && i.Index >= from && i.Index < to)
            .OrderBy(i => i.Index)
            .Select(i => new ShardItem(i.Id, i.Index, i.Prompt, i.NegativePrompt, i.Seed, i.Steps, i.GuidanceScale, i.Sampler, i.Mode,
                i.Strength, i.Model, i.ModelHash, i.Width, i.Height, i.Sha256, i.WorkerId, i.State, i.ArtifactKey, i.StartedAt, i.FinishedAt, i.RenderSeconds, i.Safety))
            .ToListAsync(cancellationToken);
        if (items.Any(i => !ItemStateMachine.IsFinal(i.State)))
        {
            // A retry moved one on since the pass looked: the shard waits for it.
            return null;
        }

        var shardKey = ArtifactKeys.DatasetShard(jobId, shard);
        var succeeded = items.Where(i => i.State == ItemState.Succeeded && i.ArtifactKey is not null).ToList();
        var spoolPath = Path.Combine(Path.GetTempPath(), $"renderfarm-shard-{Guid.NewGuid():N}.tar");
        try
        {
            string sha256;
            long bytes;
            await using (var spool = new FileStream(spoolPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 64 * 1024, FileOptions.Asynchronous))
            {
                await using (var writer = new TarWriter(spool, TarEntryFormat.Ustar, leaveOpen: true))
                {
                    // One read of each source (a part, or the shard itself when rebuilding), taking the members its items name.
                    foreach (var source in succeeded.GroupBy(i => i.ArtifactKey!, StringComparer.Ordinal).OrderBy(g => g.Min(i => i.Index)))
                    {
                        var wanted = source.ToDictionary(i => DatasetShards.MemberName(i.Index, DatasetShards.Png), StringComparer.Ordinal);
                        await using var tar = await store.OpenReadAsync(source.Key, cancellationToken);
                        await foreach (var (name, png) in DatasetTar.ReadMembersAsync(tar, wanted.ContainsKey, cancellationToken))
                        {
                            // Removed as taken: a member name repeated in one source is read once.
                            wanted.Remove(name, out var item);

                            var actual = Convert.ToHexStringLower(SHA256.HashData(png));
                            if (item!.Sha256 is { } expected && expected != actual)
                            {
                                throw new InvalidDataException($"Member {name} of {source.Key} has SHA-256 {actual}, but its worker reported {expected}; shard {shard} of job {jobId} is not published.");
                            }

                            await WriteSampleAsync(writer, item, shard, png, cancellationToken);
                        }

                        if (wanted.Count > 0)
                        {
                            throw new InvalidDataException($"{source.Key} lacks {string.Join(", ", wanted.Keys)}; shard {shard} of job {jobId} is not published.");
                        }
                    }
                }

                bytes = spool.Length;
                spool.Position = 0;
                sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(spool, cancellationToken));
                spool.Position = 0;
                await store.PutAsync(shardKey, spool, TarContentType, cancellationToken);
            }

            var stats = Stats(shard, items);
            using (var statsJson = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(stats, Json), writable: false))
            {
                await store.PutAsync(ArtifactKeys.DatasetShardStats(jobId, shard), statsJson, JsonContentType, cancellationToken);
            }

            var now = Clock.GetUtcNow().UtcDateTime;
            await using (var tx = await db.Database.BeginTransactionAsync(cancellationToken))
            {
                foreach (var source in succeeded.GroupBy(i => i.ArtifactKey!, StringComparer.Ordinal).Where(g => g.Key != shardKey))
                {
                    var ids = source.Select(i => i.Id).ToList();
                    var key = source.Key;
                    await db.Items
                        .Where(i => ids.Contains(i.Id) && i.State == ItemState.Succeeded && i.ArtifactKey == key)
                        .ExecuteUpdateAsync(s => s.SetProperty(i => i.ArtifactKey, shardKey), cancellationToken);
                }

                await db.DatasetShards.Where(s => s.JobId == jobId && s.Shard == shard).ExecuteDeleteAsync(cancellationToken);
                db.DatasetShards.Add(new DatasetShardRow
                {
                    JobId = jobId,
                    Shard = shard,
                    Count = stats.Count,
                    Successes = stats.Successes,
                    Failures = stats.Failures,
                    Bytes = bytes,
                    Sha256 = sha256,
                    StartedAt = stats.Start?.UtcDateTime,
                    FinishedAt = stats.End?.UtcDateTime,
                    PublishedAt = now,
                });
                await db.SaveChangesAsync(cancellationToken);
                db.ChangeTracker.Clear();
                await tx.CommitAsync(cancellationToken);
            }

            // Only the parts this shard was built from: a part of the same shard written since (a retry's) is still needed.
            var parts = 0;
            foreach (var part in succeeded.Select(i => i.ArtifactKey!).Where(k => k != shardKey).Distinct(StringComparer.Ordinal))
            {
                await store.DeleteAsync(part, cancellationToken);
                parts++;
            }

            return (succeeded.Count, parts);
        }
        finally
        {
            File.Delete(spoolPath);
        }
    }

    private static async Task WriteSampleAsync(TarWriter writer, ShardItem item, int shard, byte[] png, CancellationToken cancellationToken)
    {
        var modified = new DateTimeOffset(item.FinishedAt ?? DateTime.UnixEpoch, TimeSpan.Zero);
        var sample = new DatasetSample(
            DatasetKeys.Of(item.Index), item.Index, shard, item.Prompt, item.NegativePrompt, item.Seed, item.Steps, item.GuidanceScale,
            item.Sampler, item.Mode, item.Strength, item.Model, item.ModelHash, item.Width, item.Height, item.Sha256, item.WorkerId,
            item.RenderSeconds,
            ManifestStatus.Of(item.State),
            item.Safety);
        // WebDataset groups consecutive members by their key: a sample's three members go together.
        await DatasetTar.WriteMemberAsync(writer, DatasetShards.MemberName(item.Index, DatasetShards.Png), png, modified, cancellationToken);
        await DatasetTar.WriteMemberAsync(writer, DatasetShards.MemberName(item.Index, DatasetShards.Json), JsonSerializer.SerializeToUtf8Bytes(sample, Json), modified, cancellationToken);
        await DatasetTar.WriteMemberAsync(writer, DatasetShards.MemberName(item.Index, DatasetShards.Txt), System.Text.Encoding.UTF8.GetBytes(item.Prompt), modified, cancellationToken);
    }

    private static ShardStats Stats(int shard, IReadOnlyList<ShardItem> items)
    {
        var successes = items.Count(i => i.State == ItemState.Succeeded && i.ArtifactKey is not null);
        // An item's start as the coordinator saw it, or (its start report lost or late) its end less its render time.
        var starts = items
            .Select(i => i.StartedAt ?? (i.FinishedAt is { } f && i.RenderSeconds is { } r ? f - TimeSpan.FromSeconds(r) : null))
            .Where(t => t is not null).Select(t => t!.Value).ToList();
        var ends = items.Where(i => i.FinishedAt is not null).Select(i => i.FinishedAt!.Value).ToList();
        DateTimeOffset? start = starts.Count > 0 ? new DateTimeOffset(starts.Min(), TimeSpan.Zero) : null;
        DateTimeOffset? end = ends.Count > 0 ? new DateTimeOffset(ends.Max(), TimeSpan.Zero) : null;
        var duration = start is { } s && end is { } e && e > s ? (e - s).TotalSeconds : 0;
        return new ShardStats(shard, items.Count, successes, items.Count - successes, duration, start, end);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Published {Shards} dataset shard(s) with {Samples} sample(s), removed {Parts} part(s); {Datasets} dataset(s) complete")]
    private partial void LogPublished(int shards, int samples, int parts, int datasets);

    [LoggerMessage(Level = LogLevel.Error, Message = "Shard {Shard} of job {JobId} was not published; the next pass tries it again")]
    private partial void LogShardFailed(Exception exception, int shard, Guid jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A shard assembly pass failed; the next pass starts the shards over")]
    private partial void LogPassFailed(Exception exception);
}
