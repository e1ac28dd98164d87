using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using RenderFarm.Coordinator.Events;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Monitoring;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Domain.States;
using RenderFarm.Storage;
using static RenderFarm.Coordinator.Automatic1111.Automatic1111Errors;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>
/// <c>/sdapi/v1/…</c>: the AUTOMATIC1111 web UI API, so clients written for A1111 render on the farm unchanged. Every
/// call that renders is an ordinary farm job, submitted through <see cref="JobSubmission"/> as <c>POST /v1/jobs</c>
/// submits; its images are read back from the job through <see cref="IMonitoringApi"/> and the artifact store.
/// </summary>
internal static class Automatic1111Api
{
    public const string Prefix = "/sdapi/v1";

    private const string InterruptReason = "interrupted through /sdapi/v1/interrupt";

    public static RouteGroupBuilder MapAutomatic1111Api(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(Prefix).WithTags("AUTOMATIC1111");

        api.MapPost("/txt2img", Txt2Img)
            .WithName("A1111Txt2Img")
            .WithSummary("AUTOMATIC1111 txt2img")
            .WithDescription("Submits a farm job (one per image with enable_hr) and answers when it is done with base64 PNGs, the request as understood and A1111's info JSON. The job goes on if the client disconnects; past Coordinator:Automatic1111:WaitTimeout the answer is 504 naming the job.")
            .Accepts<Txt2ImgBody>("application/json")
            .Produces<ImagesResponse>();

        api.MapPost("/img2img", Img2Img)
            .WithName("A1111Img2Img")
            .WithSummary("AUTOMATIC1111 img2img")
            .WithDescription("img2img from init_images[0], or inpaint when a mask is sent; otherwise as txt2img.")
            .Accepts<Img2ImgBody>("application/json")
            .Produces<ImagesResponse>();

        api.MapGet("/progress", Progress)
            .WithName("A1111Progress")
            .WithSummary("AUTOMATIC1111 progress")
            .WithDescription("Progress of the A1111 calls this coordinator is running (all of them together). current_image is always null: the farm has no previews yet.")
            .Produces<ProgressResponse>();

        api.MapPost("/interrupt", Interrupt)
            .WithName("A1111Interrupt")
            .WithSummary("AUTOMATIC1111 interrupt")
            .WithDescription("Cancels the jobs of every A1111 call this coordinator is running, as POST /v1/jobs/{id}/cancel does; the waiting calls answer with the images finished so far.");

        api.MapGet("/samplers", Samplers).WithName("A1111Samplers").WithSummary("AUTOMATIC1111 samplers").Produces<IReadOnlyList<SamplerItem>>();
        api.MapGet("/schedulers", Schedulers).WithName("A1111Schedulers").WithSummary("AUTOMATIC1111 schedulers (A1111 1.9+): Automatic and Karras");
        api.MapGet("/sd-models", SdModels).WithName("A1111SdModels").WithSummary("AUTOMATIC1111 checkpoints: the farm's configured and pushed models").Produces<IReadOnlyList<SdModelItem>>();
        api.MapGet("/options", GetOptions).WithName("A1111GetOptions").WithSummary("AUTOMATIC1111 options (sd_model_checkpoint and the few the farm keeps)");
        api.MapPost("/options", SetOptions).WithName("A1111SetOptions").WithSummary("AUTOMATIC1111 options: sets sd_model_checkpoint for the whole farm; other options are ignored");
        api.MapPost("/png-info", PngInfo).WithName("A1111PngInfo").WithSummary("AUTOMATIC1111 PNG info: the parameters text of a PNG").Produces<PngInfoResponse>();
        return api;
    }

    public static Task<IResult> Txt2Img(HttpContext context, [FromServices] Automatic1111Runner runner) =>
        runner.RunAsync<Txt2ImgBody>(context);

    public static Task<IResult> Img2Img(HttpContext context, [FromServices] Automatic1111Runner runner) =>
        runner.RunAsync<Img2ImgBody>(context);

    public static async Task<IResult> Progress(
        [FromServices] Automatic1111Tasks tasks,
        [FromServices] IMonitoringApi monitoring,
        [FromServices] TimeProvider clock,
        CancellationToken cancellationToken)
    {
        long total = 0, done = 0;
        int step = 0, steps = 0;
        Automatic1111Task? oldest = null;
        Guid? current = null;
        foreach (var task in tasks.InFlight())
        {
            var final = 0;
            foreach (var jobId in task.JobIds)
            {
                var job = await monitoring.GetJobAsync(jobId, new JobDetailsPage(ImagesLimit: 0), cancellationToken);
                if (job is null || JobStateMachine.IsFinal(job.State))
                {
                    final++;
                    continue;
                }

                oldest ??= task;
                current ??= jobId;
                total += job.Progress.Total;
                done += job.Progress.Done;
                if (steps == 0 && job.RunningItems is [var running, ..] && running.TotalSteps > 0)
                {
                    (step, steps) = (running.Step, running.TotalSteps);
                }
            }

            if (final == task.JobIds.Count)
            {
                tasks.Finish(task.Id);
            }
        }

        if (oldest is null)
        {
            return TypedResults.Json(
                new ProgressResponse(0, 0, new ProgressState(false, false, false, "", 0, "0", 0, 0, 0), null, null, null),
                Automatic1111Json.Options);
        }

        // A1111's estimate: elapsed / progress is the whole run, so what is left is that minus the elapsed time.
        var progress = total == 0 ? 0 : Math.Clamp((done + (steps > 0 ? (double)step / steps : 0)) / total, 0, 1);
        var elapsed = (clock.GetUtcNow() - oldest.StartedAt).TotalSeconds;
        var eta = progress > 0 ? elapsed / progress - elapsed : 0;
        // Only unfinished jobs are counted, so nothing listed is interrupted yet (a canceled job is final at once).
        var state = new ProgressState(false, false, false, oldest.Kind, (int)Math.Min(total, int.MaxValue), Timestamp(oldest.StartedAt),
            (int)Math.Min(done, int.MaxValue), step, steps);
        var text = string.Create(CultureInfo.InvariantCulture, $"{done} of {total} farm items done (job {current})");
        return TypedResults.Json(new ProgressResponse(progress, Math.Max(eta, 0), state, null, text, current?.ToString()), Automatic1111Json.Options);
    }

    public static async Task<IResult> Interrupt(
        [FromServices] Automatic1111Tasks tasks,
        [FromServices] JobCancellation cancellation,
        [FromServices] IHostApplicationLifetime lifetime)
    {
        // Not the request's token: an interrupt that has begun finishes even if its caller hangs up.
        foreach (var task in tasks.InFlight())
        {
            foreach (var jobId in task.JobIds)
            {
                await cancellation.CancelAsync(jobId, InterruptReason, lifetime.ApplicationStopping);
            }
        }

        return TypedResults.Json(new Dictionary<string, object>(), Automatic1111Json.Options);
    }

    public static IResult Samplers() => TypedResults.Json(
        Automatic1111Samplers.All.Select(e => new SamplerItem(e.Name, e.Aliases,
            e.Farm == e.Karras ? new Dictionary<string, string> { ["scheduler"] = "karras" } : new Dictionary<string, string>())).ToList(),
        Automatic1111Json.Options);

    public static IResult Schedulers() => TypedResults.Json(
        new[]
        {
            new SchedulerItem("automatic", Automatic1111Samplers.AutomaticScheduler, null, -1, false),
            new SchedulerItem("karras", Automatic1111Samplers.KarrasScheduler, null, 7.0, false),
        },
        Automatic1111Json.Options);

    public static async Task<IResult> SdModels([FromServices] Automatic1111Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        var models = await checkpoint.ListModelsAsync(cancellationToken);
        return TypedResults.Json(
            models.Select(m => new SdModelItem(m.Name, m.Name, null, null, m.Manifest is null ? m.Name : $"models/{m.Name}", null)).ToList(),
            Automatic1111Json.Options);
    }

    public static async Task<IResult> GetOptions([FromServices] Automatic1111Checkpoint checkpoint, CancellationToken cancellationToken) =>
        TypedResults.Json(new Dictionary<string, object>
        {
            [Automatic1111Checkpoint.OptionName] = await checkpoint.GetCurrentAsync(cancellationToken),
            ["samples_format"] = "png",
            // The engine conditions on CLIP's last layer (A1111's clip skip 1).
            ["CLIP_stop_at_last_layers"] = 1,
        }, Automatic1111Json.Options);

    public static async Task<IResult> SetOptions(
        HttpRequest request,
        [FromServices] Automatic1111Checkpoint checkpoint,
        [FromServices] IHostApplicationLifetime lifetime,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        JsonElement body;
        try
        {
            body = await JsonSerializer.DeserializeAsync<JsonElement>(request.Body, Automatic1111Json.Options, cancellationToken);
        }
        catch (JsonException)
        {
            return Validation([new([], "The body is not valid JSON; send an object of options, e.g. {\"sd_model_checkpoint\": \"tiny-sd\"}.")]);
        }

        if (body.ValueKind != JsonValueKind.Object)
        {
            return Validation([new([], "Send an object of options, e.g. {\"sd_model_checkpoint\": \"tiny-sd\"}.")]);
        }

        if (body.TryGetProperty(Automatic1111Checkpoint.OptionName, out var value))
        {
            if (value.ValueKind != JsonValueKind.String)
            {
                return Validation([Field(Automatic1111Checkpoint.OptionName, "sd_model_checkpoint must be a model name (see GET /sdapi/v1/sd-models).")]);
            }

            var name = Automatic1111Checkpoint.ModelName(value.GetString()!);
            var models = await checkpoint.ListModelsAsync(cancellationToken);
            if (!models.Any(m => m.Name == name))
            {
                return Http(StatusCodes.Status400BadRequest,
                    $"model '{name}' not found; this farm has: {string.Join(", ", models.Select(m => m.Name))} (GET /sdapi/v1/sd-models).", "RuntimeError");
            }

            await checkpoint.SetAsync(name, lifetime.ApplicationStopping);
        }

        // A1111 answers null; options other than the checkpoint are accepted and ignored (README).
        return TypedResults.Json<object?>(null, Automatic1111Json.Options);
    }

    public static async Task<IResult> PngInfo(HttpRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        PngInfoBody? body;
        try
        {
            body = await JsonSerializer.DeserializeAsync<PngInfoBody>(request.Body, Automatic1111Json.Options, cancellationToken);
        }
        catch (JsonException)
        {
            return Validation([Field("image", "The body is not valid JSON; send {\"image\": \"<base64 PNG>\"}.")]);
        }

        var empty = new Dictionary<string, string>();
        if (string.IsNullOrWhiteSpace(body?.Image))
        {
            return TypedResults.Json(new PngInfoResponse("", empty, empty), Automatic1111Json.Options);
        }

        var bytes = Automatic1111Images.TryDecodeBase64(body.Image, out var problem);
        if (bytes is null)
        {
            return Http(StatusCodes.Status400BadRequest, $"image {problem}");
        }

        if (!Automatic1111Images.IsPng(bytes))
        {
            // JPEG and WebP keep A1111's parameters in EXIF, which the farm does not read (its own images are PNGs).
            return TypedResults.Json(new PngInfoResponse("", empty, empty), Automatic1111Json.Options);
        }

        IReadOnlyDictionary<string, string> chunks;
        try
        {
            chunks = PngCodec.ReadTextChunks(bytes);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or OverflowException or IndexOutOfRangeException)
        {
            return Http(StatusCodes.Status400BadRequest, "image is a damaged PNG; its chunks cannot be read.");
        }

        var items = chunks.Where(c => c.Key != PngCodec.ParametersKeyword).ToDictionary(c => c.Key, c => c.Value, StringComparer.Ordinal);
        var info = chunks.GetValueOrDefault(PngCodec.ParametersKeyword, "");
        return TypedResults.Json(
            new PngInfoResponse(info, items, info.Length == 0 ? empty : Automatic1111InfoText.Parse(info)),
            Automatic1111Json.Options);
    }

    internal static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
}

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
            var hash = Convert.ToHexString(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(job)));
            switch (await submission.SubmitAsync(job, hash, idempotencyKey: null, stopping))
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
                default:
                    throw new InvalidOperationException("A submission without an idempotency key cannot reuse one.");
            }
        }

        var task = tasks.Start(call.Kind, jobIds);
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
