using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Monitoring;

namespace RenderFarm.Coordinator.Apis;

/// <summary><c>/v1/workers</c>: the workers the farm knows, from their heartbeats.</summary>
internal static class WorkersApi
{
    public static RouteGroupBuilder MapWorkersApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(CoordinatorRoutes.Workers).WithTags("Workers").RequireAuthorization(FarmPolicies.Fleet);
        api.MapGet("/", ListWorkers)
            .WithName("ListWorkers")
            .WithSummary("List workers")
            .WithDescription("Every worker that has heartbeated: id, host, device, memory, execution providers, loaded models, state, whether it is live (heartbeat younger than the lease), its current items and its last heartbeat.");
        return api;
    }

    public static async Task<Ok<IReadOnlyList<WorkerSummary>>> ListWorkers([FromServices] IMonitoringApi monitoring, CancellationToken cancellationToken) =>
        TypedResults.Ok(await monitoring.GetWorkersAsync(cancellationToken));
}
