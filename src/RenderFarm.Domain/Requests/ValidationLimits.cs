namespace RenderFarm.Domain.Requests;

/// <summary>
/// Configurable bounds that <see cref="JobRequestValidator"/> enforces. Hosts bind these from configuration;
/// the defaults suit one consumer GPU per worker.
/// </summary>
public sealed record ValidationLimits
{
    /// <summary>2048 × 2048: the largest plain txt2img that an SD 1.x/2.x UNet renders on a 24 GB card without tiling.</summary>
    public const long DefaultMaxPixels = 2048L * 2048L;

    /// <summary>Enough for a dataset batch; more belongs in a sweep, whose items are counted and expanded lazily.</summary>
    public const int DefaultMaxCount = 10_000;

    /// <summary>A million items: the dataset-builder scale the design targets, still cheap to count and page.</summary>
    public const long DefaultMaxSweepItems = 1_000_000;

    /// <summary>Far beyond CLIP's 77-token window; anything longer is a pasted file, not a prompt.</summary>
    public const int DefaultMaxPromptLength = 10_000;

    /// <summary>Largest value of a single dimension is bounded by pixels; the smallest is the UNet's latent floor (8 latent cells).</summary>
    public const int MinDimension = 64;

    /// <summary>The VAE downsamples by 8, so pixel sizes must divide into whole latent cells.</summary>
    public const int DimensionMultiple = 8;

    public const int MinSteps = 1;

    /// <summary>Beyond ~150 steps no sampler changes the image visibly; 1000 is the training schedule's length.</summary>
    public const int MaxSteps = 1000;

    /// <summary>0 disables classifier-free guidance (what LCM wants); negative values would steer towards the negative prompt.</summary>
    public const double MinGuidanceScale = 0;

    /// <summary>Past ~30 images burn out to saturated noise; 50 leaves room for experiments while catching typos like 750.</summary>
    public const double MaxGuidanceScale = 50;

    /// <summary>
    /// 2^53 − 1: the largest integer a JSON number keeps exactly in every client (JavaScript doubles), so a
    /// seed read back from the API is the seed that rendered the image.
    /// </summary>
    public const long MaxSeed = (1L << 53) - 1;

    public const int MinPriority = -100;
    public const int MaxPriority = 100;

    public static ValidationLimits Default { get; } = new();

    /// <summary>Largest width × height of one image.</summary>
    public long MaxPixels { get; init; } = DefaultMaxPixels;

    /// <summary>Largest <c>count</c>.</summary>
    public int MaxCount { get; init; } = DefaultMaxCount;

    /// <summary>Largest number of items a job may expand into, sweep or not.</summary>
    public long MaxSweepItems { get; init; } = DefaultMaxSweepItems;

    /// <summary>Largest prompt or negative prompt, in UTF-16 characters.</summary>
    public int MaxPromptLength { get; init; } = DefaultMaxPromptLength;

    /// <summary>Bounds of mode <c>hires</c>, whose target size is not limited by <see cref="MaxPixels"/> (its base render is).</summary>
    public Tiling.HiresLimits Hires { get; init; } = Tiling.HiresLimits.Default;
}
