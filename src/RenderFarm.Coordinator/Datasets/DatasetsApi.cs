using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using RenderFarm.Coordinator.Apis;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Options;
using RenderFarm.Storage;

namespace RenderFarm.Coordinator.Datasets;

/// <summary><c>/v1/jobs/{id}/manifest</c>: a job as a dataset's metadata, one line or row per item; <c>/v1/jobs/{id}/shards</c>: a WebDataset job's shards.</summary>
internal static class DatasetsApi
{
    public static RouteGroupBuilder MapDatasetsApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(CoordinatorRoutes.Jobs).WithTags("Datasets").RequireAuthorization(FarmPolicies.Read).AddEndpointFilter<JobTenantFilter>();
        api.MapGet("/{id:guid}/manifest", GetManifest)
            .WithName("GetJobManifest")
            .WithSummary("A job's dataset manifest")
            .WithDescription("One record per item in index order: key (the index zero-padded to nine digits), index, prompt, negativePrompt, seed, steps, guidanceScale, sampler, model, modelHash, width, height, sha256, status (queued, running, retrying, succeeded, failed, canceled), error, shard (the WebDataset shard holding the sample; null for the files output), url, duplicateOf (the key of the job's first item with the same SHA-256) and safety (the safety checker's outcome for the image, when one ran). format=jsonl (default) streams JSON lines as it reads them; format=parquet answers the same columns as a Parquet file. Read from the database page by page, so its size does not bound the coordinator's memory.")
            .Produces(StatusCodes.Status200OK, contentType: "application/x-ndjson")
            .Produces(StatusCodes.Status200OK, contentType: "application/vnd.apache.parquet")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/{id:guid}/shards", GetShards)
            .WithName("GetJobShards")
            .WithSummary("A WebDataset job's shards")
            .WithDescription("For a job with output.format webdataset: its shard count and every published shard (shard number, items in its range, samples, failures, bytes, the tar's SHA-256, when its items ran, and its download URL). A shard is published, whole, once every item of its index range is final; complete is true once every shard is and the job is finished.")
            .Produces<ShardList>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/{id:guid}/shards/{shard:int}", GetShard)
            .WithName("GetJobShard")
            .WithSummary("Download a published WebDataset shard")
            .WithDescription("The tar datasets/{jobId}/{shard:D6}.tar: per sample {key}.png, {key}.json (its parameters, model, hashes, worker, render time) and {key}.txt (its prompt). Redirects (302) to a short-lived presigned URL when the store has URLs (S3); otherwise streams the tar.")
            .Produces(StatusCodes.Status200OK, contentType: "application/x-tar")
            .Produces(StatusCodes.Status302Found)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }

    /// <summary>The body of <c>GET /v1/jobs/{id}/shards</c>.</summary>
    /// <param name="ShardSize">Items per shard.</param>
    /// <param name="ShardCount">Shards the job has in all, published or not.</param>
    /// <param name="Complete">Every shard is published and the job is finished.</param>
    /// <param name="Shards">The published shards, in order.</param>
    public sealed record ShardList(int ShardSize, int ShardCount, bool Complete, IReadOnlyList<ShardInfo> Shards);

    /// <summary>One published shard.</summary>
    public sealed record ShardInfo(int Shard, string Name, int Count, int Successes, int Failures, long Bytes, string Sha256, DateTimeOffset? Start, DateTimeOffset? End, string Url);

    public static async Task<Results<Ok<ShardList>, ProblemHttpResult>> GetShards(
        Guid id,
        [FromServices] Persistence.CoordinatorDbContext db,
        CancellationToken cancellationToken)
    {
        var job = await db.Jobs.AsNoTracking().Where(j => j.Id == id).Select(j => new { j.ShardSize, j.TotalItems, j.DatasetPublishedAt }).FirstOrDefaultAsync(cancellationToken);
        if (job is null)
        {
            return JobsApi.JobNotFound(id);
        }

        if (job.ShardSize is not { } size)
        {
            return NotWebDataset(id);
        }

        var rows = await db.DatasetShards.AsNoTracking().Where(s => s.JobId == id).OrderBy(s => s.Shard).ToListAsync(cancellationToken);
        return TypedResults.Ok(new ShardList(size, DatasetShards.Count(job.TotalItems, size), job.DatasetPublishedAt is not null, [.. rows.Select(r => new ShardInfo(
            r.Shard, DatasetShards.FileName(r.Shard), r.Count, r.Successes, r.Failures, r.Bytes, r.Sha256,
            r.StartedAt is { } s ? new DateTimeOffset(s, TimeSpan.Zero) : null, r.FinishedAt is { } f ? new DateTimeOffset(f, TimeSpan.Zero) : null,
            CoordinatorRoutes.ShardUrl(id, r.Shard)))]));
    }

    public static async Task<Results<RedirectHttpResult, FileStreamHttpResult, ProblemHttpResult>> GetShard(
        Guid id,
        int shard,
        [FromServices] Persistence.CoordinatorDbContext db,
        [FromServices] IArtifactStore store,
        [FromServices] IOptions<CoordinatorOptions> options,
        CancellationToken cancellationToken)
    {
        var job = await db.Jobs.AsNoTracking().Where(j => j.Id == id).Select(j => new { j.ShardSize }).FirstOrDefaultAsync(cancellationToken);
        if (job is null)
        {
            return JobsApi.JobNotFound(id);
        }

        if (job.ShardSize is null)
        {
            return NotWebDataset(id);
        }

        if (!await db.DatasetShards.AsNoTracking().AnyAsync(s => s.JobId == id && s.Shard == shard, cancellationToken))
        {
            return TypedResults.Problem($"Shard {shard} of job {id} is not published (yet): a shard is published once every item of its range is final. GET {CoordinatorRoutes.Job(id)}/shards lists the published ones.", statusCode: StatusCodes.Status404NotFound, title: "No such shard.");
        }

        var key = ArtifactKeys.DatasetShard(id, shard);
        if (await store.GetDownloadUrlAsync(key, options.Value.DownloadUrlLifetime, cancellationToken) is { } url)
        {
            return TypedResults.Redirect(url.AbsoluteUri);
        }

        try
        {
            return TypedResults.Stream(await store.OpenReadAsync(key, cancellationToken), "application/x-tar", fileDownloadName: DatasetShards.FileName(shard));
        }
        catch (ArtifactNotFoundException)
        {
            return TypedResults.Problem($"Shard {shard} of job {id} is recorded as published, but the store has no object under {key}.", statusCode: StatusCodes.Status404NotFound, title: "Shard missing from the store.");
        }
    }

    private static ProblemHttpResult NotWebDataset(Guid id) =>
        TypedResults.Problem($"Job {id} stores its images as files (output.format files), so it has no shards; its images are at {CoordinatorRoutes.Images}/{id}/{{index}}.", statusCode: StatusCodes.Status404NotFound, title: "Not a WebDataset job.");

    public static async Task<Results<PushStreamHttpResult, ValidationProblem, ProblemHttpResult>> GetManifest(
        Guid id,
        [FromServices] JobManifest manifest,
        CancellationToken cancellationToken,
        string? format = null)
    {
        var chosen = (format ?? ManifestFormats.Jsonl).ToLowerInvariant();
        if (!ManifestFormats.All.Contains(chosen))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["format"] = [$"format '{format}' is not a manifest format; use one of: {string.Join(", ", ManifestFormats.All)}."],
            });
        }

        if (!await manifest.JobExistsAsync(id, cancellationToken))
        {
            return JobsApi.JobNotFound(id);
        }

        return TypedResults.Stream(
            async body =>
            {
                await using var writer = ManifestFormats.Create(chosen, body);
                await foreach (var page in manifest.ReadPagesAsync(id, cancellationToken: cancellationToken))
                {
                    await writer.WritePageAsync(page, cancellationToken);
                }

                await writer.CompleteAsync(cancellationToken);
            },
            ManifestFormats.ContentType(chosen),
            fileDownloadName: $"manifest-{id}.{chosen}");
    }
}
