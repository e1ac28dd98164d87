using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.Options;

/// <summary>How jobs of the same priority share the farm (see <c>Dispatch/DispatchOrder.cs</c>).</summary>
public enum FairSharePolicy
{
    /// <summary>
    /// Each unit goes to the job (the unit of fairness) with the fewest items dispatched and not yet finished, the
    /// older job on a tie: jobs take turns, so a small job submitted behind a huge sweep starts at the next free slot.
    /// </summary>
    LeastInFlight = 0,

    /// <summary>First submitted, first served: a job's units all go before a later job's of the same priority.</summary>
    Submission = 1,
}

/// <summary>What takes turns under <see cref="FairSharePolicy.LeastInFlight"/>.</summary>
public enum FairShareUnit
{
    /// <summary>Each job is a share: a tenant with ten jobs holds ten shares.</summary>
    Job = 0,

    /// <summary>Each tenant is a share, and its jobs take turns within it: tenants get equal slots however many jobs each submits.</summary>
    Tenant = 1,
}

/// <summary>The outbox dispatcher's pace and window, bound from <c>Coordinator:Dispatcher</c>.</summary>
public sealed class OutboxDispatcherOptions
{
    public const string SectionName = "Coordinator:Dispatcher";

    /// <summary>One batch is one transaction held open while its messages are sent; 100 units keep it well under a second.</summary>
    public const int DefaultBatchSize = 100;

    /// <summary>Idle wait between empty polls; a submission wakes the dispatcher at once, so this only bounds the delay for other writers (retries, other coordinators).</summary>
    public static readonly TimeSpan DefaultPollInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Three units per live worker: the one it renders and two more, so a worker never idles waiting for the
    /// dispatcher's round trip (a unit's last start is recorded only as it begins its last batch) while the broker
    /// holds no more than the fleet can start soon (what runs next is still decided in the database). Measured against
    /// two in docs/benchmarks.md ("Per-unit reports vs per-item"): 1.47× the completions of fast items.
    /// </summary>
    public const int DefaultUnitsPerWorker = 3;

    public const int MaxUnitsPerWorker = 100_000;

    public int BatchSize { get; set; } = DefaultBatchSize;

    public TimeSpan PollInterval { get; set; } = DefaultPollInterval;

    /// <summary>
    /// The window: work units (of <c>Coordinator:WorkUnitSize</c> items) sent and not yet started, per live worker, on
    /// the shared queue (× live workers, at least one) and on each worker's own queue.
    /// </summary>
    public int UnitsPerWorker { get; set; } = DefaultUnitsPerWorker;

    /// <summary>How jobs of the same priority share the window.</summary>
    public FairSharePolicy FairShare { get; set; } = FairSharePolicy.LeastInFlight;

    /// <summary>
    /// The share that <see cref="FairSharePolicy.LeastInFlight"/> balances: tenants by default (on an open farm every
    /// job is the default tenant's, so its jobs take turns as before), or jobs alone.
    /// </summary>
    public FairShareUnit FairShareBy { get; set; } = FairShareUnit.Tenant;
}

/// <summary>The lease rescuer's pace, bound from <c>Coordinator:Rescuer</c>.</summary>
public sealed class LeaseRescuerOptions
{
    public const string SectionName = "Coordinator:Rescuer";

    /// <summary>Once a second: backoffs are seconds long and a lapsed lease is already 30 s stale, so finer ticks buy nothing.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(1);

    /// <summary>Items per bulk update, as River pages its rescues.</summary>
    public const int DefaultBatchSize = 1000;

    public TimeSpan Interval { get; set; } = DefaultInterval;

    public int BatchSize { get; set; } = DefaultBatchSize;
}

/// <summary>How step progress reaches the database, bound from <c>Coordinator:Progress</c>.</summary>
public sealed class ProgressOptions
{
    public const string SectionName = "Coordinator:Progress";

    /// <summary>A user watching a job sees steps over SSE at once; the database copy only needs to be roughly current.</summary>
    public static readonly TimeSpan DefaultFlushInterval = TimeSpan.FromSeconds(1);

    /// <summary>Running items tracked between flushes; past this, progress still streams but is not written until the next flush frees room.</summary>
    public const int DefaultMaxPending = 50_000;

    public TimeSpan FlushInterval { get; set; } = DefaultFlushInterval;

    public int MaxPending { get; set; } = DefaultMaxPending;
}

/// <summary>How often the gauges' snapshot is refreshed, bound from <c>Coordinator:Metrics</c>.</summary>
public sealed class MetricsOptions
{
    public const string SectionName = "Coordinator:Metrics";

    /// <summary>Faster than Prometheus' usual 15 s scrape, and a few cheap grouped queries each time.</summary>
    public static readonly TimeSpan DefaultRefreshInterval = TimeSpan.FromSeconds(5);

    public TimeSpan RefreshInterval { get; set; } = DefaultRefreshInterval;
}

internal sealed class BackgroundOptionsValidator :
    IValidateOptions<OutboxDispatcherOptions>, IValidateOptions<LeaseRescuerOptions>, IValidateOptions<ProgressOptions>, IValidateOptions<MetricsOptions>
{
    public ValidateOptionsResult Validate(string? name, MetricsOptions options) => Result(
        (options.RefreshInterval >= TimeSpan.FromMilliseconds(100), $"{MetricsOptions.SectionName}:RefreshInterval must be at least 100 ms."));

    public ValidateOptionsResult Validate(string? name, OutboxDispatcherOptions options) => Result(
        (options.BatchSize is >= 1 and <= 10_000, $"{OutboxDispatcherOptions.SectionName}:BatchSize must be between 1 and 10000."),
        (options.PollInterval > TimeSpan.Zero, $"{OutboxDispatcherOptions.SectionName}:PollInterval must be positive."),
        (options.UnitsPerWorker is >= 1 and <= OutboxDispatcherOptions.MaxUnitsPerWorker,
            $"{OutboxDispatcherOptions.SectionName}:UnitsPerWorker must be between 1 and 100000."),
        (Enum.IsDefined(options.FairShareBy),
            $"{OutboxDispatcherOptions.SectionName}:FairShareBy must be one of {string.Join(", ", Enum.GetNames<FairShareUnit>())}."),
        (Enum.IsDefined(options.FairShare),
            $"{OutboxDispatcherOptions.SectionName}:FairShare must be one of {string.Join(", ", Enum.GetNames<FairSharePolicy>())}."));

    public ValidateOptionsResult Validate(string? name, LeaseRescuerOptions options) => Result(
        (options.BatchSize is >= 1 and <= 100_000, $"{LeaseRescuerOptions.SectionName}:BatchSize must be between 1 and 100000."),
        (options.Interval > TimeSpan.Zero, $"{LeaseRescuerOptions.SectionName}:Interval must be positive."));

    public ValidateOptionsResult Validate(string? name, ProgressOptions options) => Result(
        (options.MaxPending >= 1, $"{ProgressOptions.SectionName}:MaxPending must be at least 1."),
        (options.FlushInterval > TimeSpan.Zero, $"{ProgressOptions.SectionName}:FlushInterval must be positive."));

    private static ValidateOptionsResult Result(params (bool Ok, string Message)[] checks)
    {
        var failures = checks.Where(c => !c.Ok).Select(c => c.Message).ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
