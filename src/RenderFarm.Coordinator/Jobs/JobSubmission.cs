using System.Diagnostics;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Apis;
using RenderFarm.Coordinator.Dispatch;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Placement;
using RenderFarm.Diffusion.Safety;
using RenderFarm.Diffusion.Watermarking;
using RenderFarm.Domain.Items;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.States;
using RenderFarm.Domain.Tiling;
using RenderFarm.Storage;
using RenderFarm.Storage.Models;
using RenderFarm.Telemetry;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>The outcome of a submission.</summary>
internal abstract record SubmissionResult
{
    private SubmissionResult()
    {
    }

    /// <summary>Accepted (or, with <paramref name="Replayed"/>, the job an earlier request with the same key created).</summary>
    public sealed record Accepted(Guid JobId, bool Replayed) : SubmissionResult;

    /// <summary>Rejected; errors keyed by camelCase field path.</summary>
    public sealed record Invalid(IDictionary<string, string[]> Errors) : SubmissionResult;

    /// <summary>The idempotency key was used before with a different request.</summary>
    public sealed record KeyReused(Guid JobId) : SubmissionResult;

    /// <summary>A tenant quota of <c>Coordinator:Auth</c> would be exceeded.</summary>
    /// <param name="Tenant">The submitting tenant.</param>
    /// <param name="Quota">The quota's setting name, e.g. <c>MaxQueuedItemsPerTenant</c>.</param>
    /// <param name="Limit">Its value.</param>
    /// <param name="Current">What the tenant holds now (waiting items, unfinished hires jobs; for an image size, the size asked for).</param>
    /// <param name="Detail">What was refused and what to do.</param>
    /// <param name="WaitHelps">True when the quota frees up as work finishes (429); false when this job can never pass it (403).</param>
    public sealed record QuotaExceeded(string Tenant, string Quota, long Limit, long Current, string Detail, bool WaitHelps) : SubmissionResult
    {
        public const string QueuedItems = "MaxQueuedItemsPerTenant";
        public const string ImagePixels = "MaxImagePixelsPerTenant";
        public const string ConcurrentHiresJobs = "MaxConcurrentHiresJobsPerTenant";
    }
}

/// <summary>Where init images and masks go before their job is written.</summary>
internal interface IJobInputs
{
    /// <summary>Stores an uploaded PNG of a job and returns its artifact key.</summary>
    Task<string> SaveAsync(Guid jobId, string name, byte[] png, CancellationToken cancellationToken);
}

/// <summary>
/// Accepts a job: validates it with the domain's rules, stores its input images, and writes the job, its items
/// and the outbox rows of its work units in one transaction. Items are written page by page straight from
/// <see cref="SweepExpansion.Pages"/>, so a million-item sweep never sits in memory at once.
/// </summary>
internal sealed class JobSubmission(
    CoordinatorDbContext db,
    IDatabaseDialect dialect,
    IJobInputs inputs,
    OutboxSignal signal,
    TimeProvider clock,
    IOptions<CoordinatorOptions> options,
    IOptions<Auth.AuthOptions> auth,
    PlacementAdmission admission,
    IArtifactStore store)
{
    internal static readonly JsonSerializerOptions RequestJson = new(JsonSerializerDefaults.Web);

    private readonly CoordinatorOptions _options = options.Value;

    // Models pushed to the store (`renderfarm models push`) are as good as configured ones: workers fetch them on demand.
    private async Task<bool> IsInModelStoreAsync(string name, CancellationToken cancellationToken)
    {
        if (!ModelNames.IsValid(name))
        {
            return false;
        }

        try
        {
            return await new ModelRepository(store, clock).TryGetManifestAsync(name, cancellationToken) is not null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // An unreachable or damaged store must not turn a bad model name into a 500: the name is then unknown.
            return false;
        }
    }

    /// <summary>
    /// The native side of the model a hires job renders with, which its tile, overlap and base default to
    /// (<see cref="ModelSides"/>). Read only when a default is needed; an upscale job, which opens no Stable Diffusion
    /// model, keeps SD 1.x's 512, as does every other mode (the value is then unused).
    /// </summary>
    private async Task<int> HiresModelSideAsync(JobRequest request, CancellationToken cancellationToken)
    {
        var needsDefault = request.Tile is null || request.Overlap is null || (request.InitImage is null && request.BaseWidth is null);
        return request.Mode == RenderModes.Hires && needsDefault
            ? await new ModelSides(store, clock).ReadAsync(request.Model ?? _options.EffectiveModels[0], cancellationToken)
            : HiresLimits.DefaultModelSide;
    }

    /// <summary>Validates and writes a job for <paramref name="tenant"/> (the submitting key's).</summary>
    public async Task<SubmissionResult> SubmitAsync(CreateJobBody body, string requestHash, string? idempotencyKey, string tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(tenant);
        idempotencyKey = TenantKey(idempotencyKey, tenant);
        if (idempotencyKey is not null && await FindKeyAsync(idempotencyKey, requestHash, cancellationToken) is { } earlier)
        {
            return earlier;
        }

        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var request = ToRequest(body, errors);
        var knownModels = new HashSet<string>(_options.EffectiveModels, StringComparer.Ordinal);
        if (request.Model is { } named && !knownModels.Contains(named) && await IsInModelStoreAsync(named, cancellationToken))
        {
            knownModels.Add(named);
        }

        // An upscaler is a model folder like any other to the store and the workers' cache.
        if (request.Upscaler is { } upscaler && !knownModels.Contains(upscaler) && await IsInModelStoreAsync(upscaler, cancellationToken))
        {
            knownModels.Add(upscaler);
        }

        var modelSide = await HiresModelSideAsync(request, cancellationToken);
        var missing = errors.Keys.ToHashSet(StringComparer.Ordinal);
        foreach (var error in new JobRequestValidator(_options.ToValidationLimits(), knownModels, modelSide).Validate(request))
        {
            // A missing field was already reported as missing; the validator's view of its stand-in value adds nothing.
            if (!missing.Contains(error.Field))
            {
                Add(errors, error.Field, error.Message);
            }
        }

        foreach (var (field, message) in ImageMarkProblems(request))
        {
            Add(errors, field, message);
        }

        var images = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        (int Width, int Height) initSize = default;
        foreach (var (field, value) in new[] { ("initImage", request.InitImage), ("mask", request.Mask) })
        {
            if (value is null || errors.ContainsKey(field))
            {
                continue;
            }

            if (PngImage.TryDecode(value, out var png, out var pngWidth, out var pngHeight, out var problem))
            {
                images[field] = png;
                if (field == "initImage")
                {
                    initSize = (pngWidth, pngHeight);
                }
            }
            else
            {
                Add(errors, field, $"{field} {problem}");
            }
        }

        if (errors.Count > 0)
        {
            return new SubmissionResult.Invalid(errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal));
        }

        // Refused when live workers exist and none can plan the job's largest item (an empty fleet accepts: work waits).
        if (await admission.CheckAsync(request.Model ?? _options.EffectiveModels[0], PlacementAdmission.ItemSizes(request, modelSide), cancellationToken) is { } refused)
        {
            return new SubmissionResult.Invalid(refused);
        }

        if (await OverQuotaAsync(request, tenant, auth.Value, cancellationToken) is { } over)
        {
            return over;
        }

        var jobId = Guid.CreateVersion7();
        using var activity = RenderFarmDiagnostics.CoordinatorActivitySource.StartActivity("job submit");
        activity?.SetTag(RenderFarmTags.JobId, jobId.ToString());
        activity?.SetTag(RenderFarmTags.Model, request.Model ?? _options.EffectiveModels[0]);
        activity?.SetTag(RenderFarmTags.Mode, request.Mode ?? GenerationDefaults.Mode);
        activity?.SetTag(RenderFarmTags.Size, RenderFarmTags.SizeOf(request.Width, request.Height));
        activity?.SetTag(RenderFarmTags.Sampler, request.Sampler);
        if (images.TryGetValue("initImage", out var init))
        {
            request = request with { InitImage = await inputs.SaveAsync(jobId, "init", init, cancellationToken) };
        }

        if (images.TryGetValue("mask", out var mask))
        {
            request = request with { Mask = await inputs.SaveAsync(jobId, "mask", mask, cancellationToken) };
        }

        try
        {
            if (RenderModes.IsTiled(request.Mode))
            {
                var baseImage = request.InitImage is { } baseKey ? new HiresBaseImage(baseKey, initSize.Width, initSize.Height) : null;
                await WriteHiresAsync(jobId, request, baseImage, modelSide, idempotencyKey, requestHash, tenant, cancellationToken);
            }
            else
            {
                var total = SweepExpansion.CountItems(request);
                var expansion = SweepExpansion.For(request, Random.Shared.NextInt64(0, SweepExpansion.MaxBaseSeed(total) + 1), _options.EffectiveModels[0]);
                await WriteAsync(jobId, request, expansion, idempotencyKey, requestHash, tenant, cancellationToken);
            }
        }
        catch (DbUpdateException) when (idempotencyKey is not null)
        {
            // A concurrent request with the same key committed first; answer with its job.
            db.ChangeTracker.Clear();
            if (await FindKeyAsync(idempotencyKey, requestHash, cancellationToken) is { } winner)
            {
                return winner;
            }

            throw;
        }

        signal.Notify();
        return new SubmissionResult.Accepted(jobId, Replayed: false);
    }

    private async Task WriteAsync(Guid jobId, JobRequest request, SweepExpansion expansion, string? idempotencyKey, string requestHash, string tenant, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        db.Jobs.Add(new JobRow
        {
            Id = jobId,
            State = JobState.Queued,
            Tenant = tenant,
            CreatedAt = now,
            UpdatedAt = now,
            Model = expansion.Model,
            Width = request.Width,
            Height = request.Height,
            Mode = request.Mode ?? GenerationDefaults.Mode,
            Priority = request.Priority ?? GenerationDefaults.Priority,
            BaseSeed = expansion.BaseSeed,
            Request = JsonSerializer.Serialize(request with { Seed = expansion.BaseSeed, Model = expansion.Model }, RequestJson),
            Safety = request.Safety?.ToLowerInvariant(),
            Watermark = request.Watermark,
            TotalItems = expansion.Count,
            QueuedItems = expansion.Count,
            ShardSize = request.Output?.ShardSize,
        });
        if (idempotencyKey is not null)
        {
            db.IdempotencyKeys.Add(new IdempotencyKeyRow { Key = idempotencyKey, JobId = jobId, RequestHash = requestHash, CreatedAt = now });
        }

        await db.SaveChangesAsync(cancellationToken);
        db.ChangeTracker.Clear();

        // Stored with each unit so the dispatcher's send, seconds or hours later, continues this request's trace.
        var traceParent = Activity.Current?.Id;
        var planner = new WorkUnitPlanner(_options.WorkUnitSize);
        foreach (var page in expansion.Pages(_options.InsertPageSize))
        {
            var rows = new ItemRow[page.Count];
            for (var k = 0; k < rows.Length; k++)
            {
                rows[k] = ItemMessages.ToRow(jobId, page[k]);
            }

            await dialect.WriteItemsAsync(db, rows, cancellationToken);
            var outbox = planner.Plan(page).Select(unit => new OutboxRow
            {
                Kind = OutboxKind.WorkUnit,
                JobId = jobId,
                FirstIndex = unit[0].Index,
                ItemCount = unit.Count,
                Payload = traceParent,
                CreatedAt = now,
                AvailableAt = now,
            }).ToList();
            await dialect.WriteOutboxAsync(db, outbox, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Writes a hires job (<see cref="HiresJobs"/>): every item, but outbox rows only for what can run now (the base,
    /// or the tiles when the client gave the base image). The request is stored with its hires defaults resolved, so
    /// the job's tile grid never depends on defaults of a later version.
    /// </summary>
    private async Task WriteHiresAsync(Guid jobId, JobRequest request, HiresBaseImage? baseImage, int modelSide, string? idempotencyKey, string requestHash, string tenant,
        CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var expansion = HiresExpansion.For(request, _options.ToValidationLimits(), Random.Shared.NextInt64(0, ValidationLimits.MaxSeed + 1),
            _options.EffectiveModels[0], index => ItemMessages.ImageKey(jobId, index), baseImage, modelSide);
        var hires = expansion.Hires;
        var rows = HiresJobs.Rows(jobId, expansion, now);
        var succeeded = rows.Count(r => r.State == ItemState.Succeeded);
        var accepted = request with
        {
            Seed = expansion.Seed,
            Model = expansion.Model,
            Tile = hires.Tile,
            Overlap = hires.Overlap,
            Strength = request.Mode == RenderModes.Upscale ? null : hires.Strength,
            BaseWidth = baseImage is null ? hires.BaseWidth : null,
            BaseHeight = baseImage is null ? hires.BaseHeight : null,
        };

        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        db.Jobs.Add(new JobRow
        {
            Id = jobId,
            State = JobState.Queued,
            Tenant = tenant,
            CreatedAt = now,
            UpdatedAt = now,
            Model = expansion.Model,
            Width = hires.Width,
            Height = hires.Height,
            Mode = request.Mode ?? RenderModes.Hires,
            Priority = request.Priority ?? GenerationDefaults.Priority,
            BaseSeed = expansion.Seed,
            Request = JsonSerializer.Serialize(accepted, RequestJson),
            TotalItems = rows.Count,
            QueuedItems = rows.Count - succeeded,
            SucceededItems = succeeded,
        });
        if (idempotencyKey is not null)
        {
            db.IdempotencyKeys.Add(new IdempotencyKeyRow { Key = idempotencyKey, JobId = jobId, RequestHash = requestHash, CreatedAt = now });
        }

        await db.SaveChangesAsync(cancellationToken);
        db.ChangeTracker.Clear();

        // EF's batched inserts rather than the dialect's COPY, whose column list has no hires column; a hires job has
        // at most Coordinator:HiresMaxTiles + 2 items, so the slower path costs little.
        db.Items.AddRange(rows);
        await db.SaveChangesAsync(cancellationToken);
        db.ChangeTracker.Clear();

        var release = baseImage is null
            ? HiresJobs.Release(jobId, HiresExpansion.BaseIndex, HiresExpansion.BaseIndex, now)
            : HiresJobs.Release(jobId, HiresExpansion.BaseIndex + 1, expansion.TileCount, now);
        await dialect.WriteOutboxAsync(db, [.. release], cancellationToken);
        await tx.CommitAsync(cancellationToken);
    }

    // Checked before the job is written, not under a lock: two submissions racing may together pass the quota by one
    // job each, which a quota meant to stop one tenant from filling the queue can afford.
    // Checked without a lock: two submissions racing past a count quota can each pass it by one job (documented).
    private async Task<SubmissionResult.QuotaExceeded?> OverQuotaAsync(JobRequest request, string tenant, Auth.AuthOptions quotas, CancellationToken cancellationToken)
    {
        var hires = RenderModes.IsTiled(request.Mode);
        var pixels = (long)request.Width * request.Height;
        if (quotas.MaxImagePixelsPerTenant > 0 && pixels > quotas.MaxImagePixelsPerTenant)
        {
            return new SubmissionResult.QuotaExceeded(tenant, SubmissionResult.QuotaExceeded.ImagePixels, quotas.MaxImagePixelsPerTenant, pixels,
                $"This job's image is {request.Width}×{request.Height} = {pixels} pixels; tenant '{tenant}' may ask for at most {quotas.MaxImagePixelsPerTenant} (quota {SubmissionResult.QuotaExceeded.ImagePixels}). Ask for a smaller image.",
                WaitHelps: false);
        }

        if (hires && quotas.MaxConcurrentHiresJobsPerTenant > 0)
        {
            var running = await db.Jobs.AsNoTracking()
                .CountAsync(j => j.Tenant == tenant && (j.Mode == RenderModes.Hires || j.Mode == RenderModes.Upscale) && (j.State == JobState.Queued || j.State == JobState.Running), cancellationToken);
            if (running >= quotas.MaxConcurrentHiresJobsPerTenant)
            {
                return new SubmissionResult.QuotaExceeded(tenant, SubmissionResult.QuotaExceeded.ConcurrentHiresJobs, quotas.MaxConcurrentHiresJobsPerTenant, running,
                    $"Tenant '{tenant}' has {running} hires job(s) unfinished; the quota {SubmissionResult.QuotaExceeded.ConcurrentHiresJobs} is {quotas.MaxConcurrentHiresJobsPerTenant}. Wait for one to finish, or cancel one.",
                    WaitHelps: true);
            }
        }

        if (quotas.MaxQueuedItemsPerTenant > 0)
        {
            var requested = hires ? 1 : SweepExpansion.CountItems(request);
            var waiting = await db.Jobs.AsNoTracking()
                .Where(j => j.Tenant == tenant && (j.State == JobState.Queued || j.State == JobState.Running))
                .SumAsync(j => j.QueuedItems + j.RetryingItems, cancellationToken);
            if (waiting + requested > quotas.MaxQueuedItemsPerTenant)
            {
                return new SubmissionResult.QuotaExceeded(tenant, SubmissionResult.QuotaExceeded.QueuedItems, quotas.MaxQueuedItemsPerTenant, waiting,
                    $"Tenant '{tenant}' has {waiting} item(s) waiting and this job adds {requested}; the quota {SubmissionResult.QuotaExceeded.QueuedItems} is {quotas.MaxQueuedItemsPerTenant}. Wait for some to finish, or cancel some.",
                    WaitHelps: true);
            }
        }

        return null;
    }

    // Keys are per tenant: two tenants may pick the same key, and one must never be answered with the other's job.
    // The default tenant's keys are stored as sent (as before tenants existed); another tenant's as a hash of both,
    // which fits the key column whatever the tenant's length.
    private static string? TenantKey(string? key, string tenant) =>
        key is null || tenant == Auth.FarmClaims.DefaultTenant
            ? key
            : "t:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{tenant}\n{key}")));

    private async Task<SubmissionResult?> FindKeyAsync(string key, string requestHash, CancellationToken cancellationToken)
    {
        var row = await db.IdempotencyKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Key == key, cancellationToken);
        if (row is null)
        {
            return null;
        }

        return row.RequestHash == requestHash ? new SubmissionResult.Accepted(row.JobId, Replayed: true) : new SubmissionResult.KeyReused(row.JobId);
    }

    // Missing required fields are reported by name; their stand-ins (0, empty) only let the validator check the rest.
    private static JobRequest ToRequest(CreateJobBody body, Dictionary<string, List<string>> errors)
    {
        var sweep = body.Sweep;
        void Require(bool present, string field, string what)
        {
            if (!present)
            {
                Add(errors, field, $"{field} is required: {what}.");
            }
        }

        Require(body.Width is not null || sweep?.Sizes is not null, "width", "give the image width in pixels, a multiple of 8 (e.g. 512)");
        Require(body.Height is not null || sweep?.Sizes is not null, "height", "give the image height in pixels, a multiple of 8 (e.g. 512)");

        // A missing side of a size entry is reported by name; 0 stands in so the validator checks the rest.
        var sizes = sweep?.Sizes?.Select((size, i) =>
        {
            Require(size is null || size.Width is not null, $"sweep.sizes[{i}].width", "give each size's width in pixels");
            Require(size is null || size.Height is not null, $"sweep.sizes[{i}].height", "give each size's height in pixels");
            return size is null ? null! : new ImageSize(size.Width ?? 0, size.Height ?? 0);
        }).ToList();

        // The job's own size is its largest item's: what admission and placement must fit.
        var largest = sizes?.Where(z => z is not null).MaxBy(z => (long)z.Width * z.Height);
        // An upscale job runs no diffusion: its items still carry denoising settings (the item shape is hires'), so
        // valid stand-ins fill what the client need not give; any it gives are checked like any job's.
        var upscale = body.Mode == RenderModes.Upscale;
        Require(upscale || body.Steps is not null || sweep?.Steps is not null, "steps", "give the number of denoising steps (e.g. 25)");
        Require(upscale || body.GuidanceScale is not null || sweep?.GuidanceScales is not null, "guidanceScale", "give the guidance scale (e.g. 7.5)");
        Require(upscale || body.Sampler is not null || sweep?.Samplers is not null, "sampler", $"name a sampler ({string.Join(", ", KnownSamplers.All)})");

        return new JobRequest
        {
            Prompt = body.Prompt ?? string.Empty,
            NegativePrompt = body.NegativePrompt,
            Width = largest?.Width ?? body.Width ?? 0,
            Height = largest?.Height ?? body.Height ?? 0,
            Steps = body.Steps ?? (upscale ? ValidationLimits.MinSteps : 0),
            GuidanceScale = body.GuidanceScale ?? (upscale ? 1.0 : 0),
            Sampler = body.Sampler ?? (upscale ? KnownSamplers.All[0] : string.Empty),
            Seed = body.Seed,
            Count = body.Count,
            Model = body.Model,
            Mode = body.Mode,
            InitImage = body.InitImage,
            Mask = body.Mask,
            Strength = body.Strength,
            Priority = body.Priority,
            Tile = body.Tile,
            Overlap = body.Overlap,
            BaseWidth = body.BaseWidth,
            BaseHeight = body.BaseHeight,
            Safety = body.Safety,
            Watermark = body.Watermark,
            Upscaler = body.Upscaler,
            Output = ToOutput(body, errors),
            Sweep = sweep is null ? null : new SweepRequest
            {
                Prompts = sweep.Prompts,
                Seeds = sweep.Seeds,
                GuidanceScales = sweep.GuidanceScales,
                Steps = sweep.Steps,
                Samplers = sweep.Samplers,
                NegativePrompts = sweep.NegativePrompts,
                Strengths = sweep.Strengths,
                Sizes = sizes,
            },
        };
    }

    /// <summary>The job's <c>safety</c> and <c>watermark</c>, checked against the engine's own rules so no worker refuses them later.</summary>
    private static IEnumerable<(string Field, string Message)> ImageMarkProblems(JobRequest request)
    {
        var hires = RenderModes.IsTiled(request.Mode);
        if (request.Safety is { } safety)
        {
            if (!SafetyModes.TryParse(safety, out _))
            {
                yield return ("safety", $"safety '{safety}' is not a mode; use one of {string.Join(", ", SafetyModes.Names)}.");
            }
            else if (hires)
            {
                // The checker would judge a base or a tile, not the stitched image a user sees.
                yield return ("safety", "safety cannot be set on a hires or upscale job: its checker would judge the base and the tiles, not the stitched image. Leave it out.");
            }
        }

        if (request.Watermark is not { } watermark)
        {
            yield break;
        }

        if (hires)
        {
            yield return ("watermark", "watermark cannot be set on a hires or upscale job: a mark in the base or a tile does not survive the stitch. Leave it out.");
            yield break;
        }

        if (DwtDctWatermark.PayloadProblem(System.Text.Encoding.UTF8.GetBytes(watermark)) is { } payloadProblem)
        {
            yield return ("watermark", $"watermark: {payloadProblem}");
        }

        IEnumerable<ImageSize> sizes = request.Sweep?.Sizes is { Count: > 0 } swept ? swept : [new ImageSize(request.Width, request.Height)];
        if (sizes.Select(s => DwtDctWatermark.SizeProblem(s.Width, s.Height)).FirstOrDefault(p => p is not null) is { } sizeProblem)
        {
            yield return ("watermark", $"watermark: {sizeProblem}");
        }
    }

    private static OutputRequest? ToOutput(CreateJobBody body, Dictionary<string, List<string>> errors)
    {
        if (body.Output is not { } output)
        {
            return null;
        }

        var format = (output.Format ?? OutputRequest.Files).ToLowerInvariant();
        if (!OutputRequest.Formats.Contains(format))
        {
            Add(errors, "output.format", $"output.format '{output.Format}' is not an output format; use one of: {string.Join(", ", OutputRequest.Formats)}.");
            return null;
        }

        if (format == OutputRequest.Files)
        {
            if (output.ShardSize is not null)
            {
                Add(errors, "output.shardSize", "output.shardSize applies to the webdataset format only; leave it out for files.");
            }

            return null;
        }

        if (RenderModes.IsTiled(body.Mode))
        {
            Add(errors, "output.format", "output.format webdataset is for sweeps (txt2img, img2img, inpaint); a hires job makes one image, stored as a file.");
        }

        var shardSize = output.ShardSize ?? OutputRequest.DefaultShardSize;
        if (shardSize is < 1 or > OutputRequest.MaxShardSize)
        {
            Add(errors, "output.shardSize", $"output.shardSize must be between 1 and {OutputRequest.MaxShardSize} samples per shard (default {OutputRequest.DefaultShardSize}).");
        }

        return new OutputRequest(OutputRequest.WebDataset, shardSize);
    }

    private static void Add(Dictionary<string, List<string>> errors, string field, string message)
    {
        if (!errors.TryGetValue(field, out var list))
        {
            errors[field] = list = [];
        }

        list.Add(message);
    }
}
