using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Previews;

namespace RenderFarm.Coordinator.Apis;

/// <summary><c>/v1/jobs/{id}/items/{index}/preview</c>: the latest preview of a running item.</summary>
internal static class PreviewsApi
{
    /// <summary>Response headers saying which step the preview shows, for clients that poll instead of following events.</summary>
    public const string StepHeader = "X-Preview-Step";

    public const string TotalStepsHeader = "X-Preview-Total-Steps";

    public const string AttemptHeader = "X-Preview-Attempt";

    public static RouteGroupBuilder MapPreviewsApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(CoordinatorRoutes.Jobs).WithTags("Jobs").RequireAuthorization(FarmPolicies.Read).AddEndpointFilter<JobTenantFilter>();
        api.MapGet("/{id:guid}/items/{index:long}/preview", GetPreview)
            .WithName("GetItemPreview")
            .WithSummary("Get a running item's latest preview")
            .WithDescription("The latest preview a worker sent for the item (a small JPEG of the latent, an eighth of the image's size), with the step it shows in X-Preview-Step and X-Preview-Total-Steps. 404 when there is none: the item is not running, has not reached a preview yet, or previews are off (Worker:PreviewInterval). Follow the job's events for a 'preview' event per new preview.")
            .Produces(StatusCodes.Status200OK, contentType: "image/jpeg")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }

    public static Results<FileContentHttpResult, ProblemHttpResult> GetPreview(
        Guid id,
        long index,
        HttpResponse response,
        [FromServices] PreviewStore previews)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (previews.Get(id, index) is not { } preview)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status404NotFound,
                title: "No preview.",
                detail: $"Item {index} of job {id} has no preview now: it is not running (or the job is unknown), has not reached its first preview, or previews are off.");
        }

        // A preview is replaced every second or so: a cached one is a wrong one.
        response.Headers.CacheControl = "no-store";
        response.Headers[StepHeader] = preview.Step.ToString(CultureInfo.InvariantCulture);
        response.Headers[TotalStepsHeader] = preview.TotalSteps.ToString(CultureInfo.InvariantCulture);
        response.Headers[AttemptHeader] = preview.Attempt.ToString(CultureInfo.InvariantCulture);
        return TypedResults.File(preview.Image, preview.ContentType);
    }
}
