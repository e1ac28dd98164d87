using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Monitoring;

namespace RenderFarm.Coordinator.Apis;

/// <summary><c>/v1/monitoring</c>: the operators' reads behind the dashboard (and <c>renderfarm</c>'s operator verbs).</summary>
internal static class MonitoringEndpoints
{
    public const int DefaultMinutes = 30;

    public static RouteGroupBuilder MapMonitoringApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(CoordinatorRoutes.Monitoring).WithTags("Monitoring").RequireAuthorization(FarmPolicies.Fleet);

        api.MapGet("/fleet", Fleet)
            .WithName("Fleet")
            .WithSummary("The fleet")
            .WithDescription("Every worker with its last heartbeat (device, memory, budget, strategy, models), its status (live, draining, gone) and the items it renders now with their step and steps per second.");

        api.MapGet("/queues", Queues)
            .WithName("Queues")
            .WithSummary("Queues and throughput")
            .WithDescription("Items and jobs by state, the outbox (work units and events not yet sent, age of the oldest due row), and per minute over the last `minutes` (1 to 120, default 30): items succeeded, failed, started, and the mean wait from submission to start.")
            .ProducesValidationProblem();

        api.MapGet("/waiting", WaitingQueue)
            .WithName("WaitingQueue")
            .WithSummary("Every waiting job and why")
            .WithDescription("Unfinished jobs with items not yet started, first in first, in pages; each with its position, items ahead, estimated start and every recent worker's reason not to take it.")
            .ProducesValidationProblem();
        return api;
    }

    public static async Task<Ok<IReadOnlyList<FleetWorker>>> Fleet([FromServices] IMonitoringApi monitoring, CancellationToken cancellationToken) =>
        TypedResults.Ok(await monitoring.GetFleetAsync(cancellationToken));

    public static async Task<Results<Ok<QueueStats>, ValidationProblem>> Queues(
        [FromServices] IMonitoringApi monitoring,
        CancellationToken cancellationToken,
        int minutes = DefaultMinutes)
    {
        if (minutes is < 1 or > MonitoringApi.MaxStatsMinutes)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["minutes"] = [$"minutes must be between 1 and {MonitoringApi.MaxStatsMinutes}."] });
        }

        return TypedResults.Ok(await monitoring.GetQueueStatsAsync(minutes, cancellationToken));
    }

    public static async Task<Results<Ok<PagedResult<WaitingJob>>, ValidationProblem>> WaitingQueue(
        [FromServices] IMonitoringApi monitoring,
        CancellationToken cancellationToken,
        int page = 1,
        int pageSize = JobsApi.DefaultPageSize)
    {
        var errors = new Dictionary<string, string[]>();
        if (page < 1)
        {
            errors["page"] = ["page is 1-based; use 1 or more."];
        }

        if (pageSize is < 1 or > JobsApi.MaxPageSize)
        {
            errors["pageSize"] = [$"pageSize must be between 1 and {JobsApi.MaxPageSize}."];
        }

        return errors.Count > 0 ? TypedResults.ValidationProblem(errors) : TypedResults.Ok(await monitoring.GetQueueAsync(page, pageSize, cancellationToken));
    }
}
