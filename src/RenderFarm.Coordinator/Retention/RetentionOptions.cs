using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.Retention;

/// <summary>What the farm forgets, and when, bound from <c>Coordinator:Retention</c>.</summary>
public sealed class RetentionOptions
{
    public const string SectionName = "Coordinator:Retention";

    /// <summary>Often enough that nothing outlives its age by much; each pass is a few indexed deletes.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMinutes(10);

    /// <summary>A retried request arrives within seconds or minutes; a day covers a client that retries after an outage.</summary>
    public static readonly TimeSpan DefaultIdempotencyKeyAge = TimeSpan.FromHours(24);

    /// <summary>A week: long enough to see in <c>renderfarm workers</c> which machine went away last weekend.</summary>
    public static readonly TimeSpan DefaultWorkerAge = TimeSpan.FromDays(7);

    /// <summary>Jobs deleted per pass, so one pass never holds the database or the store for long.</summary>
    public const int DefaultBatchSize = 100;

    public TimeSpan Interval { get; set; } = DefaultInterval;

    /// <summary>
    /// Finished jobs (succeeded, completed with errors, failed, canceled) older than this, counted from when they finished, are deleted with
    /// their images; null (the default) keeps them until someone deletes them: images are the farm's product, and
    /// forgetting them is a decision for the operator.
    /// </summary>
    public TimeSpan? JobAge { get; set; }

    public TimeSpan IdempotencyKeyAge { get; set; } = DefaultIdempotencyKeyAge;

    /// <summary>Worker rows whose last heartbeat is older than this are removed.</summary>
    public TimeSpan WorkerAge { get; set; } = DefaultWorkerAge;

    public int BatchSize { get; set; } = DefaultBatchSize;

    /// <summary>
    /// Keep a hires job's base and tiles after its stitched image is stored (for inspecting seams); by default each
    /// pass removes them, since they are several times the final image's size and nothing reads them again.
    /// </summary>
    public bool KeepHiresParts { get; set; }
}

internal sealed class RetentionOptionsValidator : IValidateOptions<RetentionOptions>
{
    public ValidateOptionsResult Validate(string? name, RetentionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.Interval <= TimeSpan.Zero)
        {
            failures.Add($"{RetentionOptions.SectionName}:{nameof(options.Interval)} must be positive.");
        }

        if (options.JobAge is { } jobAge && jobAge <= TimeSpan.Zero)
        {
            failures.Add($"{RetentionOptions.SectionName}:{nameof(options.JobAge)} must be positive, or unset to keep jobs.");
        }

        if (options.IdempotencyKeyAge <= TimeSpan.Zero)
        {
            failures.Add($"{RetentionOptions.SectionName}:{nameof(options.IdempotencyKeyAge)} must be positive.");
        }

        if (options.WorkerAge <= TimeSpan.Zero)
        {
            failures.Add($"{RetentionOptions.SectionName}:{nameof(options.WorkerAge)} must be positive.");
        }

        if (options.BatchSize is < 1 or > 10_000)
        {
            failures.Add($"{RetentionOptions.SectionName}:{nameof(options.BatchSize)} must be between 1 and 10000.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
