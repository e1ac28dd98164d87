using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Monitoring;

/// <summary>
/// The read side of the farm: every GET endpoint (and later the dashboard and Grafana) reads through this
/// read-only, paged port, never the tables (Hangfire's <c>IMonitoringApi</c> idea).
/// </summary>
public interface IMonitoringApi
{
    /// <summary>One job with its progress, a page of its images, running items, errors and why it waits; null when unknown.</summary>
    Task<JobDetails?> GetJobAsync(Guid jobId, JobDetailsPage page, CancellationToken cancellationToken);

    /// <summary>One job's state and counts; null when unknown.</summary>
    Task<JobSummary?> GetJobSummaryAsync(Guid jobId, CancellationToken cancellationToken);

    /// <summary>Jobs, newest first, optionally of one state. <paramref name="page"/> is 1-based.</summary>
    Task<PagedResult<JobSummary>> GetJobsAsync(JobState? state, string? tenant, int page, int pageSize, CancellationToken cancellationToken);

    /// <summary>Every worker that has ever heartbeated, live ones first.</summary>
    Task<IReadOnlyList<WorkerSummary>> GetWorkersAsync(CancellationToken cancellationToken);

    /// <summary>Where item <paramref name="index"/>'s image is; null when the item has no image (yet).</summary>
    Task<ImageLocation?> GetImageAsync(Guid jobId, long index, CancellationToken cancellationToken);

    /// <summary>A keyset page of a job's items in index order (after <paramref name="after"/>, optionally of one state); null when the job is unknown.</summary>
    Task<JobItemsPage?> GetJobItemsAsync(Guid jobId, ItemState? state, long after, int limit, CancellationToken cancellationToken);

    /// <summary>Every worker seen recently, with its status (live, draining, gone) and the items it renders now.</summary>
    Task<IReadOnlyList<FleetWorker>> GetFleetAsync(CancellationToken cancellationToken);

    /// <summary>Items and jobs by state, the outbox, and per-minute throughput and wait over the last <paramref name="minutes"/>.</summary>
    Task<QueueStats> GetQueueStatsAsync(int minutes, CancellationToken cancellationToken);

    /// <summary>Why one job waits: its place in the queue, an estimate, and each worker's reason; null when the job is unknown.</summary>
    Task<WaitingJob?> GetWaitingAsync(Guid jobId, CancellationToken cancellationToken);

    /// <summary>Every waiting job (unfinished, with queued items), first in first, each with why it waits. <paramref name="page"/> is 1-based.</summary>
    Task<PagedResult<WaitingJob>> GetQueueAsync(int page, int pageSize, CancellationToken cancellationToken);
}
