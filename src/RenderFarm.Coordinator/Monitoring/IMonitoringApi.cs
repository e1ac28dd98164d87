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
    Task<PagedResult<JobSummary>> GetJobsAsync(JobState? state, int page, int pageSize, CancellationToken cancellationToken);

    /// <summary>Every worker that has ever heartbeated, live ones first.</summary>
    Task<IReadOnlyList<WorkerSummary>> GetWorkersAsync(CancellationToken cancellationToken);

    /// <summary>Where item <paramref name="index"/>'s image is; null when the item has no image (yet).</summary>
    Task<ImageLocation?> GetImageAsync(Guid jobId, long index, CancellationToken cancellationToken);
}
