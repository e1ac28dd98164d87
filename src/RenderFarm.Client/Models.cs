using System.Text.Json.Serialization;

namespace RenderFarm.Client;

/// <summary>A job's state, as the coordinator reports it.</summary>
public enum JobState
{
    /// <summary>Accepted, no item started yet.</summary>
    Queued,

    /// <summary>At least one item has started and not all have finished.</summary>
    Running,

    /// <summary>Final: every item has its image.</summary>
    Succeeded,

    /// <summary>Final: at least one item failed for good and none succeeded, or a hires job lost a part.</summary>
    Failed,

    /// <summary>Final: canceled; finished images are kept.</summary>
    Canceled,

    /// <summary>Final: some items have their image and the others failed for good; a retry re-renders only those.</summary>
    CompletedWithErrors,
}

/// <summary>A worker's state, from its last heartbeat.</summary>
public enum WorkerState
{
    /// <summary>Probing its device and loading its first model.</summary>
    Starting,

    /// <summary>Ready and rendering nothing.</summary>
    Idle,

    /// <summary>Rendering.</summary>
    Busy,

    /// <summary>Finishing its items before shutdown; takes no new ones.</summary>
    Draining,
}

/// <summary>Render modes a job may name.</summary>
public static class RenderModes
{
    public const string Txt2Img = "txt2img";
    public const string Img2Img = "img2img";
    public const string Inpaint = "inpaint";

    /// <summary>A large image: a base render refined in overlapping tiles spread over the workers, then stitched.</summary>
    public const string Hires = "hires";

    /// <summary>A client's image enlarged by a named upscaler model in tiles spread over the workers, then stitched (no diffusion).</summary>
    public const string Upscale = "upscale";

    /// <summary>Whether a job of <paramref name="mode"/> is one large image made of tiles (hires and upscale).</summary>
    public static bool IsTiled(string? mode) => mode is Hires or Upscale;
}

/// <summary>Where one item (e.g. a hires tile) stands.</summary>
public enum ItemState
{
    /// <summary>Waiting for a worker (a hires tile also while it waits for its base image).</summary>
    Queued,

    /// <summary>A worker is rendering it.</summary>
    Running,

    /// <summary>An attempt failed; it will be tried again after a backoff.</summary>
    Retrying,

    /// <summary>Final: its image is stored.</summary>
    Succeeded,

    /// <summary>Final: failed for good.</summary>
    Failed,

    /// <summary>Final: its job was canceled.</summary>
    Canceled,
}

/// <summary>
/// The body of <c>POST /v1/jobs</c>. Every field is optional here, as on the wire, so that the coordinator (the one
/// place that validates) names what is missing; fields left null are not sent.
/// </summary>
/// <param name="Prompt">Text the image should show (optional when <c>Sweep.Prompts</c> is given, and for upscale).</param>
/// <param name="NegativePrompt">Text the image should avoid (replaced by <c>Sweep.NegativePrompts</c> when given).</param>
/// <param name="Width">Pixels, a multiple of 8.</param>
/// <param name="Height">Pixels, a multiple of 8.</param>
/// <param name="Steps">Denoising steps (optional when <c>Sweep.Steps</c> is given).</param>
/// <param name="GuidanceScale">Classifier-free guidance (optional when <c>Sweep.GuidanceScales</c> is given).</param>
/// <param name="Sampler">Sampler name, e.g. <c>euler_a</c> (optional when <c>Sweep.Samplers</c> is given).</param>
/// <param name="Seed">Seed of item 0; item i uses seed + i. Random when null.</param>
/// <param name="Count">Images per sweep combination.</param>
/// <param name="Model">Model name; the coordinator's default when null.</param>
/// <param name="Mode"><see cref="RenderModes"/>: txt2img (default), img2img, inpaint, hires or upscale (InitImage enlarged to Width x Height by the Upscaler, no diffusion: Steps, GuidanceScale and Sampler are optional and unused, Strength is refused).</param>
/// <param name="InitImage">Base64 PNG for img2img and inpaint; for hires, the base image (optional); for upscale, the image to enlarge (required).</param>
/// <param name="Mask">Base64 PNG mask (white is repainted) for inpaint.</param>
/// <param name="Strength">How much of the init image is replaced, in (0, 1] (replaced by <c>Sweep.Strengths</c> when given); for hires, the tiles' refinement strength.</param>
/// <param name="Sweep">Axes whose cross product the job renders.</param>
/// <param name="Priority">-100..100 (default 0); a higher-priority job's work is sent before lower-priority work still waiting; jobs of equal priority share the farm.</param>
/// <param name="Tile">Hires: tile side in pixels (default: the model's native side, 512 for SD 1.x, 768 for SD 2.x 768-v, 1024 for SDXL, when the farm's model store holds the model; else 512).</param>
/// <param name="Overlap">Hires: least overlap between tiles in pixels (default: an eighth of that side, 64 for 512).</param>
/// <param name="BaseWidth">Hires: base render width (default: about that side squared at the target's aspect ratio).</param>
/// <param name="BaseHeight">Hires: base render height, given with <paramref name="BaseWidth"/>.</param>
/// <param name="Safety">The model's safety checker: off, flag, blur or block (default: flag when the model has one); not for hires.</param>
/// <param name="Watermark">Invisible-watermark text (1 to 32 UTF-8 bytes) in place of the farm's; images of at least 256x256; not for hires.</param>
/// <param name="Upscaler">Hires: name of a super-resolution model in the farm's store that upscales the base (default: Mitchell resampling); upscale: the model that enlarges the image (required).</param>
/// <param name="Output">How the images are stored: files (default) or WebDataset shards.</param>
public sealed record SubmitJobRequest(
    string? Prompt = null,
    string? NegativePrompt = null,
    int? Width = null,
    int? Height = null,
    int? Steps = null,
    double? GuidanceScale = null,
    string? Sampler = null,
    long? Seed = null,
    int? Count = null,
    string? Model = null,
    string? Mode = null,
    string? InitImage = null,
    string? Mask = null,
    double? Strength = null,
    SweepRequest? Sweep = null,
    int? Priority = null,
    int? Tile = null,
    int? Overlap = null,
    int? BaseWidth = null,
    int? BaseHeight = null,
    string? Safety = null,
    string? Watermark = null,
    string? Upscaler = null,
    JobOutput? Output = null);

/// <summary>A job's output: <see cref="Files"/> (one PNG per image) or <see cref="WebDataset"/> tar shards of <paramref name="ShardSize"/> samples (default 1000).</summary>
public sealed record JobOutput(string Format, int? ShardSize = null)
{
    public const string Files = "files";
    public const string WebDataset = "webdataset";
}

/// <summary>A WebDataset job's shards (<c>GET /v1/jobs/{id}/shards</c>).</summary>
/// <param name="ShardSize">Items per shard.</param>
/// <param name="ShardCount">Shards in all, published or not.</param>
/// <param name="Complete">Every shard is published and the job is finished.</param>
/// <param name="Shards">The published shards in order.</param>
public sealed record DatasetShardList(int ShardSize, int ShardCount, bool Complete, IReadOnlyList<DatasetShard> Shards);

/// <summary>One published shard: <paramref name="Name"/> is its file name (<c>{shard:D6}.tar</c>); <paramref name="Sha256"/> the tar's hash.</summary>
public sealed record DatasetShard(int Shard, string Name, int Count, int Successes, int Failures, long Bytes, string Sha256, DateTimeOffset? Start, DateTimeOffset? End, string Url);

/// <summary>Sweep axes of a job; each one given replaces its single-valued field (<c>Sizes</c> replaces width and height; txt2img only).</summary>
public sealed record SweepRequest(
    IReadOnlyList<string>? Prompts = null,
    IReadOnlyList<long>? Seeds = null,
    IReadOnlyList<double>? GuidanceScales = null,
    IReadOnlyList<int>? Steps = null,
    IReadOnlyList<string>? Samplers = null,
    IReadOnlyList<string>? NegativePrompts = null,
    IReadOnlyList<double>? Strengths = null,
    IReadOnlyList<ImageSize>? Sizes = null);

/// <summary>An image size in pixels (multiples of 8).</summary>
public sealed record ImageSize(int Width, int Height);

/// <summary>How far a job's items are; <c>Done</c> counts items in a final state.</summary>
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

/// <summary>A rendered image and the parameters that made it; <c>Url</c> is the farm's path to the PNG.</summary>
/// <remarks>
/// <c>Sha256</c>: the stored PNG's SHA-256 (lowercase hex) as its worker reported it. The parameters and the hash are
/// null only from farms that predate them. <c>Safety</c>: the model's safety checker's outcome (<c>passed</c>,
/// <c>flagged</c>, <c>blurred</c>); null when no checker ran.
/// </remarks>
public sealed record JobImage(
    long Index,
    long Seed,
    string Url,
    string? WorkerId,
    int Width,
    int Height,
    string? Prompt = null,
    string? NegativePrompt = null,
    int? Steps = null,
    double? GuidanceScale = null,
    string? Sampler = null,
    string? Model = null,
    string? Sha256 = null,
    string? Safety = null);

/// <summary>An item being rendered now.</summary>
public sealed record RunningItem(long Index, Guid ItemId, int Attempt, string? WorkerId, int Step, int TotalSteps);

/// <summary>An item's failure: final, or the reason of an attempt being retried.</summary>
public sealed record ItemError(long Index, long Seed, int Attempt, string Error, bool Final);

/// <summary>One tile of a hires job, in pixels of the final image; <c>Index</c> is the tile's (its item is index + 1).</summary>
public sealed record JobTile(int Index, int X, int Y, int Width, int Height, string? WorkerId, ItemState State);

/// <summary>One job in full (<c>GET /v1/jobs/{id}</c>).</summary>
/// <remarks><c>Images</c>: one page of images (see <see cref="RenderFarmClient.GetJobAsync"/>). <c>EligibleWorkers</c>: while
/// the job waits, live workers that could take it; null once final. <c>WaitingReason</c>: why nothing is happening, when no
/// worker can take the job. <c>Tiles</c>: for a hires job, a page of its tiles (null for other jobs). <c>ResultImage</c>: for a
/// hires job, the farm's path to the stitched image once it exists.</remarks>
public sealed record Job(
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
    string? ResultImage = null)
{
    /// <summary>True once the job is Succeeded, Failed or Canceled; nothing changes it afterwards.</summary>
    [JsonIgnore]
    public bool IsFinal => State is JobState.Succeeded or JobState.CompletedWithErrors or JobState.Failed or JobState.Canceled;
}

/// <summary>A page of results.</summary>
public sealed record PagedResult<T>(IReadOnlyList<T> Items, int Page, int PageSize, long Total);

/// <summary>A worker as its last heartbeat described it; <c>Live</c> while that heartbeat is younger than the lease.</summary>
/// <remarks>
/// <c>MaxPixels</c>: the largest width × height its memory budget plans with some strategy (0 = unknown);
/// <c>MaxSquareSide</c>: the largest square within it; <c>ResidentMaxPixels</c>: the largest with the cheapest
/// (resident) strategy; <c>InstalledModels</c>: models on its disk; <c>RenderQueue</c>: its own queue, if any.
/// </remarks>
public sealed record Worker(
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
    long MaxPixels = 0,
    int MaxSquareSide = 0,
    long ResidentMaxPixels = 0,
    IReadOnlyList<string>? InstalledModels = null,
    string? RenderQueue = null);

/// <summary>The latest preview of a running item: a small image of its latent (an eighth of the image's size).</summary>
/// <param name="Image">Encoded bytes.</param>
/// <param name="ContentType">Their media type (<c>image/jpeg</c>).</param>
/// <param name="Step">The denoising step it shows; 0 when the farm did not say.</param>
/// <param name="TotalSteps">Steps in all; 0 when the farm did not say.</param>
public sealed record ItemPreview(byte[] Image, string ContentType, int Step, int TotalSteps);

/// <summary>The result of a submission: the job, and whether the farm answered an earlier request with the same Idempotency-Key.</summary>
public sealed record SubmittedJob(Job Job, bool Replayed);

/// <summary>Names of the events of a job's stream (the SSE <c>event:</c> field).</summary>
public static class JobEventTypes
{
    /// <summary>First on every stream: the job's state and counts as they are now.</summary>
    public const string Snapshot = "snapshot";
    public const string ItemStarted = "item-started";
    public const string ItemProgress = "item-progress";

    /// <summary>A running item has a new preview: <c>Index</c>, <c>Step</c>, <c>TotalSteps</c> and its <c>Url</c> (see <see cref="RenderFarmClient.GetItemPreviewAsync"/>).</summary>
    public const string Preview = "preview";
    public const string ItemDone = "item-done";
    public const string ItemRetrying = "item-retrying";
    public const string ItemFailed = "item-failed";
    public const string JobState = "job-state";

    /// <summary>The job reached a final state; the stream ends after it.</summary>
    public const string JobDone = "job-done";
}

/// <summary>Something that happened to a job (one SSE event); which fields are set depends on <c>Type</c>.</summary>
/// <remarks>Item events of a hires job name the item's <c>Part</c> (base, tile, stitch) and a tile's <c>Tile</c> index.</remarks>
public sealed record JobEvent(
    string Type,
    Guid JobId,
    long? Index = null,
    Guid? ItemId = null,
    int? Attempt = null,
    string? WorkerId = null,
    int? Step = null,
    int? TotalSteps = null,
    string? State = null,
    string? Url = null,
    string? Error = null,
    long? Done = null,
    long? Total = null,
    string? Part = null,
    int? Tile = null);

/// <summary>One <c>_error</c> queue: the queue its messages failed on, and how many wait in it.</summary>
public sealed record DeadLetterQueue(string Queue, string ErrorQueue, long Messages);

/// <summary>The farm's dead letters (<c>GET /v1/dead-letters</c>).</summary>
public sealed record DeadLetterReport(long Total, IReadOnlyList<DeadLetterQueue> Queues);

/// <summary>What a replay moved back (<c>POST /v1/dead-letters/{queue}/replay</c>).</summary>
public sealed record DeadLetterReplay(string Queue, long Replayed);

/// <summary>What a retry queued (<c>POST /v1/jobs/{id}/retry</c>): items re-queued and the job's state after it.</summary>
public sealed record RetryResult(Guid JobId, long Requeued, JobState State);

/// <summary>Formats of a job's manifest.</summary>
public enum ManifestFormat
{
    /// <summary>JSON lines, streamed as the farm reads them.</summary>
    Jsonl,

    /// <summary>The same columns as a Parquet file.</summary>
    Parquet,
}

/// <summary>Values of <see cref="ManifestEntry.Status"/>: an item's state in lowercase.</summary>
public static class ManifestStatuses
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Retrying = "retrying";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Canceled = "canceled";
}

/// <summary>One item of a job as its manifest lists it (<c>GET /v1/jobs/{id}/manifest</c>).</summary>
/// <param name="Key">The sample's name: the index zero-padded to nine digits, the same on every export.</param>
/// <param name="Index">The item's index in its job.</param>
/// <param name="Prompt">Its prompt.</param>
/// <param name="NegativePrompt">Its negative prompt ("" when none).</param>
/// <param name="Seed">Its seed.</param>
/// <param name="Steps">Denoising steps.</param>
/// <param name="GuidanceScale">Classifier-free guidance.</param>
/// <param name="Sampler">Sampler name.</param>
/// <param name="Model">Model name.</param>
/// <param name="ModelHash">The content hash of the model folder that rendered the image; null when unknown (before it succeeds, hires stitches, older workers).</param>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Sha256">The stored PNG's SHA-256 (lowercase hex); null until it succeeds, or when its worker reported none.</param>
/// <param name="Status">One of <see cref="ManifestStatuses"/>.</param>
/// <param name="Error">The last failure reason of an item that has no image.</param>
/// <param name="Shard">The WebDataset shard holding the sample (<c>{shard:D6}.tar</c>); null for jobs with the files output.</param>
/// <param name="Url">The farm's path to the PNG once it succeeded.</param>
/// <param name="DuplicateOf">The key of the job's first item with the same SHA-256, when this one is a later copy.</param>
/// <param name="Safety">The model's safety checker's outcome for the image (<c>passed</c>, <c>flagged</c>, <c>blurred</c>); null when none ran.</param>
public sealed record ManifestEntry(
    string Key,
    long Index,
    string Prompt,
    string NegativePrompt,
    long Seed,
    int Steps,
    double GuidanceScale,
    string Sampler,
    string Model,
    string? ModelHash,
    int Width,
    int Height,
    string? Sha256,
    string Status,
    string? Error,
    int? Shard,
    string? Url,
    string? DuplicateOf,
    string? Safety = null)
{
    /// <summary>True when the item has its image.</summary>
    [JsonIgnore]
    public bool HasImage => Status == ManifestStatuses.Succeeded;
}
