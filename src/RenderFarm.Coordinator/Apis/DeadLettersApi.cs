using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.DeadLetters;

namespace RenderFarm.Coordinator.Apis;

/// <summary><c>/v1/dead-letters</c>: messages the coordinator's or workers' consumers gave up on, counted and replayable.</summary>
internal static class DeadLettersApi
{
    public static RouteGroupBuilder MapDeadLettersApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(CoordinatorRoutes.DeadLetters).WithTags("Dead letters").RequireAuthorization(FarmPolicies.Fleet);
        api.MapGet("/", ListDeadLetters)
            .WithName("ListDeadLetters")
            .WithSummary("Count dead letters")
            .WithDescription("Every _error queue of the farm's RabbitMQ virtual host with the messages waiting in it (counts trail the broker by its statistics interval, 5 s by default). 503 when the farm runs on the in-memory bus or no management API is configured (Bus:RabbitMqManagement).");
        api.MapPost("/{queue}/replay", ReplayDeadLetters)
            .WithName("ReplayDeadLetters")
            .WithSummary("Replay a queue's dead letters")
            .WithDescription("Moves the messages of {queue}_error back to {queue}, one at a time; a message that cannot be routed goes back to the _error queue. The consumers' idempotent ledger makes a replayed event harmless when it was recorded already.")
            .RequireAuthorization(FarmPolicies.Operate);
        return api;
    }

    public static async Task<Results<Ok<DeadLetterReport>, ProblemHttpResult>> ListDeadLetters(
        [FromServices] RabbitMqDeadLetters deadLetters, CancellationToken cancellationToken)
    {
        try
        {
            return TypedResults.Ok(await deadLetters.ListAsync(cancellationToken));
        }
        catch (Exception ex) when (ex is DeadLettersUnavailableException or HttpRequestException)
        {
            return Unavailable(ex);
        }
    }

    public static async Task<Results<Ok<DeadLetterReplay>, ProblemHttpResult>> ReplayDeadLetters(
        string queue, [FromServices] RabbitMqDeadLetters deadLetters, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(queue))
        {
            return TypedResults.Problem("The queue name is blank: name the queue whose {queue}_error messages to replay (GET /v1/dead-letters lists them).",
                statusCode: StatusCodes.Status400BadRequest, title: "No queue named");
        }

        try
        {
            return TypedResults.Ok(await deadLetters.ReplayAsync(queue, cancellationToken));
        }
        catch (KeyNotFoundException ex)
        {
            return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status404NotFound, title: "No such dead-letter queue");
        }
        catch (Exception ex) when (ex is DeadLettersUnavailableException or HttpRequestException)
        {
            return Unavailable(ex);
        }
    }

    private static ProblemHttpResult Unavailable(Exception ex) => TypedResults.Problem(
        ex is HttpRequestException ? $"RabbitMQ's management API did not answer: {ex.Message}" : ex.Message,
        statusCode: StatusCodes.Status503ServiceUnavailable,
        title: "Dead letters are not readable");
}
