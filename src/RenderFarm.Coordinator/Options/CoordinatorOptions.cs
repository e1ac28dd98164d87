using Microsoft.Extensions.Options;
using RenderFarm.Domain.Items;
using RenderFarm.Domain.Policies;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Coordinator.Options;

/// <summary>What the coordinator accepts and how it plans work, bound from the <c>Coordinator</c> section.</summary>
public sealed class CoordinatorOptions
{
    public const string SectionName = "Coordinator";

    /// <summary>The tiny test model the repository generates; a farm with real weights lists its own.</summary>
    public const string DefaultModel = "tiny-sd";

    /// <summary>
    /// Items per insert page: large enough that a million-item sweep is a few hundred COPY pages, small enough
    /// that one page (and its planned units) sits comfortably in memory. A multiple of the unit size keeps units whole.
    /// </summary>
    public const int DefaultInsertPageSize = 4096;

    /// <summary>Default for <see cref="LedgerBatchSize"/>.</summary>
    public const int DefaultLedgerBatchSize = 100;

    /// <summary>Default for <see cref="LedgerBatchWait"/>: a lone report waits at most this long.</summary>
    public static readonly TimeSpan DefaultLedgerBatchWait = TimeSpan.FromMilliseconds(20);

    /// <summary>Models a job may name; the first is used when a job names none. Placement by VRAM comes later.</summary>
    public List<string> Models { get; set; } = [];

    /// <summary>Largest width × height of one image.</summary>
    public long MaxPixels { get; set; } = ValidationLimits.DefaultMaxPixels;

    /// <summary>Largest <c>count</c>.</summary>
    public int MaxCount { get; set; } = ValidationLimits.DefaultMaxCount;

    /// <summary>Largest number of items one job may expand into.</summary>
    public long MaxSweepItems { get; set; } = ValidationLimits.DefaultMaxSweepItems;

    /// <summary>Longest prompt in characters.</summary>
    public int MaxPromptLength { get; set; } = ValidationLimits.DefaultMaxPromptLength;

    /// <summary>Largest target width × height of a hires job (its tiles are rendered separately, so far above <see cref="MaxPixels"/>).</summary>
    public long HiresMaxPixels { get; set; } = HiresLimits.DefaultMaxPixels;

    /// <summary>Largest target width or height of a hires job.</summary>
    public int HiresMaxSide { get; set; } = HiresLimits.DefaultMaxSide;

    /// <summary>Most tiles one hires job may cut into (each is an item).</summary>
    public long HiresMaxTiles { get; set; } = HiresLimits.DefaultMaxTiles;

    /// <summary>Most items per work unit (see <see cref="WorkUnitPlanner"/>); 1 disables batching.</summary>
    public int WorkUnitSize { get; set; } = WorkUnitPlanner.DefaultMaxItemsPerUnit;

    /// <summary>
    /// Most worker reports (starts, images) recorded in one ledger transaction. Larger batches cost the database far
    /// less per item (docs/benchmarks.md, "Farm throughput"); 1 records each report alone.
    /// </summary>
    public int LedgerBatchSize { get; set; } = DefaultLedgerBatchSize;

    /// <summary>How long a ledger batch waits for more reports after its first before it is recorded anyway.</summary>
    public TimeSpan LedgerBatchWait { get; set; } = DefaultLedgerBatchWait;

    /// <summary>Items written per page when a job is inserted.</summary>
    public int InsertPageSize { get; set; } = DefaultInsertPageSize;

    /// <summary>How often workers heartbeat; shown to operators and used to judge a worker live.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = LeasePolicy.DefaultHeartbeatInterval;

    /// <summary>How long a running item's lease lasts after its worker's last heartbeat.</summary>
    public TimeSpan LeaseDuration { get; set; } = LeasePolicy.DefaultLeaseDuration;

    /// <summary>Attempts per item, the first included.</summary>
    public int MaxAttempts { get; set; } = RetryPolicy.DefaultMaxAttempts;

    public TimeSpan InitialBackoff { get; set; } = RetryPolicy.DefaultInitialBackoff;

    public double BackoffMultiplier { get; set; } = RetryPolicy.DefaultMultiplier;

    public TimeSpan MaxBackoff { get; set; } = RetryPolicy.DefaultMaxBackoff;

    /// <summary>
    /// How long an image's presigned store URL (the redirect of <c>GET /v1/images/…</c>) stays valid: long enough to
    /// start a download, short enough that a leaked link soon stops working. S3 allows at most seven days.
    /// </summary>
    public TimeSpan DownloadUrlLifetime { get; set; } = DefaultDownloadUrlLifetime;

    public static readonly TimeSpan DefaultDownloadUrlLifetime = TimeSpan.FromMinutes(15);

    public IReadOnlyList<string> EffectiveModels => Models.Count > 0 ? Models : [DefaultModel];

    public ValidationLimits ToValidationLimits() => new()
    {
        MaxPixels = MaxPixels,
        MaxCount = MaxCount,
        MaxSweepItems = MaxSweepItems,
        MaxPromptLength = MaxPromptLength,
        Hires = new HiresLimits { MaxPixels = HiresMaxPixels, MaxSide = HiresMaxSide, MaxTiles = HiresMaxTiles },
    };

    public LeasePolicy ToLeasePolicy() => new() { HeartbeatInterval = HeartbeatInterval, LeaseDuration = LeaseDuration };

    public RetryPolicy ToRetryPolicy() => new()
    {
        MaxAttempts = MaxAttempts,
        InitialBackoff = InitialBackoff,
        Multiplier = BackoffMultiplier,
        MaxBackoff = MaxBackoff,
    };
}

internal sealed class CoordinatorOptionsValidator : IValidateOptions<CoordinatorOptions>
{
    public ValidateOptionsResult Validate(string? name, CoordinatorOptions options)
    {
        var failures = new List<string>();
        void Check(bool ok, string message)
        {
            if (!ok)
            {
                failures.Add($"{CoordinatorOptions.SectionName}:{message}");
            }
        }

        Check(options.EffectiveModels.All(m => !string.IsNullOrWhiteSpace(m)), $"{nameof(options.Models)} must not contain empty names.");
        Check(options.MaxPixels >= (long)ValidationLimits.MinDimension * ValidationLimits.MinDimension, $"{nameof(options.MaxPixels)} must allow at least one 64×64 image.");
        Check(options.MaxCount >= 1, $"{nameof(options.MaxCount)} must be at least 1.");
        Check(options.MaxSweepItems >= 1, $"{nameof(options.MaxSweepItems)} must be at least 1.");
        Check(options.MaxPromptLength >= 1, $"{nameof(options.MaxPromptLength)} must be at least 1.");
        Check(options.HiresMaxSide >= ValidationLimits.MinDimension, $"{nameof(options.HiresMaxSide)} must be at least {ValidationLimits.MinDimension}.");
        Check(options.HiresMaxPixels >= (long)ValidationLimits.MinDimension * ValidationLimits.MinDimension, $"{nameof(options.HiresMaxPixels)} must allow at least one 64×64 image.");
        Check(options.HiresMaxTiles >= 1, $"{nameof(options.HiresMaxTiles)} must be at least 1.");
        Check(options.WorkUnitSize is >= 1 and <= 1024, $"{nameof(options.WorkUnitSize)} must be between 1 and 1024.");
        Check(options.LedgerBatchSize is >= 1 and <= 1000, $"{nameof(options.LedgerBatchSize)} must be between 1 and 1000.");
        Check(options.LedgerBatchWait > TimeSpan.Zero && options.LedgerBatchWait <= TimeSpan.FromSeconds(10),
            $"{nameof(options.LedgerBatchWait)} must be more than zero and at most 00:00:10.");
        Check(options.InsertPageSize is >= 1 and <= 1_000_000, $"{nameof(options.InsertPageSize)} must be between 1 and 1000000.");
        Check(options.DownloadUrlLifetime >= TimeSpan.FromSeconds(1) && options.DownloadUrlLifetime <= TimeSpan.FromDays(7),
            $"{nameof(options.DownloadUrlLifetime)} must be between 00:00:01 and 7.00:00:00 (S3's longest presigned URL).");
        failures.AddRange(options.ToLeasePolicy().Validate().Select(e => $"{CoordinatorOptions.SectionName}:{e}"));
        failures.AddRange(options.ToRetryPolicy().Validate().Select(e => $"{CoordinatorOptions.SectionName}:{e}"));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
