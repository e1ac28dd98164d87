using RenderFarm.Contracts;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Persistence;

// Rows are persistence shapes, not domain objects: the rules that move them live in RenderFarm.Domain
// (state machines, policies) and in ItemLedger's set-based updates. Times are UTC DateTime because SQLite
// can compare and order DateTime (stored as sortable text) but not DateTimeOffset.

/// <summary>A job: the request as accepted and per-state item counters kept in step with every item change.</summary>
/// <remarks>
/// The counters let a completion derive the job's state (<see cref="JobStateMachine.Derive"/>) from one row
/// instead of counting a million items; every statement that moves an item moves its job's counters in the
/// same transaction.
/// </remarks>
public sealed class JobRow
{
    public Guid Id { get; set; }

    public JobState State { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime UpdatedAt { get; set; }

    public DateTime? FinishedAt { get; set; }

    public required string Model { get; set; }

    public int Width { get; set; }

    public int Height { get; set; }

    public required string Mode { get; set; }

    public int Priority { get; set; }

    public long BaseSeed { get; set; }

    /// <summary>The tenant of the key that submitted the job (<c>default</c> on an open farm): only it and non-submitter roles see the job.</summary>
    public string Tenant { get; set; } = Auth.FarmClaims.DefaultTenant;

    /// <summary>The accepted request as JSON, with init image and mask replaced by their artifact keys.</summary>
    public required string Request { get; set; }

    public string? CancelReason { get; set; }

    /// <summary>The job's safety-checker mode (<c>off</c>, <c>flag</c>, <c>blur</c>, <c>block</c>); null: the engine's default. Sent with every work unit.</summary>
    public string? Safety { get; set; }

    /// <summary>The job's invisible-watermark text; null: the farm's own, if any. Sent with every work unit.</summary>
    public string? Watermark { get; set; }

    public long TotalItems { get; set; }

    public long QueuedItems { get; set; }

    public long RunningItems { get; set; }

    public long RetryingItems { get; set; }

    public long SucceededItems { get; set; }

    public long FailedItems { get; set; }

    public long CanceledItems { get; set; }

    /// <summary>
    /// Items per WebDataset shard when the job asked for <c>output.format = webdataset</c>; null for the files output
    /// (one PNG object per item). Item i belongs to shard i / ShardSize.
    /// </summary>
    public int? ShardSize { get; set; }

    /// <summary>
    /// When the shard assembler found every shard of a WebDataset job published with the job finished; null before,
    /// for other jobs, and again after a retry (its items will need their shards rebuilt).
    /// </summary>
    public DateTime? DatasetPublishedAt { get; set; }
}

/// <summary>
/// A published WebDataset shard: its tar is whole in the store (<c>datasets/{jobId}/{shard:D6}.tar</c>) with its
/// <c>_stats.json</c> beside it. Written by the shard assembler after the shard's one upload; replaced when a retry
/// makes it assemble the shard again. Deleted with its job.
/// </summary>
public sealed class DatasetShardRow
{
    public Guid JobId { get; set; }

    public int Shard { get; set; }

    /// <summary>Items in the shard's index range.</summary>
    public int Count { get; set; }

    /// <summary>Samples in the tar (succeeded items).</summary>
    public int Successes { get; set; }

    /// <summary>Items that ended failed or canceled, so have no sample.</summary>
    public int Failures { get; set; }

    /// <summary>The tar's size in bytes.</summary>
    public long Bytes { get; set; }

    /// <summary>The tar's SHA-256, lowercase hex.</summary>
    public required string Sha256 { get; set; }

    /// <summary>When the first of its items started (its rendering's start); null when none ever ran.</summary>
    public DateTime? StartedAt { get; set; }

    /// <summary>When the last of its items finished.</summary>
    public DateTime? FinishedAt { get; set; }

    public DateTime PublishedAt { get; set; }
}

/// <summary>One image of a job, with every parameter that determines its bytes and where its attempt stands.</summary>
public sealed class ItemRow
{
    /// <summary>Characters of <see cref="Sha256"/>: 32 bytes in hex.</summary>
    public const int Sha256Length = 64;

    public Guid Id { get; set; }

    public Guid JobId { get; set; }

    public long Index { get; set; }

    public long Seed { get; set; }

    public required string Prompt { get; set; }

    public required string NegativePrompt { get; set; }

    public int Width { get; set; }

    public int Height { get; set; }

    public int Steps { get; set; }

    public double GuidanceScale { get; set; }

    public required string Sampler { get; set; }

    public required string Model { get; set; }

    public required string Mode { get; set; }

    public double? Strength { get; set; }

    public string? InitImageKey { get; set; }

    public string? MaskKey { get; set; }

    public ItemState State { get; set; }

    /// <summary>The attempt now queued or running (1-based); completions of other attempts are stale.</summary>
    public int Attempt { get; set; }

    public string? WorkerId { get; set; }

    public DateTime? StartedAt { get; set; }

    /// <summary>Lease clock: set when the item starts and renewed by its worker's heartbeats (coordinator time).</summary>
    public DateTime? HeartbeatAt { get; set; }

    /// <summary>When a <see cref="ItemState.Retrying"/> item may be queued again.</summary>
    public DateTime? RetryAt { get; set; }

    public DateTime? FinishedAt { get; set; }

    public string? ArtifactKey { get; set; }

    /// <summary>
    /// Seconds from the start of the render to the stored image, as the worker that rendered it reported
    /// (<c>ItemRendered.Elapsed</c>); null until it succeeds. WebDataset samples carry it in their JSON.
    /// </summary>
    public double? RenderSeconds { get; set; }

    /// <summary>
    /// SHA-256 of the stored PNG (lowercase hex) as its worker reported it with the image; null until the item
    /// succeeds, and for images of workers that did not report one.
    /// </summary>
    public string? Sha256 { get; set; }

    /// <summary>
    /// The content hash of the model folder that rendered the image (lowercase hex) as its worker reported it; null
    /// until the item succeeds, for images no model made (hires stitches), and from workers that report none.
    /// </summary>
    public string? ModelHash { get; set; }

    /// <summary>The safety checker's outcome for the stored image (<c>passed</c>, <c>flagged</c>, <c>blurred</c>); null when none ran.</summary>
    public string? Safety { get; set; }

    /// <summary>The last failure reason; kept after a successful retry only until that success clears it.</summary>
    public string? Error { get; set; }

    public int StepsDone { get; set; }

    /// <summary>
    /// The running attempt's step count as its worker reports it; null until its first progress. It differs from
    /// <see cref="Steps"/> where the engine runs only part of the schedule (img2img and hires tiles: steps × strength)
    /// or counts something else (a hires stitch counts tile rows).
    /// </summary>
    public int? StepsTotal { get; set; }

    /// <summary>
    /// The worker placement sent this attempt to alone (its own queue); null when it went to the shared queue. If
    /// that worker stops heartbeating before the item starts, the item is placed again.
    /// </summary>
    public string? AssignedWorkerId { get; set; }

    /// <summary>
    /// When the attempt was sent (to <see cref="AssignedWorkerId"/>'s queue, or the shared queue when that is null); null
    /// while it waits in the outbox. A queued item with it set counts against the dispatcher's window, so every path that
    /// queues an item again clears it.
    /// </summary>
    public DateTime? AssignedAt { get; set; }

    /// <summary>Hires items: the item's <see cref="HiresPart"/> as JSON; null for every other item.</summary>
    public string? Hires { get; set; }
}

/// <summary>A worker as its last heartbeat described it.</summary>
public sealed class WorkerRow
{
    public required string Id { get; set; }

    public required string Host { get; set; }

    public required string DeviceName { get; set; }

    public long MemoryTotalBytes { get; set; }

    public long MemoryFreeBytes { get; set; }

    public long MemoryBudgetBytes { get; set; }

    public List<string> ExecutionProviders { get; set; } = [];

    public List<string> LoadedModels { get; set; } = [];

    public List<Guid> CurrentItemIds { get; set; } = [];

    public WorkerState State { get; set; }

    public required string Strategy { get; set; }

    public required string Pool { get; set; }

    public DateTime FirstSeenAt { get; set; }

    /// <summary>Coordinator clock at the last heartbeat (never the worker's, which may drift).</summary>
    public DateTime LastHeartbeatAt { get; set; }

    /// <summary>Since when, by its last heartbeat, the worker cannot reach the object store; null while it can.</summary>
    public DateTime? StoreUnreachableSince { get; set; }

    /// <summary>See <see cref="WorkerHeartbeat.MaxPixels"/>; 0 when the worker cannot plan.</summary>
    public long MaxPixels { get; set; }

    /// <summary>See <see cref="WorkerHeartbeat.ResidentMaxPixels"/>.</summary>
    public long ResidentMaxPixels { get; set; }

    public List<string> InstalledModels { get; set; } = [];

    /// <summary>The worker's own queue (see <see cref="WorkerHeartbeat.RenderQueue"/>), when it has one.</summary>
    public string? RenderQueue { get; set; }
}

/// <summary>What an outbox row asks the dispatcher to send.</summary>
public enum OutboxKind
{
    /// <summary>
    /// A <see cref="RenderWorkUnit"/> of the job's still-queued items in [FirstIndex, FirstIndex + ItemCount);
    /// <see cref="OutboxRow.Payload"/> is the W3C <c>traceparent</c> of the request that wrote it (or null), so the
    /// dispatcher's send continues the submission's trace.
    /// </summary>
    WorkUnit = 0,

    /// <summary>A <see cref="JobCanceled"/> event for the job; <see cref="OutboxRow.Payload"/> is the reason.</summary>
    JobCanceled = 1,
}

/// <summary>
/// A message owed to the bus, written in the same transaction as the state that owes it and deleted once sent.
/// </summary>
/// <remarks>
/// A work unit row names an index range, not the message body: the dispatcher reads the items when it sends,
/// so the unit carries each item's current attempt, items canceled meanwhile are left out, and a million-item
/// job costs ~40 bytes per unit here instead of a copy of every prompt.
/// </remarks>
public sealed class OutboxRow
{
    public long Id { get; set; }

    public OutboxKind Kind { get; set; }

    public Guid JobId { get; set; }

    public long FirstIndex { get; set; }

    public int ItemCount { get; set; }

    /// <summary>What the kind needs besides the range (see <see cref="OutboxKind"/>): a cancel's reason, a unit's trace context.</summary>
    public string? Payload { get; set; }

    public DateTime CreatedAt { get; set; }

    /// <summary>Not sent before this instant.</summary>
    public DateTime AvailableAt { get; set; }
}

/// <summary>An <c>Idempotency-Key</c> a client sent, and the job it created.</summary>
public sealed class IdempotencyKeyRow
{
    public const int MaxKeyLength = 200;

    public required string Key { get; set; }

    public Guid JobId { get; set; }

    /// <summary>SHA-256 of the request body, so the same key with a different body is refused rather than silently answered with the first job.</summary>
    public required string RequestHash { get; set; }

    public DateTime CreatedAt { get; set; }
}
