using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Events;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Monitoring;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Domain.States;
using RenderFarm.Storage;
using static RenderFarm.Coordinator.Automatic1111.Automatic1111Errors;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>
/// Runs one txt2img or img2img call: translate, submit through <see cref="JobSubmission"/>, wait for the jobs, read
/// their images. The submission and the wait run on the host's stopping token, not the request's, so a client that
/// hangs up loses nothing: its jobs are written, run and kept like any other.
/// </summary>
internal sealed class Automatic1111Runner(
    JobSubmission submission,
    IMonitoringApi monitoring,
    IArtifactStore store,
    JobEventHub hub,
    Automatic1111Tasks tasks,
    Automatic1111Checkpoint checkpoint,
    IOptions<Automatic1111Options> options,
    IHostApplicationLifetime lifetime)
{
    private static readonly JsonSerializerOptions HashJson = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public async Task<IResult> RunAsync<TBody>(HttpContext context)
        where TBody : GenerationBody
    {
        ArgumentNullException.ThrowIfNull(context);
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var bytes = buffer.ToArray();
        TBody? body;
        try
        {
            body = JsonSerializer.Deserialize<TBody>(bytes, Automatic1111Json.Options);
        }
        catch (JsonException ex)
        {
            return Validation([JsonError(ex)]);
        }

        if (body is null)
        {
            return Validation([new([], "The body is empty or null; send a JSON object with at least a prompt.")]);
        }

        var stopping = lifetime.ApplicationStopping;
        var translation = Automatic1111Translation.Translate(body, await checkpoint.GetSetAsync(stopping));
        switch (translation)
        {
            case Translation.NotFound notFound:
                return Http(StatusCodes.Status400BadRequest, notFound.Detail);
            case Translation.Invalid invalid:
                return Validation(invalid.Errors);
        }

        var call = ((Translation.Ok)translation).Call;
        var jobIds = new List<Guid>();
        foreach (var job in call.Jobs)
        {
            // The hash is taken before submission validates the job: a non-finite number (cfg_scale 1e400) must hash,
            // so that validation, not the serializer, answers it.
            var hash = Convert.ToHexString(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(job, HashJson)));
            switch (await submission.SubmitAsync(job, hash, idempotencyKey: null, context.User.TenantOf(), stopping))
            {
                case SubmissionResult.Accepted accepted:
                    jobIds.Add(accepted.JobId);
                    break;
                case SubmissionResult.Invalid invalid when jobIds.Count == 0:
                    return Validation(Automatic1111Translation.FieldErrors(invalid.Errors, call));
                case SubmissionResult.Invalid invalid:
                    // The jobs of a call differ only in their seeds, but the fleet can shrink between two submissions
                    // (admission refuses a size no live worker takes); the jobs already written go on and are named.
                    return Http(StatusCodes.Status422UnprocessableEntity,
                        $"Job {jobIds.Count + 1} of this call was refused after {jobIds.Count} were accepted ({string.Join(", ", jobIds)}, which go on): "
                        + string.Join("; ", invalid.Errors.SelectMany(e => e.Value)),
                        jobIds: jobIds);
                case SubmissionResult.QuotaExceeded quota:
                    return Http(quota.WaitHelps ? StatusCodes.Status429TooManyRequests : StatusCodes.Status403Forbidden, jobIds.Count == 0
                        ? quota.Detail
                        : $"Job {jobIds.Count + 1} of this call was refused after {jobIds.Count} were accepted ({string.Join(", ", jobIds)}, which go on): {quota.Detail}",
                        jobIds: jobIds.Count == 0 ? null : jobIds);
                default:
                    throw new InvalidOperationException("A submission without an idempotency key cannot reuse one.");
            }
        }

        var task = tasks.Start(call.Kind, jobIds, context.User.TenantOf());
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(options.Value.WaitTimeout);
        try
        {
            foreach (var jobId in jobIds)
            {
                await WaitFinalAsync(jobId, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            // The task stays listed (progress, interrupt) until its jobs are seen final.
            var ids = string.Join(", ", jobIds);
            return stopping.IsCancellationRequested
                ? Http(StatusCodes.Status503ServiceUnavailable, $"The coordinator is shutting down; job(s) {ids} go on: follow GET /v1/jobs/{{id}}.", "ServiceUnavailable", jobIds)
                : Http(StatusCodes.Status504GatewayTimeout,
                    $"The farm did not finish job(s) {ids} within {options.Value.WaitTimeout:c} (Coordinator:Automatic1111:WaitTimeout); they go on: follow GET /v1/jobs/{{id}} and fetch the images from /v1/images/{{id}}/{{index}}.",
                    "TimeoutError", jobIds);
        }

        tasks.Finish(task.Id);
        if (context.RequestAborted.IsCancellationRequested)
        {
            // The client has gone; its jobs are done and kept, and nobody reads the images.
            return TypedResults.Empty;
        }

        return await ResultAsync(call, jobIds, task.StartedAt, stopping);
    }

    private static Automatic1111Errors.FieldError JsonError(JsonException ex)
    {
        // System.Text.Json wraps a syntax error (the reader's own JsonException) and names the field being read;
        // a value of the wrong type has no inner exception.
        if (ex.InnerException is JsonException)
        {
            return new([], "The body is not valid JSON; send a JSON object (A1111's txt2img/img2img fields).");
        }

        // "$.init_images[0]" → ["init_images", 0], FastAPI's loc.
        var path = new List<object>();
        foreach (var part in (ex.Path ?? "$").TrimStart('$').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var open = part.IndexOf('[', StringComparison.Ordinal);
            path.Add(open < 0 ? part : part[..open]);
            if (open >= 0 && int.TryParse(part[(open + 1)..^1], CultureInfo.InvariantCulture, out var index))
            {
                path.Add(index);
            }
        }

        return new(path, path.Count == 0
            ? "The body is not valid JSON; send a JSON object (A1111's txt2img/img2img fields)."
            : $"{string.Join('.', path)} has the wrong type (e.g. text where a number belongs).");
    }

    private async Task WaitFinalAsync(Guid jobId, CancellationToken cancellationToken)
    {
        // Subscribed before the first read, so a job-done between the read and the wait is not missed.
        using var subscription = hub.Subscribe(jobId);
        while (true)
        {
            var summary = await monitoring.GetJobSummaryAsync(jobId, cancellationToken)
                ?? throw new InvalidOperationException($"Job {jobId} was accepted but cannot be read back.");
            if (JobStateMachine.IsFinal(summary.State))
            {
                return;
            }

            using var poll = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            poll.CancelAfter(options.Value.PollInterval);
            try
            {
                await foreach (var jobEvent in subscription.ReadAllAsync(poll.Token))
                {
                    if (jobEvent.Type is JobEventTypes.JobDone or JobEventTypes.JobState)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // The poll interval passed: read the state again (another coordinator may have finished the job).
            }
        }
    }

    private async Task<IResult> ResultAsync(Automatic1111Call call, IReadOnlyList<Guid> jobIds, DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        var images = new List<string>();
        var infotexts = new List<string>();
        var seeds = new List<long>();
        var errors = new List<string>();
        var model = "";
        foreach (var jobId in jobIds)
        {
            var job = await monitoring.GetJobAsync(jobId, new JobDetailsPage(ImagesLimit: 0), cancellationToken)
                ?? throw new InvalidOperationException($"Job {jobId} was accepted but cannot be read back.");
            model = job.Model;
            errors.AddRange(job.Errors.Where(e => e.Final).Select(e => $"job {jobId} item {e.Index}: {e.Error}"));
            if (call.Hires)
            {
                seeds.Add(job.Seed);
                // The stitch, the last item, holds the finished image; the base and tiles are intermediate.
                if (job.State == JobState.Succeeded)
                {
                    await AddImageAsync(jobId, job.Items - 1, images, infotexts, cancellationToken);
                }

                continue;
            }

            seeds.AddRange(Enumerable.Range(0, (int)job.Items).Select(i => job.Seed + i));
            for (var after = -1L; ;)
            {
                var page = await monitoring.GetJobAsync(jobId, new JobDetailsPage(after, JobDetailsPage.MaxImagesLimit), cancellationToken);
                if (page is null || page.Images.Count == 0)
                {
                    break;
                }

                foreach (var image in page.Images)
                {
                    await AddImageAsync(jobId, image.Index, images, infotexts, cancellationToken);
                }

                after = page.Images[^1].Index;
            }
        }

        if (images.Count == 0 && errors.Count > 0)
        {
            return Http(StatusCodes.Status500InternalServerError,
                $"The farm could not render this request: {string.Join("; ", errors.Take(5))}", "RenderFailed", jobIds);
        }

        var understood = call.Understood;
        var info = new GenerationInfo(
            call.Prompt, [.. seeds.Select(_ => call.Prompt)], call.NegativePrompt, [.. seeds.Select(_ => call.NegativePrompt)],
            seeds[0], seeds, -1, [.. seeds.Select(_ => -1L)], 0,
            understood.Width ?? Automatic1111Defaults.Width, understood.Height ?? Automatic1111Defaults.Height,
            call.Sampler, understood.CfgScale ?? Automatic1111Defaults.CfgScale, understood.Steps ?? Automatic1111Defaults.Steps,
            understood.BatchSize ?? Automatic1111Defaults.BatchSize, false, null, model, null, -1, -1,
            call.Kind == Automatic1111Translation.Img2Img || call.Hires ? understood.DenoisingStrength : null,
            new Dictionary<string, object>(), 0, infotexts, understood.Styles ?? [], Automatic1111Api.Timestamp(startedAt), 1,
            call.Jobs[0].Mode == Contracts.RenderModes.Inpaint, "RenderFarm", jobIds);
        return TypedResults.Json(
            new ImagesResponse(understood.SendImages == false ? [] : images, understood, JsonSerializer.Serialize(info, Automatic1111Json.Options)),
            Automatic1111Json.Options);
    }

    private async Task AddImageAsync(Guid jobId, long index, List<string> images, List<string> infotexts, CancellationToken cancellationToken)
    {
        var location = await monitoring.GetImageAsync(jobId, index, cancellationToken)
            ?? throw new InvalidOperationException($"Item {index} of job {jobId} succeeded but has no image.");
        await using var stream = await store.OpenReadAsync(location.ArtifactKey, cancellationToken);
        using var png = new MemoryStream();
        await stream.CopyToAsync(png, cancellationToken);
        var bytes = png.ToArray();
        images.Add(Convert.ToBase64String(bytes));
        // The infotext is the PNG's own parameters chunk, as the worker wrote it.
        infotexts.Add(PngCodec.ReadTextChunks(bytes).GetValueOrDefault(PngCodec.ParametersKeyword, ""));
    }
}
