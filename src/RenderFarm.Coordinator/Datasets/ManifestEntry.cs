using System.Globalization;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Datasets;

/// <summary>
/// One item of a job as its dataset manifest lists it (one JSONL line, one Parquet row): every parameter that made the
/// image, where it stands, and how to fetch and check it. Property order is column order.
/// </summary>
/// <param name="Key">The sample's name in a dataset (<see cref="DatasetKeys.Of"/>): stable across re-runs and retries.</param>
/// <param name="Index">The item's index in its job.</param>
/// <param name="Prompt">Its prompt.</param>
/// <param name="NegativePrompt">Its negative prompt ("" when none).</param>
/// <param name="Seed">Its seed.</param>
/// <param name="Steps">Denoising steps asked for.</param>
/// <param name="GuidanceScale">Classifier-free guidance.</param>
/// <param name="Sampler">Sampler name.</param>
/// <param name="Model">Model name.</param>
/// <param name="ModelHash">The content hash of the model folder that rendered the image (<c>ModelContentHash</c>), as its worker reported it; null until it succeeds, for hires stitches and for workers that report none.</param>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Sha256">The stored PNG's SHA-256 (lowercase hex) as its worker reported it; null until it succeeds (and for workers that report none).</param>
/// <param name="Status">The item's state in lowercase (<see cref="ManifestStatus"/>).</param>
/// <param name="Error">The last failure reason; null for succeeded items and items that never failed.</param>
/// <param name="Shard">The WebDataset shard the sample is in (<c>datasets/{jobId}/{shard:D6}.tar</c>, member <c>{key}.png</c>); null for jobs with the files output.</param>
/// <param name="Url">The farm's path to the PNG once it succeeded; null before.</param>
/// <param name="DuplicateOf">The key of the job's first item (lowest index) with the same SHA-256, when this one is not that item.</param>
/// <param name="Safety">The model's safety checker's outcome for the stored image (<c>passed</c>, <c>flagged</c>, <c>blurred</c>); null when none ran. A blocked image is a failed item whose error says so.</param>
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
    string? Safety);

/// <summary>Sample keys of a job's dataset.</summary>
public static class DatasetKeys
{
    /// <summary>
    /// The index zero-padded to nine digits (img2dataset's key width), so keys sort as indexes do and stay the same
    /// on every export and after retries. Jobs are capped far below 10^9 items (Coordinator:MaxSweepItems); past it a
    /// key would simply grow a digit.
    /// </summary>
    public static string Of(long index) => index.ToString("D9", CultureInfo.InvariantCulture);
}

/// <summary>The <c>status</c> column: an item's state as a lowercase word.</summary>
public static class ManifestStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Retrying = "retrying";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Canceled = "canceled";

    public static string Of(ItemState state) => state switch
    {
        ItemState.Queued => Queued,
        ItemState.Running => Running,
        ItemState.Retrying => Retrying,
        ItemState.Succeeded => Succeeded,
        ItemState.Failed => Failed,
        ItemState.Canceled => Canceled,
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "Not an item state."),
    };
}
