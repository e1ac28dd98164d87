using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Options;
using RenderFarm.Domain.States;
using RenderFarm.Telemetry;

namespace RenderFarm.Coordinator.Telemetry;

/// <summary>
/// The coordinator's own instruments (meter <c>RenderFarm.Coordinator</c>). Counters and histograms are recorded where
/// the ledger, the dispatcher and the rescuer commit; the gauges read <see cref="FarmSnapshot"/>, which
/// <see cref="FarmSnapshotService"/> refreshes on a timer, so a scrape never queries the database.
/// </summary>
internal sealed class CoordinatorMetrics
{
    // Queue waits run from milliseconds (an idle farm) to hours (a million-item sweep's tail).
    private static readonly double[] WaitBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];

    private readonly Counter<long> _completed;
    private readonly Counter<long> _failed;
    private readonly Counter<long> _retried;
    private readonly Counter<long> _rescued;
    private readonly Histogram<double> _queueWait;
    private readonly Histogram<double> _outboxLag;
    private volatile FarmSnapshot _snapshot = FarmSnapshot.Empty;

    public CoordinatorMetrics(IMeterFactory meters, IOptions<CoordinatorOptions> options)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(options);
        var meter = meters.Create(RenderFarmDiagnostics.Coordinator);
        _completed = meter.CreateCounter<long>("renderfarm.items.completed", "{item}", "Items that finished with an image.");
        _failed = meter.CreateCounter<long>("renderfarm.items.failed", "{item}", "Items that failed for good (out of attempts, or not retryable).");
        _retried = meter.CreateCounter<long>("renderfarm.items.retried", "{item}", "Failed attempts that will be retried after backoff (a lapsed lease included).");
        _rescued = meter.CreateCounter<long>("renderfarm.leases.rescued", "{item}", "Running items whose lease lapsed (their worker stopped heartbeating).");
        _queueWait = meter.CreateHistogram("renderfarm.item.queue.wait", "s", "Time from a job's submission to the start of one of its items' attempts.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WaitBuckets });
        _outboxLag = meter.CreateHistogram("renderfarm.outbox.lag", "s", "Time an outbox row waited between being written and being sent.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WaitBuckets });

        meter.CreateObservableGauge("renderfarm.items", () => Measure(_snapshot.Items), "{item}", "Items by state (from the jobs' counters).");
        meter.CreateObservableGauge("renderfarm.jobs", () => Measure(_snapshot.Jobs), "{job}", "Jobs by state.");
        meter.CreateObservableGauge("renderfarm.workers", () => Measure(_snapshot.Workers), "{worker}", "Live workers (heartbeat within the lease) by state.");
        meter.CreateObservableGauge("renderfarm.outbox.backlog", () => _snapshot.OutboxRows, "{message}", "Rows in the outbox: messages owed to the bus, due or held.");
        meter.CreateObservableGauge("renderfarm.outbox.age", () => _snapshot.OldestDueAge.TotalSeconds, "s", "Age of the oldest due outbox row (0 when none is due). Work units wait there until the dispatch window has room, so it grows behind a large job by design; with idle live workers it is how far dispatch is behind.");

        // Known label values start at 0, so rate() answers "none" rather than "no data" before the first event.
        _rescued.Add(0);
        foreach (var model in options.Value.EffectiveModels)
        {
            foreach (var mode in RenderModes.All)
            {
                var tags = ModelMode(model, mode);
                _completed.Add(0, tags);
                _failed.Add(0, tags);
                _retried.Add(0, tags);
            }
        }
    }

    public FarmSnapshot Snapshot
    {
        get => _snapshot;
        set => _snapshot = value;
    }

    public void Completed(string model, string mode, int count = 1) => _completed.Add(count, ModelMode(model, mode));

    /// <summary>A failed attempt: counted as a retry or as a final failure by the state it moved the item to.</summary>
    public void Failed(string model, string mode, ItemState to)
    {
        if (to == ItemState.Retrying)
        {
            _retried.Add(1, ModelMode(model, mode));
        }
        else if (to == ItemState.Failed)
        {
            _failed.Add(1, ModelMode(model, mode));
        }
    }

    public void LeaseRescued(int count) => _rescued.Add(count);

    public void QueueWait(TimeSpan wait, string model, int width, int height, string sampler) =>
        _queueWait.Record(Math.Max(0, wait.TotalSeconds),
            new KeyValuePair<string, object?>(RenderFarmTags.Model, model),
            new KeyValuePair<string, object?>(RenderFarmTags.SizeClass, RenderFarmTags.SizeClassOf(width, height)),
            new KeyValuePair<string, object?>(RenderFarmTags.Sampler, sampler));

    public void OutboxLag(TimeSpan lag) => _outboxLag.Record(Math.Max(0, lag.TotalSeconds));

    private static KeyValuePair<string, object?>[] ModelMode(string model, string mode) =>
        [new(RenderFarmTags.Model, model), new(RenderFarmTags.Mode, mode)];

    private static IEnumerable<Measurement<long>> Measure(IReadOnlyDictionary<string, long> counts) =>
        counts.Select(c => new Measurement<long>(c.Value, new KeyValuePair<string, object?>(RenderFarmTags.State, c.Key)));
}

/// <summary>The grouped counts the gauges report, as of <see cref="TakenAt"/>.</summary>
internal sealed record FarmSnapshot(
    IReadOnlyDictionary<string, long> Items,
    IReadOnlyDictionary<string, long> Jobs,
    IReadOnlyDictionary<string, long> Workers,
    long OutboxRows,
    TimeSpan OldestDueAge,
    DateTimeOffset TakenAt)
{
    public static FarmSnapshot Empty { get; } = new(
        new Dictionary<string, long>(), new Dictionary<string, long>(), new Dictionary<string, long>(), 0, TimeSpan.Zero, DateTimeOffset.MinValue);
}
