using RenderFarm.Domain.States;

namespace RenderFarm.Domain.Policies;

/// <summary>
/// How often an item is tried and how long it waits between tries: exponential backoff with a cap, a pure
/// function of the attempt number. No jitter here, so the rescuer's schedule is reproducible in tests; items of
/// one unit fail at different moments anyway, which spreads their retries.
/// </summary>
public sealed record RetryPolicy
{
    /// <summary>Three tries survive a transient fault (OOM next to another job, a worker restart) without hiding a broken item for long.</summary>
    public const int DefaultMaxAttempts = 3;

    public static readonly TimeSpan DefaultInitialBackoff = TimeSpan.FromSeconds(5);

    public static readonly TimeSpan DefaultMaxBackoff = TimeSpan.FromMinutes(5);

    public const double DefaultMultiplier = 2;

    public static RetryPolicy Default { get; } = new();

    /// <summary>Attempts in all, the first included; at least 1.</summary>
    public int MaxAttempts { get; init; } = DefaultMaxAttempts;

    /// <summary>Wait after the first failed attempt.</summary>
    public TimeSpan InitialBackoff { get; init; } = DefaultInitialBackoff;

    /// <summary>Growth per further failure; at least 1.</summary>
    public double Multiplier { get; init; } = DefaultMultiplier;

    /// <summary>Longest wait, however many attempts failed.</summary>
    public TimeSpan MaxBackoff { get; init; } = DefaultMaxBackoff;

    /// <summary>Problems with the settings, empty when valid; hosts call this from options validation.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MaxAttempts < 1)
        {
            errors.Add($"{nameof(MaxAttempts)} must be at least 1.");
        }

        if (InitialBackoff < TimeSpan.Zero)
        {
            errors.Add($"{nameof(InitialBackoff)} must not be negative.");
        }

        if (!double.IsFinite(Multiplier) || Multiplier < 1)
        {
            errors.Add($"{nameof(Multiplier)} must be a finite number of at least 1.");
        }

        if (MaxBackoff < InitialBackoff)
        {
            errors.Add($"{nameof(MaxBackoff)} must be at least {nameof(InitialBackoff)}.");
        }

        return errors;
    }

    /// <summary>
    /// Wait before the next attempt after attempt <paramref name="failedAttempt"/> (1-based) failed:
    /// InitialBackoff × Multiplier^(failedAttempt − 1), capped at <see cref="MaxBackoff"/>.
    /// </summary>
    public TimeSpan BackoffAfter(int failedAttempt)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(failedAttempt);
        // Computed in double ticks so large attempt numbers saturate at the cap instead of overflowing.
        var ticks = InitialBackoff.Ticks * Math.Pow(Multiplier, failedAttempt - 1);
        return ticks >= MaxBackoff.Ticks ? MaxBackoff : TimeSpan.FromTicks((long)ticks);
    }

    /// <summary>True when another attempt follows attempt <paramref name="failedAttempt"/>.</summary>
    public bool ShouldRetry(int failedAttempt, bool retryable)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(failedAttempt);
        return retryable && failedAttempt < MaxAttempts;
    }

    /// <summary>The state a running item moves to when attempt <paramref name="failedAttempt"/> failed (or its lease lapsed, which is retryable).</summary>
    public ItemState StateAfterFailure(int failedAttempt, bool retryable) =>
        ShouldRetry(failedAttempt, retryable) ? ItemState.Retrying : ItemState.Failed;

    /// <summary>When an item whose attempt failed at <paramref name="failedAt"/> may be queued again.</summary>
    public DateTimeOffset RetryAt(int failedAttempt, DateTimeOffset failedAt) => failedAt + BackoffAfter(failedAttempt);
}
