using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Events;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Monitoring;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Apis;

/// <summary><c>/v1/jobs</c>: submit, inspect, list, cancel and follow render jobs.</summary>
internal static class JobsApi
{
    public const int DefaultPageSize = 50;

    public const int MaxPageSize = 500;

    // Strict numbers (no "512" strings), but NaN and Infinity get through to the validator, which names the
    // field and the fix instead of a parser position.
    private static readonly JsonSerializerOptions BodyJson = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static RouteGroupBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(CoordinatorRoutes.Jobs).WithTags("Jobs").RequireAuthorization(FarmPolicies.Read).AddEndpointFilter<JobTenantFilter>();

        api.MapPost("/", CreateJob)
            .WithName("CreateJob")
            .WithSummary("Submit a render job")
            .WithDescription("Validates the job, stores its init image and mask, and writes the job, its items and their work units in one transaction; answers 202 with the job. A repeated request with the same Idempotency-Key answers with the job of the first one.")
            .Accepts<CreateJobBody>("application/json")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .RequireAuthorization(FarmPolicies.Submit);

        api.MapGet("/", ListJobs)
            .WithName("ListJobs")
            .WithSummary("List jobs")
            .WithDescription("Jobs newest first, optionally only those in one state, in pages; a submitter's key lists its tenant's jobs only.")
            .ProducesValidationProblem();

        api.MapGet("/{id:guid}", GetJob)
            .WithName("GetJob")
            .WithSummary("Get a job")
            .WithDescription("State, progress, a page of images (imagesAfter/imagesLimit), running items with their step, errors, and while it waits how many workers could take it and why none does. A hires job also lists a page of its tiles (tilesAfter/tilesLimit) with their place in the final image, worker and state, and once stitched the final image's URL (resultImage).");

        api.MapPost("/{id:guid}/cancel", CancelJob)
            .WithName("CancelJob")
            .WithSummary("Cancel a job")
            .WithDescription("Cancels every unfinished item and tells workers (JobCanceled) to stop running ones between steps. Finished images are kept.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireAuthorization(FarmPolicies.Submit);

        api.MapPost("/{id:guid}/retry", RetryJob)
            .WithName("RetryJob")
            .WithSummary("Retry a job's failed and canceled items")
            .WithDescription("Queues a new attempt of every failed and canceled item, with the same seeds and parameters, through the outbox like any other work; the job is open again (Queued or Running). 409 when nothing failed or was canceled, or for a hires job.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireAuthorization(FarmPolicies.Submit);

        api.MapGet("/{id:guid}/items", ListItems)
            .WithName("ListJobItems")
            .WithSummary("List a job's items")
            .WithDescription("A keyset page of the job's items in index order (after, limit up to 500), optionally of one state: seed, state, attempt, worker, step, times, last error and image URL. next is the after of the next page, null on the last.")
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound);

        api.MapGet("/{id:guid}/waiting", Waiting)
            .WithName("JobWaiting")
            .WithSummary("Why a job waits")
            .WithDescription("Its place in the first-in-first-out queue, the items ahead, an estimated start from the recent completion rate, and for each recently seen worker whether it can take the job now and why not (gone, starting, draining, too-small, busy; model-missing slows but does not stop it).")
            .ProducesProblem(StatusCodes.Status404NotFound);

        api.MapGet("/{id:guid}/events", JobEvents)
            .WithName("JobEvents")
            .WithSummary("Follow a job (server-sent events)")
            .WithDescription("A snapshot first, then item-started, item-progress, preview (a running item's new preview: index, step and its url), item-done, item-retrying, item-failed, job-state and finally job-done, after which the stream ends.")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .ProducesProblem(StatusCodes.Status404NotFound);

        return api;
    }

    public static async Task<Results<Accepted<JobDetails>, ValidationProblem, ProblemHttpResult>> CreateJob(
        HttpRequest request,
        ClaimsPrincipal user,
        [FromHeader(Name = CoordinatorRoutes.IdempotencyKeyHeader)] string? idempotencyKey,
        [FromServices] JobSubmission submission,
        [FromServices] IMonitoringApi monitoring,
        [FromServices] CoordinatorDbContext db,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (idempotencyKey is not null && (idempotencyKey.Length is 0 or > Persistence.IdempotencyKeyRow.MaxKeyLength))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                [CoordinatorRoutes.IdempotencyKeyHeader] = [$"{CoordinatorRoutes.IdempotencyKeyHeader} must be 1 to {Persistence.IdempotencyKeyRow.MaxKeyLength} characters; a UUID is a good key."],
            });
        }

        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken);
        var bytes = buffer.ToArray();

        CreateJobBody? body;
        try
        {
            body = JsonSerializer.Deserialize<CreateJobBody>(bytes, BodyJson);
        }
        catch (JsonException ex)
        {
            var field = FieldOf(ex.Path);
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                [field] = [field == "body"
                    ? "The request body is not valid JSON; send a JSON object with the job's fields (see the OpenAPI document)."
                    : $"{field} has the wrong type or is malformed; see the OpenAPI document for its type."],
            });
        }

        if (body is null)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = ["The request body is empty or null; send a JSON object with the job's fields."] });
        }

        var hash = Convert.ToHexString(SHA256.HashData(bytes));
        var result = await submission.SubmitAsync(body, hash, idempotencyKey, user.TenantOf(), cancellationToken);
        switch (result)
        {
            case SubmissionResult.Invalid invalid:
                return TypedResults.ValidationProblem(invalid.Errors, title: "The job request is invalid.");
            case SubmissionResult.KeyReused reused:
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status422UnprocessableEntity,
                    title: "Idempotency-Key reused with a different request.",
                    detail: $"The key was already used for job {reused.JobId} with a different body; send a new key for a new job.");
            case SubmissionResult.QuotaExceeded quota:
                return TypedResults.Problem(
                    statusCode: quota.WaitHelps ? StatusCodes.Status429TooManyRequests : StatusCodes.Status403Forbidden,
                    title: $"Tenant quota exceeded: {quota.Quota}.",
                    detail: quota.Detail,
                    extensions: new Dictionary<string, object?> { ["quota"] = quota.Quota, ["limit"] = quota.Limit, ["current"] = quota.Current });
            case SubmissionResult.Accepted accepted:
                var job = await monitoring.GetJobAsync(accepted.JobId, new JobDetailsPage(), cancellationToken)
                    ?? throw new InvalidOperationException($"Job {accepted.JobId} was accepted but cannot be read back.");
                if (accepted.Replayed)
                {
                    request.HttpContext.Response.Headers[CoordinatorRoutes.IdempotentReplayedHeader] = "true";
                }

                return TypedResults.Accepted(CoordinatorRoutes.Job(job.Id), await ViewAsync(db, job, cancellationToken));
            default:
                throw new InvalidOperationException($"Unexpected submission result {result}.");
        }
    }

    public static async Task<Results<Ok<PagedResult<JobSummary>>, ValidationProblem>> ListJobs(
        ClaimsPrincipal user,
        [FromServices] IMonitoringApi monitoring,
        CancellationToken cancellationToken,
        string? state = null,
        int page = 1,
        int pageSize = DefaultPageSize)
    {
        var errors = new Dictionary<string, string[]>();
        JobState? filter = null;
        if (state is not null)
        {
            if (Enum.TryParse<JobState>(state, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) && !int.TryParse(state, out _))
            {
                filter = parsed;
            }
            else
            {
                errors["state"] = [$"state '{state}' is not a job state; use one of: {string.Join(", ", Enum.GetNames<JobState>())}."];
            }
        }

        if (page < 1)
        {
            errors["page"] = ["page is 1-based; use 1 or more."];
        }

        if (pageSize is < 1 or > MaxPageSize)
        {
            errors["pageSize"] = [$"pageSize must be between 1 and {MaxPageSize}."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        return TypedResults.Ok(await monitoring.GetJobsAsync(filter, user.VisibleTenant(), page, pageSize, cancellationToken));
    }

    public static async Task<Results<Ok<JobDetails>, ProblemHttpResult>> GetJob(
        Guid id,
        [FromServices] IMonitoringApi monitoring,
        [FromServices] CoordinatorDbContext db,
        CancellationToken cancellationToken,
        long imagesAfter = -1,
        int imagesLimit = JobDetailsPage.DefaultImagesLimit,
        long tilesAfter = -1,
        int tilesLimit = HiresView.DefaultTilesLimit)
    {
        var job = await monitoring.GetJobAsync(id, new JobDetailsPage(imagesAfter, imagesLimit), cancellationToken);
        return job is null ? JobNotFound(id) : TypedResults.Ok(await ViewAsync(db, job, cancellationToken, tilesAfter, tilesLimit));
    }

    public static async Task<Results<Accepted<JobDetails>, ProblemHttpResult>> CancelJob(
        Guid id,
        [FromServices] JobCancellation cancellation,
        [FromServices] IMonitoringApi monitoring,
        [FromServices] CoordinatorDbContext db,
        CancellationToken cancellationToken,
        string? reason = null)
    {
        var outcome = await cancellation.CancelAsync(id, reason, cancellationToken);
        if (outcome == CancelOutcome.NotFound)
        {
            return JobNotFound(id);
        }

        var job = await monitoring.GetJobAsync(id, new JobDetailsPage(), cancellationToken);
        if (outcome == CancelOutcome.AlreadyFinished || job is null)
        {
            return TypedResults.Problem(
                $"Job {id} is {job?.State.ToString() ?? "gone"}; only queued or running jobs can be canceled.",
                statusCode: StatusCodes.Status409Conflict,
                title: "The job has already finished.");
        }

        return TypedResults.Accepted(CoordinatorRoutes.Job(id), await ViewAsync(db, job, cancellationToken));
    }

    public static async Task<Results<Ok<RetryResult>, ProblemHttpResult>> RetryJob(
        Guid id,
        [FromServices] JobRetry retry,
        CancellationToken cancellationToken)
    {
        return await retry.RetryAsync(id, cancellationToken) switch
        {
            RetryOutcome.Requeued requeued => TypedResults.Ok(new RetryResult(id, requeued.Items, requeued.State)),
            RetryOutcome.NothingToRetry nothing => TypedResults.Problem(
                statusCode: StatusCodes.Status409Conflict,
                title: "Nothing to retry.",
                detail: $"Job {id} is {nothing.State} and has no failed or canceled item."),
            RetryOutcome.HiresUnsupported => TypedResults.Problem(
                statusCode: StatusCodes.Status409Conflict,
                title: "Hires jobs cannot be retried.",
                detail: $"Job {id} is a hires job, whose tiles depend on its base image and whose stitch depends on its tiles; submit it again instead."),
            _ => JobNotFound(id),
        };
    }

    public static async Task<Results<Ok<JobItemsPage>, ValidationProblem, ProblemHttpResult>> ListItems(
        Guid id,
        [FromServices] IMonitoringApi monitoring,
        CancellationToken cancellationToken,
        string? state = null,
        long after = -1,
        int limit = 100)
    {
        var errors = new Dictionary<string, string[]>();
        ItemState? filter = null;
        if (state is not null)
        {
            if (Enum.TryParse<ItemState>(state, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) && !int.TryParse(state, out _))
            {
                filter = parsed;
            }
            else
            {
                errors["state"] = [$"state '{state}' is not an item state; use one of: {string.Join(", ", Enum.GetNames<ItemState>())}."];
            }
        }

        if (limit is < 1 or > MonitoringApi.MaxItemsLimit)
        {
            errors["limit"] = [$"limit must be between 1 and {MonitoringApi.MaxItemsLimit}."];
        }

        if (after < -1)
        {
            errors["after"] = ["after is the last index of the previous page; -1 (the default) for the first page."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var page = await monitoring.GetJobItemsAsync(id, filter, after, limit, cancellationToken);
        return page is null ? JobNotFound(id) : TypedResults.Ok(page);
    }

    public static async Task<Results<Ok<WaitingJob>, ProblemHttpResult>> Waiting(
        Guid id,
        [FromServices] IMonitoringApi monitoring,
        CancellationToken cancellationToken)
    {
        var waiting = await monitoring.GetWaitingAsync(id, cancellationToken);
        return waiting is null ? JobNotFound(id) : TypedResults.Ok(waiting);
    }

    private static async Task<JobDetails> ViewAsync(CoordinatorDbContext db, JobDetails job, CancellationToken cancellationToken,
        long tilesAfter = -1, int tilesLimit = HiresView.DefaultTilesLimit) =>
        Contracts.RenderModes.IsTiled(job.Mode) && await HiresView.ReadAsync(db, job.Id, tilesAfter, tilesLimit, cancellationToken) is { } hires
            ? job with { Tiles = hires.Tiles, ResultImage = hires.ResultImage }
            : job;

    public static async Task<Results<ServerSentEventsResult<JobEvent>, ProblemHttpResult>> JobEvents(
        Guid id,
        [FromServices] JobEventHub hub,
        [FromServices] IMonitoringApi monitoring,
        CancellationToken cancellationToken)
    {
        // Subscribe before reading the snapshot, so nothing that happens in between is missed.
        var subscription = hub.Subscribe(id);
        var summary = await monitoring.GetJobSummaryAsync(id, cancellationToken);
        if (summary is null)
        {
            subscription.Dispose();
            return JobNotFound(id);
        }

        return TypedResults.ServerSentEvents(Stream(subscription, summary, cancellationToken));
    }

    private static async IAsyncEnumerable<SseItem<JobEvent>> Stream(
        JobEventHub.Subscription subscription,
        JobSummary summary,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using (subscription)
        {
            yield return new SseItem<JobEvent>(
                new JobEvent(JobEventTypes.Snapshot, summary.Id, State: summary.State.ToString(), Done: summary.Progress.Done, Total: summary.Progress.Total),
                JobEventTypes.Snapshot);
            if (JobStateMachine.IsFinal(summary.State))
            {
                yield return new SseItem<JobEvent>(new JobEvent(JobEventTypes.JobDone, summary.Id, State: summary.State.ToString()), JobEventTypes.JobDone);
                yield break;
            }

            await foreach (var jobEvent in subscription.ReadAllAsync(cancellationToken))
            {
                yield return new SseItem<JobEvent>(jobEvent, jobEvent.Type);
                if (jobEvent.Type == JobEventTypes.JobDone)
                {
                    yield break;
                }
            }
        }
    }

    /// <summary>
    /// The one answer for a job that does not exist or that the caller's tenant may not see (every route about a job
    /// uses it, so both cases look the same). TypedResults.Problem, not NotFound(new ProblemDetails): only the former
    /// answers as application/problem+json.
    /// </summary>
    internal static ProblemHttpResult JobNotFound(Guid id) =>
        TypedResults.Problem($"There is no job {id}.", statusCode: StatusCodes.Status404NotFound, title: "No such job.");

    // "$.sweep.seeds[2]" → "sweep.seeds[2]", the field naming the validator uses.
    private static string FieldOf(string? path) =>
        path is null or "$" || !path.StartsWith("$.", StringComparison.Ordinal) ? "body" : path[2..];
}
