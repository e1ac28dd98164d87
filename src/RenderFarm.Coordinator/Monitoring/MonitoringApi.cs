using System.Globalization;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Placement;
using RenderFarm.Domain.Policies;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Monitoring;

/// <summary><see cref="IMonitoringApi"/> over the coordinator's database, with no tracking and bounded pages.</summary>
internal sealed partial class MonitoringApi(CoordinatorDbContext db, TimeProvider clock, IOptions<CoordinatorOptions> options) : IMonitoringApi
{
    private readonly LeasePolicy _lease = options.Value.ToLeasePolicy();

    public async Task<JobDetails?> GetJobAsync(Guid jobId, JobDetailsPage page, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(page);
        var job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId, cancellationToken);
        if (job is null)
        {
            return null;
        }

        var limit = Math.Clamp(page.ImagesLimit, 0, JobDetailsPage.MaxImagesLimit);
        var after = page.ImagesAfter;
        var images = job.SucceededItems == 0 ? [] : await db.Items.AsNoTracking()
            .Where(i => i.JobId == jobId && i.State == ItemState.Succeeded && i.ArtifactKey != null && i.Index > after)
            .OrderBy(i => i.Index).Take(limit)
            .Select(i => new JobImage(i.Index, i.Seed, "", i.WorkerId, i.Width, i.Height,
                i.Prompt, i.NegativePrompt, i.Steps, i.GuidanceScale, i.Sampler, i.Model, i.Sha256, i.Safety))
            .ToListAsync(cancellationToken);
        // An upscale job's items carry denoising stand-ins (JobSubmission.ToRequest); no step, guidance or sampler made its images.
        var upscale = job.Mode == RenderModes.Upscale;
        images = [.. images.Select(i => upscale
            ? i with { Url = CoordinatorRoutes.ImageUrl(jobId, i.Index), Steps = null, GuidanceScale = null, Sampler = null }
            : i with { Url = CoordinatorRoutes.ImageUrl(jobId, i.Index) })];

        var running = job.RunningItems == 0 ? [] : await db.Items.AsNoTracking()
            .Where(i => i.JobId == jobId && i.State == ItemState.Running)
            .OrderBy(i => i.Index).Take(JobDetailsPage.ListLimit)
            .Select(i => new RunningItem(i.Index, i.Id, i.Attempt, i.WorkerId, i.StepsDone, i.StepsTotal ?? i.Steps))
            .ToListAsync(cancellationToken);

        var errors = job.FailedItems + job.RetryingItems + job.RunningItems + job.QueuedItems == 0 ? [] : await db.Items.AsNoTracking()
            .Where(i => i.JobId == jobId && i.Error != null && i.State != ItemState.Succeeded && i.State != ItemState.Canceled)
            .OrderBy(i => i.Index).Take(JobDetailsPage.ListLimit)
            .Select(i => new ItemError(i.Index, i.Seed, i.Attempt, i.Error!, i.State == ItemState.Failed))
            .ToListAsync(cancellationToken);

        int? eligible = null;
        string? waitingReason = null;
        if (!JobStateMachine.IsFinal(job.State) && job.QueuedItems + job.RetryingItems > 0)
        {
            (eligible, waitingReason) = await ExplainWaitAsync(job, cancellationToken);
        }

        if (waitingReason is null && running.Count > 0)
        {
            waitingReason = await ExplainStoreWaitAsync(running, cancellationToken);
        }

        return new JobDetails(
            job.Id, job.State, Utc(job.CreatedAt), Utc(job.FinishedAt), job.Model, job.Width, job.Height, job.Mode, job.Priority,
            job.BaseSeed, job.TotalItems, ProgressOf(job), running, images, errors, eligible, waitingReason, job.CancelReason);
    }

    public async Task<JobSummary?> GetJobSummaryAsync(Guid jobId, CancellationToken cancellationToken)
    {
        var job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId, cancellationToken);
        return job is null ? null : SummaryOf(job);
    }

    public async Task<PagedResult<JobSummary>> GetJobsAsync(JobState? state, string? tenant, int page, int pageSize, CancellationToken cancellationToken)
    {
        var query = db.Jobs.AsNoTracking();
        if (tenant is not null)
        {
            query = query.Where(j => j.Tenant == tenant);
        }

        if (state is { } s)
        {
            query = query.Where(j => j.State == s);
        }

        var total = await query.LongCountAsync(cancellationToken);
        var rows = await query.OrderByDescending(j => j.CreatedAt).ThenByDescending(j => j.Id)
            .Skip((page - 1) * pageSize).Take(pageSize).ToListAsync(cancellationToken);
        return new PagedResult<JobSummary>([.. rows.Select(SummaryOf)], page, pageSize, total);
    }

    public async Task<IReadOnlyList<WorkerSummary>> GetWorkersAsync(CancellationToken cancellationToken)
    {
        var liveAfter = LiveAfter();
        var rows = await db.Workers.AsNoTracking().OrderByDescending(w => w.LastHeartbeatAt).ToListAsync(cancellationToken);
        return [.. rows.Select(w => new WorkerSummary(
            w.Id, w.Host, w.DeviceName, w.MemoryTotalBytes, w.MemoryFreeBytes, w.MemoryBudgetBytes,
            w.ExecutionProviders, w.LoadedModels, w.State, w.LastHeartbeatAt >= liveAfter, w.Strategy, w.Pool,
            w.CurrentItemIds, Utc(w.LastHeartbeatAt), Utc(w.FirstSeenAt),
            w.MaxPixels, PlacementPolicy.LargestSquareSide(w.MaxPixels), w.ResidentMaxPixels, w.InstalledModels, w.RenderQueue))];
    }

    public async Task<ImageLocation?> GetImageAsync(Guid jobId, long index, CancellationToken cancellationToken)
    {
        var key = await db.Items.AsNoTracking()
            .Where(i => i.JobId == jobId && i.Index == index && i.State == ItemState.Succeeded)
            .Select(i => i.ArtifactKey).FirstOrDefaultAsync(cancellationToken);
        return key is null ? null : new ImageLocation(jobId, index, key);
    }

    // Eligible as placement judges it: live, taking work, and planning the job's largest item within its budget
    // (models are fetched on demand, so they decide where work goes first, not whether it can go).
    private async Task<(int Eligible, string? Reason)> ExplainWaitAsync(JobRow job, CancellationToken cancellationToken)
    {
        var model = job.Model;
        var liveAfter = LiveAfter();
        var workers = await db.Workers.AsNoTracking()
            .Select(w => new { w.Id, w.State, w.LastHeartbeatAt, w.MaxPixels, w.MemoryBudgetBytes })
            .ToListAsync(cancellationToken);
        var live = workers.Where(w => w.LastHeartbeatAt >= liveAfter).ToList();
        var taking = live.Where(w => w.State is WorkerState.Idle or WorkerState.Busy).ToList();
        var (width, height) = LargestItemSize(job);
        var pixels = (long)width * height;
        var eligible = taking.Count(w => w.MaxPixels <= 0 || pixels <= w.MaxPixels);
        if (eligible > 0)
        {
            return (eligible, null);
        }

        if (taking.Count > 0)
        {
            var capacities = taking.Select(w => new WorkerCapacity(w.Id, w.MemoryBudgetBytes, w.MaxPixels, 0, [], [], null, 0, 0)).ToList();
            var why = PlacementPolicy.CannotFit(new UnitShape(model, width, height), capacities);
            return (0, $"The {taking.Count} connected worker(s) cannot take it: {why} The job waits for a worker with a larger memory budget.");
        }

        var leaseSeconds = _lease.LeaseDuration.TotalSeconds.ToString(CultureInfo.InvariantCulture);
        string reason;
        if (workers.Count == 0)
        {
            reason = $"No worker has connected yet, so nothing can render model '{model}'. Start one (dotnet run --project src/RenderFarm.Worker) against the same RabbitMQ and S3.";
        }
        else if (live.Count == 0)
        {
            var last = workers.Max(w => w.LastHeartbeatAt);
            var ago = (clock.GetUtcNow().UtcDateTime - last).TotalSeconds.ToString("F0", CultureInfo.InvariantCulture);
            reason = $"No worker is connected: the last heartbeat arrived {ago} s ago, and a worker counts as connected for {leaseSeconds} s after one. The job waits until a worker comes back.";
        }
        else
        {
            reason = $"The {live.Count} connected worker(s) are starting up or draining and take no new work yet.";
        }

        return (0, reason);
    }

    // Rendered items of workers that cannot reach the object store wait at their upload: Running, with no step moving.
    private async Task<string?> ExplainStoreWaitAsync(IReadOnlyList<RunningItem> running, CancellationToken cancellationToken)
    {
        var ids = running.Select(r => r.WorkerId).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        var liveAfter = LiveAfter();
        var cut = await db.Workers.AsNoTracking()
            .Where(w => ids.Contains(w.Id) && w.StoreUnreachableSince != null && w.LastHeartbeatAt >= liveAfter)
            .Select(w => new { w.Id, Since = w.StoreUnreachableSince!.Value })
            .ToListAsync(cancellationToken);
        if (cut.Count == 0)
        {
            return null;
        }

        var names = cut.Select(w => w.Id).Order(StringComparer.Ordinal).ToList();
        var waiting = running.Count(r => r.WorkerId is { } w && names.Contains(w));
        var since = Utc(cut.Min(w => w.Since)).ToString("u", CultureInfo.InvariantCulture);
        return $"{waiting} running item(s) wait to store their images: worker(s) {string.Join(", ", names)} cannot reach the object store (since {since}). They upload as soon as it answers, without spending an attempt.";
    }

    // A hires job's items render at its base and tile sizes (stored resolved, so no default applies), not its target
    // size; an upscale job's at none (0×0: every worker can take them).
    private static (int Width, int Height) LargestItemSize(JobRow job)
    {
        if (RenderModes.IsTiled(job.Mode) && JsonSerializer.Deserialize<JobRequest>(job.Request, JobSubmission.RequestJson) is { } request)
        {
            return PlacementAdmission.ItemSizes(request).DefaultIfEmpty((Width: 0, Height: 0)).MaxBy(s => (long)s.Width * s.Height);
        }

        return (job.Width, job.Height);
    }

    private DateTime LiveAfter() => _lease.ExpiredIfHeartbeatBefore(clock.GetUtcNow()).UtcDateTime;

    private static JobSummary SummaryOf(JobRow job) => new(
        job.Id, job.State, Utc(job.CreatedAt), Utc(job.FinishedAt), job.Model, job.Width, job.Height, job.Mode, job.Priority,
        job.TotalItems, ProgressOf(job));

    private static JobProgress ProgressOf(JobRow job) => new(
        job.TotalItems, job.SucceededItems + job.FailedItems + job.CanceledItems,
        job.QueuedItems, job.RunningItems, job.RetryingItems, job.SucceededItems, job.FailedItems, job.CanceledItems);

    private static DateTimeOffset Utc(DateTime value) => new(DateTime.SpecifyKind(value, DateTimeKind.Utc));

    private static DateTimeOffset? Utc(DateTime? value) => value is { } v ? Utc(v) : null;
}
