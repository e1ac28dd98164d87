using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Monitoring;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Datasets;
using RenderFarm.Storage;
using RenderFarm.Storage.Datasets;

namespace RenderFarm.Coordinator.Apis;

/// <summary><c>/v1/images</c>: rendered PNGs.</summary>
internal static class ImagesApi
{
    public static RouteGroupBuilder MapImagesApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(CoordinatorRoutes.Images).WithTags("Images").RequireAuthorization(FarmPolicies.Read).AddEndpointFilter<JobTenantFilter>();
        api.MapGet("/{jobId:guid}/{index:long}", GetImage)
            .WithName("GetImage")
            .WithSummary("Get a rendered image")
            .WithDescription("Redirects (302) to a short-lived presigned URL when the store has URLs (S3); otherwise streams the PNG. An image of a WebDataset job is read out of its shard's tar (or, before the shard is published, the worker's part) and streamed.")
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .Produces(StatusCodes.Status302Found)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }

    public static async Task<Results<RedirectHttpResult, FileStreamHttpResult, ProblemHttpResult>> GetImage(
        Guid jobId,
        long index,
        [FromServices] IMonitoringApi monitoring,
        [FromServices] IArtifactStore store,
        [FromServices] IOptions<CoordinatorOptions> options,
        CancellationToken cancellationToken)
    {
        var image = await monitoring.GetImageAsync(jobId, index, cancellationToken);
        if (image is null)
        {
            return TypedResults.Problem($"Job {jobId} has no finished image at index {index} (the job or item is unknown, the item has not succeeded yet, or it was a hires base or tile, removed once its job was stitched).", statusCode: StatusCodes.Status404NotFound, title: "No such image.");
        }

        if (image.ArtifactKey.EndsWith(".tar", StringComparison.Ordinal))
        {
            // A WebDataset job's image is a member of its shard (or, until the shard is published, of a worker's part).
            var member = await GetDatasetMemberAsync(jobId, index, image.ArtifactKey, store, cancellationToken);
            if (member.Result is ProblemHttpResult
                && await monitoring.GetImageAsync(jobId, index, cancellationToken) is { } moved
                && moved.ArtifactKey != image.ArtifactKey)
            {
                // Its shard was published (and its part deleted) between the two reads: read it from where it is now.
                member = await GetDatasetMemberAsync(jobId, index, moved.ArtifactKey, store, cancellationToken);
            }

            return member;
        }

        if (await store.GetDownloadUrlAsync(image.ArtifactKey, options.Value.DownloadUrlLifetime, cancellationToken) is { } url)
        {
            return TypedResults.Redirect(url.AbsoluteUri);
        }

        try
        {
            var stream = await store.OpenReadAsync(image.ArtifactKey, cancellationToken);
            return TypedResults.Stream(stream, "image/png", fileDownloadName: $"{index:D6}.png");
        }
        catch (ArtifactNotFoundException)
        {
            return TypedResults.Problem($"Item {index} of job {jobId} is recorded as rendered, but the store has no object under {image.ArtifactKey}.", statusCode: StatusCodes.Status404NotFound, title: "Image missing from the store.");
        }
    }

    private static async Task<Results<RedirectHttpResult, FileStreamHttpResult, ProblemHttpResult>> GetDatasetMemberAsync(
        Guid jobId, long index, string tarKey, IArtifactStore store, CancellationToken cancellationToken)
    {
        var member = DatasetShards.MemberName(index, DatasetShards.Png);
        byte[]? png;
        try
        {
            await using var tar = await store.OpenReadAsync(tarKey, cancellationToken);
            png = await DatasetTar.ReadMemberAsync(tar, member, cancellationToken);
        }
        catch (ArtifactNotFoundException)
        {
            png = null;
        }

        return png is null
            ? TypedResults.Problem($"Item {index} of job {jobId} is recorded as rendered in {tarKey}, but the store has no member {member} there (its shard may have been published a moment ago: ask again).", statusCode: StatusCodes.Status404NotFound, title: "Image missing from the store.")
            : TypedResults.Stream(new MemoryStream(png, writable: false), "image/png", fileDownloadName: member);
    }
}
