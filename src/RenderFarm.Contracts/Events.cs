namespace RenderFarm.Contracts;

/// <summary>A worker began rendering an item attempt.</summary>
/// <param name="ItemId">The item.</param>
/// <param name="JobId">Its job.</param>
/// <param name="Attempt">Which attempt started.</param>
/// <param name="WorkerId">The worker now holding the item's lease.</param>
/// <param name="StartedAt">Worker clock at start.</param>
public sealed record ItemStarted(
    Guid ItemId,
    Guid JobId,
    int Attempt,
    string WorkerId,
    DateTimeOffset StartedAt)
{
    public const string WireName = MessageNames.ItemStarted;
}

/// <summary>
/// The starts of several item attempts of one work unit, as one message: what a worker gathers (worker setting
/// <c>UnitReports=PerUnit</c>) in place of one <see cref="ItemStarted"/> per item, each start taken when its render
/// batch began. Each entry means exactly what the single message means, so the coordinator records them as it records
/// those.
/// </summary>
/// <remarks>
/// A new message rather than a list inside <see cref="ItemStarted"/>: coordinators that predate it keep consuming the
/// single form, which per-item workers still send. A worker sends this only to a coordinator that consumes it (the
/// coordinator is upgraded first); a worker of this version can be told to send the single form.
/// </remarks>
/// <param name="Items">The starts, one per item attempt, at least one.</param>
public sealed record ItemsStarted(IReadOnlyList<ItemStarted> Items)
{
    public const string WireName = MessageNames.ItemsStarted;
}

/// <summary>A denoising step finished. Workers rate-limit these; consumers must not expect every step.</summary>
/// <param name="ItemId">The item.</param>
/// <param name="JobId">Its job.</param>
/// <param name="Attempt">The attempt reporting.</param>
/// <param name="Step">Steps done, 1-based.</param>
/// <param name="TotalSteps">Steps in all.</param>
/// <param name="PreviewKey">Artifact key of a low-resolution preview, when the worker made one.</param>
/// <param name="Timestamp">Worker clock when the step finished.</param>
public sealed record ItemProgressed(
    Guid ItemId,
    Guid JobId,
    int Attempt,
    int Step,
    int TotalSteps,
    string? PreviewKey,
    DateTimeOffset Timestamp)
{
    public const string WireName = MessageNames.ItemProgressed;
}

/// <summary>
/// A small picture of an item while it renders (the engine's cheap latent approximation, a few KiB), so a user can
/// see composition emerge. Workers send at most one per item per preview interval and none at the last step (the
/// image itself follows). Advisory and short-lived: the coordinator keeps only the latest per running item in memory,
/// and a preview lost or late changes nothing.
/// </summary>
/// <remarks>
/// Its own message rather than a field of <see cref="ItemProgressed"/>: it is a hundred times larger than a progress
/// event, it can be switched off without touching progress, and the coordinator relays it without the database work
/// progress gets.
/// </remarks>
/// <param name="ItemId">The item.</param>
/// <param name="JobId">Its job.</param>
/// <param name="Attempt">The attempt rendering it.</param>
/// <param name="Index">The item's index in its job, as the API addresses it.</param>
/// <param name="Step">Steps done when the preview was taken, 1-based.</param>
/// <param name="TotalSteps">Steps in all.</param>
/// <param name="ContentType">Media type of <paramref name="Image"/> (<c>image/jpeg</c>).</param>
/// <param name="Image">The encoded preview.</param>
/// <param name="Width">Preview width in pixels (the latent's: an eighth of the item's).</param>
/// <param name="Height">Preview height in pixels.</param>
/// <param name="Timestamp">Worker clock when taken.</param>
public sealed record ItemPreviewed(
    Guid ItemId,
    Guid JobId,
    int Attempt,
    long Index,
    int Step,
    int TotalSteps,
    string ContentType,
    byte[] Image,
    int Width,
    int Height,
    DateTimeOffset Timestamp)
{
    public const string WireName = MessageNames.ItemPreviewed;
}

/// <summary>An item's image is in the artifact store. Sent only after the upload succeeded.</summary>
/// <param name="ItemId">The item.</param>
/// <param name="JobId">Its job.</param>
/// <param name="Attempt">The attempt that rendered it; with ItemId, the idempotency key.</param>
/// <param name="ArtifactKey">Where the PNG is.</param>
/// <param name="WorkerId">Who rendered it.</param>
/// <param name="Elapsed">Time from the start of the render to the upload (for an image packed into a WebDataset part, to the image in memory: the part is uploaded once for the unit).</param>
/// <param name="Sha256">
/// SHA-256 of the stored PNG's bytes, lowercase hex, so datasets can be verified and deduplicated without reading the
/// image back. Null from workers that predate it (the field was added later and is optional on the wire).
/// </param>
/// <param name="ModelHash">
/// The content hash of the model folder that rendered it (<c>ModelContentHash</c>: SHA-256 over its files' paths, sizes
/// and hashes), lowercase hex; null for images no model made (the hires stitch, test renderers) and from older workers.
/// </param>
/// <param name="Safety">
/// What the model's safety checker said and did: <c>passed</c>, <c>flagged</c> (kept as rendered) or <c>blurred</c>;
/// null when no checker ran. A blocked image is never stored: its item is reported as <see cref="ItemFailed"/>.
/// </param>
public sealed record ItemRendered(
    Guid ItemId,
    Guid JobId,
    int Attempt,
    string ArtifactKey,
    string WorkerId,
    TimeSpan Elapsed,
    string? Sha256 = null,
    string? ModelHash = null,
    string? Safety = null)
{
    public const string WireName = MessageNames.ItemRendered;
}

/// <summary>
/// Several items' images, as one message: a per-unit worker (<c>UnitReports=PerUnit</c>) gathers the images of its unit
/// that are stored within a short window and reports them together, in place of one <see cref="ItemRendered"/> each.
/// Every entry keeps that message's promise: its image was stored before this was sent.
/// </summary>
/// <param name="Items">The images, one per item attempt, at least one.</param>
public sealed record ItemsRendered(IReadOnlyList<ItemRendered> Items)
{
    public const string WireName = MessageNames.ItemsRendered;
}

/// <summary>An item attempt failed.</summary>
/// <param name="ItemId">The item.</param>
/// <param name="JobId">Its job.</param>
/// <param name="Attempt">The attempt that failed.</param>
/// <param name="WorkerId">Who tried.</param>
/// <param name="Reason">What went wrong, fit to show a user.</param>
/// <param name="Retryable">
/// False when another attempt would fail the same way (bad input, model missing everywhere);
/// true for faults of the moment (out of memory, device lost, storage unavailable).
/// </param>
public sealed record ItemFailed(
    Guid ItemId,
    Guid JobId,
    int Attempt,
    string WorkerId,
    string Reason,
    bool Retryable)
{
    public const string WireName = MessageNames.ItemFailed;
}

/// <summary>A job was canceled; its unfinished items will not be rendered.</summary>
/// <param name="JobId">The job.</param>
/// <param name="CanceledAt">When the coordinator recorded it.</param>
/// <param name="Reason">Why, when the client said.</param>
public sealed record JobCanceled(
    Guid JobId,
    DateTimeOffset CanceledAt,
    string? Reason)
{
    public const string WireName = MessageNames.JobCanceled;
}

/// <summary>
/// What a worker is and what it is doing, sent on a fixed interval. The coordinator places work from it and
/// renews the leases of the current items; a worker that stops sending loses its leases.
/// </summary>
/// <param name="WorkerId">Stable identity of the worker process.</param>
/// <param name="Host">Machine name.</param>
/// <param name="DeviceName">Accelerator name (e.g. NVIDIA H100), or CPU.</param>
/// <param name="MemoryTotalBytes">Device memory in all (see <see cref="PlacementProperties.MemoryTotalBytes"/>).</param>
/// <param name="MemoryFreeBytes">Device memory free now (see <see cref="PlacementProperties.MemoryFreeBytes"/>).</param>
/// <param name="MemoryBudgetBytes">Device memory the engine may use (see <see cref="PlacementProperties.MemoryBudgetBytes"/>).</param>
/// <param name="ExecutionProviders">ONNX Runtime providers available.</param>
/// <param name="LoadedModels">Models loaded now; placement prefers these workers.</param>
/// <param name="CurrentItemIds">
/// Items the worker holds: rendering now (their leases are renewed by this heartbeat) or next in a work unit it has
/// taken (placed again by the coordinator if the worker falls silent).
/// </param>
/// <param name="State">Where the worker is in its life cycle.</param>
/// <param name="Strategy">The engine's memory strategy in force (e.g. full residency or sequential offload).</param>
/// <param name="Pool">Pool the worker serves (see <see cref="PlacementProperties.Pool"/>).</param>
/// <param name="Timestamp">Worker clock when sent.</param>
/// <param name="MaxPixels">
/// Largest image (width × height, one image with guidance) the worker's planner fits in its budget with some
/// strategy, for its default model; 0 when it cannot plan (no memory profile), which placement reads as "no limit known".
/// </param>
/// <param name="ResidentMaxPixels">Largest image that fits with every component resident (the cheapest strategy); 0 when unknown.</param>
/// <param name="InstalledModels">Models on the worker's disk (loaded or not); it fetches others from the store on demand.</param>
/// <param name="RenderQueue">
/// Queue name for work placed on this worker alone (see <c>QueueNames.WorkerQueue</c>); null for workers that take
/// only the shared queue.
/// </param>
/// <param name="StoreUnreachableSince">
/// Since when the worker's calls to the object store have failed as unreachable (its rendered items wait at their
/// upload); null while the store answers, and from workers that do not report it.
/// </param>
public sealed record WorkerHeartbeat(
    string WorkerId,
    string Host,
    string DeviceName,
    long MemoryTotalBytes,
    long MemoryFreeBytes,
    long MemoryBudgetBytes,
    IReadOnlyList<string> ExecutionProviders,
    IReadOnlyList<string> LoadedModels,
    IReadOnlyList<Guid> CurrentItemIds,
    WorkerState State,
    string Strategy,
    string Pool,
    DateTimeOffset Timestamp,
    long MaxPixels = 0,
    long ResidentMaxPixels = 0,
    IReadOnlyList<string>? InstalledModels = null,
    string? RenderQueue = null,
    DateTimeOffset? StoreUnreachableSince = null)
{
    public const string WireName = MessageNames.WorkerHeartbeat;
}

/// <summary>
/// A worker's life cycle as it reports it. The numeric values are wire format (serializers may write either
/// names or numbers), so members are never renumbered; a test pins them.
/// </summary>
public enum WorkerState
{
    /// <summary>Probing the device and loading its first model; takes no work yet.</summary>
    Starting = 0,

    /// <summary>Ready and rendering nothing.</summary>
    Idle = 1,

    /// <summary>Rendering; may still take work if its memory budget allows.</summary>
    Busy = 2,

    /// <summary>Finishing current items and taking no new ones, before shutdown.</summary>
    Draining = 3,
}
