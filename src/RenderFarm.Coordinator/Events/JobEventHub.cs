using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace RenderFarm.Coordinator.Events;

/// <summary>Names of the events a job's SSE stream carries (the SSE <c>event:</c> field).</summary>
public static class JobEventTypes
{
    /// <summary>Sent first on every stream: the job's state and counts as they are now.</summary>
    public const string Snapshot = "snapshot";

    public const string ItemStarted = "item-started";

    public const string ItemProgress = "item-progress";

    /// <summary>
    /// A running item has a new preview: <c>index</c>, <c>itemId</c>, <c>attempt</c>, <c>step</c>, <c>totalSteps</c> and
    /// <c>url</c>, the preview endpoint with the step as a query (so each event names a distinct URL for browsers).
    /// </summary>
    public const string Preview = "preview";

    /// <summary>An item's image is stored.</summary>
    public const string ItemDone = "item-done";

    /// <summary>An attempt failed and the item will be retried after its backoff.</summary>
    public const string ItemRetrying = "item-retrying";

    /// <summary>An item failed for good.</summary>
    public const string ItemFailed = "item-failed";

    public const string JobState = "job-state";

    /// <summary>The job reached a final state; the stream ends after it.</summary>
    public const string JobDone = "job-done";
}

/// <summary>Something that happened to a job, as its SSE stream shows it.</summary>
/// <remarks>
/// Item events of a hires job also name the item's <c>Part</c> (<c>base</c>, <c>tile</c> or <c>stitch</c>) and, for a
/// tile, its <c>Tile</c> index (item index − 1), so a client can count tiles without reading the job.
/// </remarks>
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

/// <summary>Sees every job event as it is published, subscribers or not (the preview store drops finished items' previews).</summary>
public interface IJobEventObserver
{
    /// <summary>Called on the publisher's thread; must be quick and must not throw.</summary>
    void Observe(JobEvent jobEvent);
}

/// <summary>
/// In-process fan-out of job events from the consumers to SSE subscribers. Each subscriber has a small
/// bounded buffer that drops its oldest events when the client reads too slowly, so a stalled browser never
/// holds back a consumer. Events of this coordinator process only: with several coordinators a client sees
/// the events that its own coordinator handled, and the final <see cref="JobEventTypes.JobDone"/> is also
/// found by polling (a later issue can move this onto the bus).
/// </summary>
public sealed class JobEventHub
{
    private readonly Lock _observersGate = new();
    private volatile IJobEventObserver[] _observers = [];

    /// <summary>Events buffered per subscriber: a few seconds of progress of a busy job.</summary>
    public const int SubscriberBuffer = 1024;

    private readonly ConcurrentDictionary<Guid, ConcurrentDictionary<Channel<JobEvent>, byte>> _subscribers = new();

    /// <summary>Hands an event to every subscriber of its job; never blocks.</summary>
    public void Publish(JobEvent jobEvent)
    {
        ArgumentNullException.ThrowIfNull(jobEvent);
        foreach (var observer in _observers)
        {
            observer.Observe(jobEvent);
        }

        if (!_subscribers.TryGetValue(jobEvent.JobId, out var channels))
        {
            return;
        }

        foreach (var channel in channels.Keys)
        {
            channel.Writer.TryWrite(jobEvent);
        }
    }

    /// <summary>
    /// Adds an observer of every event. Set at composition rather than injected: the observer (the preview store) also
    /// publishes through this hub, and constructor injection both ways would be a cycle.
    /// </summary>
    public void AddObserver(IJobEventObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        lock (_observersGate)
        {
            _observers = [.. _observers, observer];
        }
    }

    /// <summary>Subscribes to a job's events; the subscription starts now (before the first item is read) and ends with the enumeration.</summary>
    public Subscription Subscribe(Guid jobId)
    {
        var channel = Channel.CreateBounded<JobEvent>(new BoundedChannelOptions(SubscriberBuffer)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        while (true)
        {
            var channels = _subscribers.GetOrAdd(jobId, _ => new());
            channels.TryAdd(channel, 0);
            // The last subscriber of the job may have removed this set in between; then add to its successor.
            if (_subscribers.TryGetValue(jobId, out var current) && ReferenceEquals(current, channels))
            {
                return new Subscription(this, jobId, channel);
            }
        }
    }

    private void Unsubscribe(Guid jobId, Channel<JobEvent> channel)
    {
        if (_subscribers.TryGetValue(jobId, out var channels))
        {
            channels.TryRemove(channel, out _);
            if (channels.IsEmpty)
            {
                _subscribers.TryRemove(new KeyValuePair<Guid, ConcurrentDictionary<Channel<JobEvent>, byte>>(jobId, channels));
            }
        }
    }

    /// <summary>One subscriber's stream; dispose to stop receiving.</summary>
    public sealed class Subscription : IDisposable
    {
        private readonly JobEventHub _hub;
        private readonly Guid _jobId;
        private readonly Channel<JobEvent> _channel;

        internal Subscription(JobEventHub hub, Guid jobId, Channel<JobEvent> channel)
        {
            _hub = hub;
            _jobId = jobId;
            _channel = channel;
        }

        public async IAsyncEnumerable<JobEvent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var item in _channel.Reader.ReadAllAsync(cancellationToken))
            {
                yield return item;
            }
        }

        public void Dispose()
        {
            _hub.Unsubscribe(_jobId, _channel);
            _channel.Writer.TryComplete();
        }
    }
}
