using RenderFarm.Contracts;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Monitoring;

/// <summary>How far a job's items are.</summary>
/// <remarks><c>Total</c>: Items in the job. <c>Done</c>: Items in a final state (succeeded, failed or canceled).</remarks>
public sealed record JobProgress(long Total, long Done, long Queued, long Running, long Retrying, long Succeeded, long Failed, long Canceled);

/// <summary>A job in a list.</summary>
public sealed record JobSummary(
    Guid Id,
    JobState State,
    DateTimeOffset CreatedAt,
    DateTimeOffset? FinishedAt,
    string Model,
    int Width,
    int Height,
    string Mode,
    int Priority,
    long Items,
    JobProgress Progress);

/// <summary>A rendered image of a job, with every parameter that made it, so a client never opens the PNG for them.</summary>
/// <remarks>
/// <c>Url</c>: Where to fetch the PNG (this API; it streams or redirects). <c>Sha256</c>: the stored PNG's SHA-256 in
/// lowercase hex, as its worker reported it; null for images of workers that did not report one. <c>Safety</c>: the
/// model's safety checker's outcome (<c>passed</c>, <c>flagged</c>, <c>blurred</c>); null when no checker ran.
/// <c>Steps</c>, <c>GuidanceScale</c>, <c>Sampler</c>: null for the images of an <c>upscale</c> job, which no denoising
/// made (its items carry stand-ins only because they share hires' shape); <c>Model</c> is then its upscaler for the
/// tiles and the stitch.
/// </remarks>
public sealed record JobImage(
    long Index,
    long Seed,
    string Url,
    string? WorkerId,
    int Width,
    int Height,
    string Prompt,
    string NegativePrompt,
    int? Steps,
    double? GuidanceScale,
    string? Sampler,
    string Model,
    string? Sha256,
    string? Safety);

/// <summary>An item that is being rendered now.</summary>
public sealed record RunningItem(long Index, Guid ItemId, int Attempt, string? WorkerId, int Step, int TotalSteps);

/// <summary>An item's failure: final (<paramref name="Final"/>) or the reason of the attempt now being retried.</summary>
public sealed record ItemError(long Index, long Seed, int Attempt, string Error, bool Final);

/// <summary>One job in full, as <c>GET /v1/jobs/{id}</c> returns it.</summary>
/// <remarks><c>EligibleWorkers</c>: While the job waits: connected workers (fresh heartbeat, taking work) that could take it; null once it is final. <c>WaitingReason</c>: Why nothing is happening, in plain words, when no worker can take the job or its running items wait for an object store their workers cannot reach; null otherwise. <c>Tiles</c> and <c>ResultImage</c>: for a hires job, a page of its tiles and the stitched image's URL (null until stitched); null for other jobs.</remarks>
public sealed record JobDetails(
    Guid Id,
    JobState State,
    DateTimeOffset CreatedAt,
    DateTimeOffset? FinishedAt,
    string Model,
    int Width,
    int Height,
    string Mode,
    int Priority,
    long Seed,
    long Items,
    JobProgress Progress,
    IReadOnlyList<RunningItem> RunningItems,
    IReadOnlyList<JobImage> Images,
    IReadOnlyList<ItemError> Errors,
    int? EligibleWorkers,
    string? WaitingReason,
    string? CancelReason,
    IReadOnlyList<JobTile>? Tiles = null,
    string? ResultImage = null);

/// <summary>One tile of a hires job, in pixels of the final image, and where its item stands.</summary>
/// <param name="Index">The tile's index in the grid, row-major (its item is index + 1).</param>
/// <param name="X">Left edge.</param>
/// <param name="Y">Top edge.</param>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="WorkerId">The worker that rendered it or renders it now; null before it starts.</param>
/// <param name="State">Its item's state (Queued also while it waits for the base image).</param>
public sealed record JobTile(int Index, int X, int Y, int Width, int Height, string? WorkerId, ItemState State);

/// <summary>A page of results.</summary>
public sealed record PagedResult<T>(IReadOnlyList<T> Items, int Page, int PageSize, long Total);

/// <summary>A worker as its last heartbeat described it.</summary>
/// <remarks>
/// <c>Live</c>: True while its last heartbeat is younger than the lease; a worker that is not live holds no leases.
/// <c>Strategy</c>: the memory strategy of its last (or planned) item, e.g. "resident" or "sequential+tiled-vae".
/// <c>MaxPixels</c>: the largest width × height its budget plans with some strategy (0 = unknown, taken as no limit);
/// <c>MaxSquareSide</c>: the side of the largest square within it (multiple of 8). <c>ResidentMaxPixels</c>: the
/// largest with every component resident, the cheapest strategy. <c>InstalledModels</c>: models on its disk.
/// <c>RenderQueue</c>: its own queue, where placement sends work only it can take (null: shared queue only).
/// </remarks>
public sealed record WorkerSummary(
    string Id,
    string Host,
    string Device,
    long MemoryTotalBytes,
    long MemoryFreeBytes,
    long MemoryBudgetBytes,
    IReadOnlyList<string> Providers,
    IReadOnlyList<string> LoadedModels,
    WorkerState State,
    bool Live,
    string Strategy,
    string Pool,
    IReadOnlyList<Guid> CurrentItems,
    DateTimeOffset LastHeartbeat,
    DateTimeOffset FirstSeen,
    long MaxPixels,
    int MaxSquareSide,
    long ResidentMaxPixels,
    IReadOnlyList<string> InstalledModels,
    string? RenderQueue);

/// <summary>Where a rendered image is stored.</summary>
public sealed record ImageLocation(Guid JobId, long Index, string ArtifactKey);

/// <summary>Limits of the lists inside <see cref="JobDetails"/>, so a million-item job answers in one small page.</summary>
/// <remarks><c>ImagesAfter</c>: Only images with an index above this (a cursor; -1 for the first page). <c>ImagesLimit</c>: Most images returned.</remarks>
public sealed record JobDetailsPage(long ImagesAfter = -1, int ImagesLimit = JobDetailsPage.DefaultImagesLimit)
{
    public const int DefaultImagesLimit = 1000;

    public const int MaxImagesLimit = 10_000;

    /// <summary>Most running items and errors listed.</summary>
    public const int ListLimit = 100;
}

/// <summary>One item of a job as the job's item list shows it.</summary>
/// <remarks><c>Step</c>/<c>TotalSteps</c>: progress of the current attempt (running items); <c>ImageUrl</c>: set once it succeeded; <c>Error</c>: its last failure reason.</remarks>
public sealed record JobItem(
    long Index,
    Guid ItemId,
    long Seed,
    ItemState State,
    int Attempt,
    string? WorkerId,
    int Step,
    int TotalSteps,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    string? Error,
    string? ImageUrl);

/// <summary>A keyset page of a job's items, in index order.</summary>
/// <remarks><c>Next</c>: the <c>after</c> value of the next page; null on the last page.</remarks>
public sealed record JobItemsPage(IReadOnlyList<JobItem> Items, long? Next);

/// <summary>What a worker is rendering now: the items of its last heartbeat that are still running.</summary>
/// <remarks><c>StepsPerSecond</c>: steps done by this attempt divided by the time since it started (model loading included); null before its first step.</remarks>
public sealed record WorkerCurrentItem(Guid JobId, long Index, Guid ItemId, int Step, int TotalSteps, DateTimeOffset? StartedAt, double? StepsPerSecond);

/// <summary>A worker on the dashboard's Fleet page: its heartbeat, its status and what it renders now.</summary>
/// <remarks><c>Status</c>: "live" (fresh heartbeat, taking work or starting), "draining" (fresh heartbeat, finishing and taking nothing new) or "gone" (no heartbeat within the lease).</remarks>
public sealed record FleetWorker(WorkerSummary Worker, string Status, IReadOnlyList<WorkerCurrentItem> Current);

/// <summary>Items and jobs of the whole farm by state, the outbox, and throughput over recent minutes.</summary>
/// <remarks>
/// <c>Items</c>/<c>Jobs</c>: counts by state name. <c>Outbox</c>: messages owed to the bus. <c>Minutes</c>: one
/// bucket per minute of the window, oldest first.
/// </remarks>
public sealed record QueueStats(
    DateTimeOffset At,
    IReadOnlyDictionary<string, long> Items,
    IReadOnlyDictionary<string, long> Jobs,
    OutboxStats Outbox,
    IReadOnlyList<ThroughputBucket> Minutes);

/// <summary>The outbox: rows not yet sent and how long the oldest sendable one has waited.</summary>
/// <remarks><c>WorkUnits</c>: work units waiting (including those held for a worker that can take them); <c>Events</c>: other messages; <c>OldestAgeSeconds</c>: age of the oldest row already due, 0 when none is (work units wait in the outbox until the dispatch window has room, so this grows behind a large job by design).</remarks>
public sealed record OutboxStats(long WorkUnits, long Events, double OldestAgeSeconds);

/// <summary>One minute of the farm's throughput.</summary>
/// <remarks><c>Succeeded</c>/<c>Failed</c>: items that finished in the minute; <c>Started</c>: attempts that started in it; <c>MeanWaitSeconds</c>: their mean wait from the job's submission to the start (null when none started).</remarks>
public sealed record ThroughputBucket(DateTimeOffset Start, long Succeeded, long Failed, long Started, double? MeanWaitSeconds);

/// <summary>Why a queued job waits: its place in the queue, an estimate, and each worker's reason not to take it.</summary>
/// <remarks>
/// <c>Position</c>: 1 + the number of unfinished jobs with queued items that dispatch ahead of it: a higher priority,
/// or the same priority and submitted before it (exact with first-come fair share; with the default, where jobs of one
/// priority take turns, an upper bound). <c>ItemsAhead</c>: their queued items. <c>EstimatedStartSeconds</c>: <c>ItemsAhead</c>
/// divided by the farm's completions per second over the last minutes; null when nothing completed lately.
/// <c>Workers</c>: every worker with a recent heartbeat, and whether and why not it can take the job now.
/// </remarks>
public sealed record WaitingJob(
    Guid JobId,
    JobState State,
    int Position,
    long QueuedItems,
    long ItemsAhead,
    double? ItemsPerSecond,
    double? EstimatedStartSeconds,
    string Summary,
    IReadOnlyList<WorkerVerdict> Workers);

/// <summary>One worker's answer to "would you take this job now?".</summary>
/// <remarks><c>Reasons</c>: codes, empty when it can take it: "gone", "starting", "draining", "too-small", "busy", "model-missing" (it would fetch the model first, which costs time but does not stop it).</remarks>
public sealed record WorkerVerdict(string WorkerId, bool CanTake, IReadOnlyList<string> Reasons, string Explanation);

/// <summary>What a retry queued.</summary>
public sealed record RetryResult(Guid JobId, long Requeued, JobState State);
