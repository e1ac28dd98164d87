namespace RenderFarm.Contracts;

/// <summary>
/// Render these items, in one batch where the worker can. Every item in a unit shares model, size,
/// sampler, steps and guidance, but keeps its own id, attempt, seed and output key, and is reported on
/// separately.
/// </summary>
/// <param name="WorkUnitId">Identity of this unit, for tracing; completions are recorded per item, never per unit.</param>
/// <param name="JobId">The job all items belong to.</param>
/// <param name="Items">The items, at least one.</param>
public sealed record RenderWorkUnit(
    Guid WorkUnitId,
    Guid JobId,
    IReadOnlyList<RenderItem> Items)
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
    string OutputKey);

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
