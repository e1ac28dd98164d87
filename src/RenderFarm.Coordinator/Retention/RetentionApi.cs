using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using RenderFarm.Coordinator.Apis;
using RenderFarm.Coordinator.Auth;

namespace RenderFarm.Coordinator.Retention;

/// <summary><c>DELETE /v1/jobs/{id}</c>: a finished job and everything it stored.</summary>
internal static class RetentionApi
{
    public static RouteGroupBuilder MapRetentionApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(CoordinatorRoutes.Jobs).WithTags("Jobs").RequireAuthorization(FarmPolicies.Submit).AddEndpointFilter<JobTenantFilter>();
        api.MapDelete("/{id:guid}", DeleteJob)
            .WithName("DeleteJob")
            .WithSummary("Delete a finished job")
            .WithDescription("Removes a finished (succeeded, failed or canceled) job's images, hires bases and tiles and inputs from the store, then its rows; afterwards the job answers 404. 409 while it is queued or running: cancel it first.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        return api;
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteJob(
        Guid id,
        [FromServices] JobDeletion deletion,
        CancellationToken cancellationToken)
    {
        var (outcome, state, _) = await deletion.DeleteAsync(id, cancellationToken);
        return outcome switch
        {
            DeleteOutcome.NotFound => JobsApi.JobNotFound(id),
            DeleteOutcome.NotFinished => TypedResults.Problem(
                statusCode: StatusCodes.Status409Conflict,
                title: "The job has not finished.",
                detail: $"Job {id} is {state}; cancel it first (POST {CoordinatorRoutes.Jobs}/{id}/cancel), then delete it."),
            _ => TypedResults.NoContent(),
        };
    }
}
