namespace RenderFarm.Contracts;

/// <summary>
/// Render these items, in one batch where the worker can. Every item in a unit shares model, size,
/// sampler, steps and guidance, but keeps its own id, attempt, seed and output key, and is reported on
/// separately.
/// </summary>
/// <param name="WorkUnitId">Identity of this unit, for tracing; completions are recorded per item, never per unit.</param>
/// <param name="JobId">The job all items belong to.</param>
/// <param name="Items">The items, at least one.</param>
/// <param name="DispatchedAt">
/// When the coordinator sent it (its clock). A worker skips units of a canceled job dispatched before the cancel,
/// and renders those dispatched after it (a retry of the canceled items); null from older coordinators: skipped.
/// </param>
/// <param name="Safety">
/// The job's safety-checker mode (<c>off</c>, <c>flag</c>, <c>blur</c> or <c>block</c>); null: the engine's default,
/// <c>flag</c> when the model folder has a checker.
/// </param>
/// <param name="Watermark">The job's invisible-watermark payload (text); null: the worker's farm-wide one, if any.</param>
public sealed record RenderWorkUnit(
    Guid WorkUnitId,
    Guid JobId,
    IReadOnlyList<RenderItem> Items,
    DateTimeOffset? DispatchedAt = null,
    string? Safety = null,
    string? Watermark = null)
{
    public const string WireName = MessageNames.RenderWorkUnit;
}

/// <summary>One image to render, with every parameter that determines its bytes.</summary>
/// <param name="ItemId">The item's identity, stable across attempts.</param>
/// <param name="Attempt">1 for the first try; completions are recorded idempotently on (ItemId, Attempt).</param>
/// <param name="Index">Position of the item in its job's expansion.</param>
/// <param name="Seed">Noise seed; same seed and settings on the same machine give the same bytes.</param>
/// <param name="Prompt">Text the image should show.</param>
/// <param name="NegativePrompt">Text the image should avoid; empty when none.</param>
/// <param name="Width">Pixels, a multiple of 8.</param>
/// <param name="Height">Pixels, a multiple of 8.</param>
/// <param name="Steps">Denoising steps.</param>
/// <param name="GuidanceScale">Classifier-free guidance scale.</param>
/// <param name="Sampler">Sampler name as the engine knows it (e.g. euler_a).</param>
/// <param name="Model">Model name as the worker's model manifest knows it.</param>
/// <param name="Mode">One of <see cref="RenderModes"/>.</param>
/// <param name="Strength">How much of the init image is replaced; set for img2img and inpaint only.</param>
/// <param name="InitImageKey">Artifact key of the init image; set for img2img and inpaint only.</param>
/// <param name="MaskKey">Artifact key of the mask; set for inpaint only.</param>
/// <param name="OutputKey">Artifact key the worker uploads the PNG to.</param>
/// <param name="Hires">Where the item sits in a hires job (base, tile or stitch); null for every other item.</param>
/// <param name="Pack">
/// Set for items of a job with WebDataset output: the worker does not upload the PNG alone to
/// <paramref name="OutputKey"/> but packs it with the unit's other images of the same part prefix into one tar part
/// (see <see cref="DatasetPart"/>); null for every other item and from older coordinators.
/// </param>
public sealed record RenderItem(
    Guid ItemId,
    int Attempt,
    long Index,
    long Seed,
    string Prompt,
    string NegativePrompt,
    int Width,
    int Height,
    int Steps,
    double GuidanceScale,
    string Sampler,
    string Model,
    string Mode,
    double? Strength,
    string? InitImageKey,
    string? MaskKey,
    string OutputKey,
    HiresPart? Hires = null,
    DatasetPart? Pack = null);

/// <summary>
/// Where a WebDataset job's image goes: a worker writes the images of one work unit that share
/// <paramref name="PartPrefix"/> as one tar object <c>{PartPrefix}{unique name}.tar</c> (one store write for many
/// images), each as member <paramref name="MemberName"/>, and reports that tar as the item's artifact key. The
/// coordinator later assembles the parts of a shard into the shard itself.
/// </summary>
/// <param name="PartPrefix">Key prefix of the parts of the item's shard, ending in '/'.</param>
/// <param name="MemberName">The PNG's name inside the tar (<c>{sample key}.png</c>), the same in the part and in the shard.</param>
public sealed record DatasetPart(string PartPrefix, string MemberName);

/// <summary>
/// An item's part in a hires job. A hires job is items like any other, so leases, retries, cancel and placement
/// apply to each part: the base image (a txt2img render at the base size; absent when the client gave one), one
/// item per tile (img2img of the tile's region of the upscaled base), and the stitch (the tiles blended into the
/// final image, streamed to the store in row bands). The coordinator releases tiles when the base is stored and
/// the stitch when every tile is.
/// </summary>
/// <param name="Role">One of <see cref="HiresRoles"/>.</param>
/// <param name="TargetWidth">Width of the final image, pixels.</param>
/// <param name="TargetHeight">Height of the final image, pixels.</param>
/// <param name="TileSize">Tile side in pixels; with <paramref name="Overlap"/>, rebuilds the job's tile grid exactly.</param>
/// <param name="Overlap">Least overlap between neighbouring tiles, pixels.</param>
/// <param name="TileIndex">The tile's index in the grid (tile role); -1 for base and stitch.</param>
/// <param name="TileCount">Tiles in the grid.</param>
/// <param name="BaseImageKey">Artifact key of the base image (tile and stitch roles).</param>
/// <param name="TileKeys">Artifact keys of the tiles in index order (stitch role only).</param>
/// <param name="Upscaler">
/// Name of the super-resolution model that upscales the base under each tile (resolved by the worker like
/// <see cref="RenderItem.Model"/>); null for Mitchell resampling. Tile and stitch roles (the stitch records it).
/// </param>
public sealed record HiresPart(
    string Role,
    int TargetWidth,
    int TargetHeight,
    int TileSize,
    int Overlap,
    int TileIndex,
    int TileCount,
    string? BaseImageKey,
    IReadOnlyList<string>? TileKeys,
    string? Upscaler = null);

/// <summary>The roles of a hires job's items (<see cref="HiresPart.Role"/>).</summary>
public static class HiresRoles
{
    public const string Base = "base";
    public const string Tile = "tile";
    public const string Stitch = "stitch";
}

/// <summary>Cancel every item of a job that has not finished yet.</summary>
/// <param name="JobId">The job to cancel.</param>
/// <param name="RequestedAt">When the client asked.</param>
/// <param name="Reason">Why, when the client said.</param>
public sealed record CancelJob(
    Guid JobId,
    DateTimeOffset RequestedAt,
    string? Reason)
{
    public const string WireName = MessageNames.CancelJob;
}
