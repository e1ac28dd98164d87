using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using RenderFarm.Coordinator.Apis;
using RenderFarm.Coordinator.Auth;

namespace RenderFarm.Coordinator.Datasets;

/// <summary><c>/v1/jobs/{id}/manifest</c>: a job as a dataset's metadata, one line or row per item.</summary>
internal static class DatasetsApi
{
    public static RouteGroupBuilder MapDatasetsApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(CoordinatorRoutes.Jobs).WithTags("Datasets").RequireAuthorization(FarmPolicies.Read).AddEndpointFilter<JobTenantFilter>();
        api.MapGet("/{id:guid}/manifest", GetManifest)
            .WithName("GetJobManifest")
            .WithSummary("A job's dataset manifest")
            .WithDescription("One record per item in index order: key (the index zero-padded to nine digits), index, prompt, negativePrompt, seed, steps, guidanceScale, sampler, model, width, height, sha256, status (queued, running, retrying, succeeded, failed, canceled), error, url and duplicateOf (the key of the job's first item with the same SHA-256). format=jsonl (default) streams JSON lines as it reads them; format=parquet answers the same columns as a Parquet file. Read from the database page by page, so its size does not bound the coordinator's memory.")
            .Produces(StatusCodes.Status200OK, contentType: "application/x-ndjson")
            .Produces(StatusCodes.Status200OK, contentType: "application/vnd.apache.parquet")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }

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
