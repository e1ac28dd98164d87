using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Monitoring;
using RenderFarm.Coordinator.Previews;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Domain.States;
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
        var api = app.MapGroup(Prefix).WithTags("AUTOMATIC1111").RequireAuthorization(FarmPolicies.Read);

        api.MapPost("/txt2img", Txt2Img)
            .WithName("A1111Txt2Img")
            .WithSummary("AUTOMATIC1111 txt2img")
            .WithDescription("Submits a farm job (one per image with enable_hr) and answers when it is done with base64 PNGs, the request as understood and A1111's info JSON. The job goes on if the client disconnects; past Coordinator:Automatic1111:WaitTimeout the answer is 504 naming the job.")
            .Accepts<Txt2ImgBody>("application/json")
            .Produces<ImagesResponse>()
            .RequireAuthorization(FarmPolicies.Submit);

        api.MapPost("/img2img", Img2Img)
            .WithName("A1111Img2Img")
            .WithSummary("AUTOMATIC1111 img2img")
            .WithDescription("img2img from init_images[0], or inpaint when a mask is sent; otherwise as txt2img.")
            .Accepts<Img2ImgBody>("application/json")
            .Produces<ImagesResponse>()
            .RequireAuthorization(FarmPolicies.Submit);

        api.MapGet("/progress", Progress)
            .WithName("A1111Progress")
            .WithSummary("AUTOMATIC1111 progress")
            .WithDescription("Progress of the A1111 calls this coordinator is running (all of them together; a submitter's key sees its tenant's calls only). current_image is the latest preview (base64 JPEG) of the first running item this coordinator holds one for; skip_current_image=true leaves it out.")
            .Produces<ProgressResponse>();

        api.MapPost("/interrupt", Interrupt)
            .WithName("A1111Interrupt")
            .WithSummary("AUTOMATIC1111 interrupt")
            .WithDescription("Cancels the jobs of every A1111 call this coordinator is running, as POST /v1/jobs/{id}/cancel does; the waiting calls answer with the images finished so far. A submitter's key interrupts its tenant's calls only.")
            .RequireAuthorization(FarmPolicies.Submit);

        api.MapGet("/samplers", Samplers).WithName("A1111Samplers").WithSummary("AUTOMATIC1111 samplers").Produces<IReadOnlyList<SamplerItem>>();
        api.MapGet("/schedulers", Schedulers).WithName("A1111Schedulers").WithSummary("AUTOMATIC1111 schedulers (A1111 1.9+): Automatic and Karras");
        api.MapGet("/sd-models", SdModels).WithName("A1111SdModels").WithSummary("AUTOMATIC1111 checkpoints: the farm's configured and pushed models").Produces<IReadOnlyList<SdModelItem>>();
        api.MapGet("/options", GetOptions).WithName("A1111GetOptions").WithSummary("AUTOMATIC1111 options (sd_model_checkpoint and the few the farm keeps)");
        api.MapPost("/options", SetOptions).WithName("A1111SetOptions").WithSummary("AUTOMATIC1111 options: sets sd_model_checkpoint for the whole farm (operators and admins); other options are ignored")
            .RequireAuthorization(FarmPolicies.Operate);
        api.MapPost("/png-info", PngInfo).WithName("A1111PngInfo").WithSummary("AUTOMATIC1111 PNG info: the parameters text of a PNG").Produces<PngInfoResponse>();
        return api;
    }

    public static Task<IResult> Txt2Img(HttpContext context, [FromServices] Automatic1111Runner runner) =>
        runner.RunAsync<Txt2ImgBody>(context);

    public static Task<IResult> Img2Img(HttpContext context, [FromServices] Automatic1111Runner runner) =>
        runner.RunAsync<Img2ImgBody>(context);

    public static async Task<IResult> Progress(
        ClaimsPrincipal user,
        [FromServices] Automatic1111Tasks tasks,
        [FromServices] IMonitoringApi monitoring,
        [FromServices] PreviewStore previews,
        [FromServices] TimeProvider clock,
        CancellationToken cancellationToken,
        [FromQuery(Name = "skip_current_image")] bool skipCurrentImage = false)
    {
        long total = 0, done = 0;
        int step = 0, steps = 0;
        Automatic1111Task? oldest = null;
        Guid? current = null;
        ItemPreview? preview = null;
        foreach (var task in tasks.InFlight(user.VisibleTenant()))
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

                if (!skipCurrentImage && preview is null)
                {
                    preview = job.RunningItems.Select(r => previews.Get(jobId, r.Index)).FirstOrDefault(p => p is not null);
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
        // A1111 sends the live preview as bare base64 in its live_previews_image_format; the farm's previews are JPEG,
        // one of the formats A1111 itself offers, so clients that decode it as an image show it unchanged.
        var image = preview is null ? null : Convert.ToBase64String(preview.Image);
        return TypedResults.Json(new ProgressResponse(progress, Math.Max(eta, 0), state, image, text, current?.ToString()), Automatic1111Json.Options);
    }

    public static async Task<IResult> Interrupt(
        ClaimsPrincipal user,
        [FromServices] Automatic1111Tasks tasks,
        [FromServices] JobCancellation cancellation,
        [FromServices] IHostApplicationLifetime lifetime)
    {
        // Not the request's token: an interrupt that has begun finishes even if its caller hangs up.
        // A submitter interrupts its own tenant's calls; operators and admins every call, as A1111's one "current job".
        foreach (var task in tasks.InFlight(user.VisibleTenant()))
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
