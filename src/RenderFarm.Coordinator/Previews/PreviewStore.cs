using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Events;

namespace RenderFarm.Coordinator.Previews;

/// <summary>The latest preview of a running item, as the API serves it.</summary>
public sealed record ItemPreview(
    Guid ItemId,
    Guid JobId,
    long Index,
    int Attempt,
    int Step,
    int TotalSteps,
    string ContentType,
    byte[] Image,
    int Width,
    int Height,
    DateTimeOffset ReceivedAt);

/// <summary>
/// The latest preview of each running item, in memory only: previews are advisory, so nothing is written to the
/// database and a restart simply starts without them. Bounded by <see cref="PreviewOptions.MaxItems"/> (the stalest
/// go first) and <see cref="PreviewOptions.MaxAge"/>. An item's preview is dropped when its attempt ends (done,
/// retrying, failed) or its job finishes, as the job's events say (<see cref="IJobEventObserver"/>); a preview that
/// arrives after that (the bus does not order previews against completions) is refused.
/// </summary>
/// <remarks>
/// One lock over small dictionaries rather than concurrent collections: each preview touches three of them together,
/// and previews arrive at about one per running item and second, far below where the lock would matter.
/// </remarks>
public sealed class PreviewStore(IOptions<PreviewOptions> options, TimeProvider time, JobEventHub hub) : IJobEventObserver
{
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, ItemPreview> _byItem = [];
    private readonly Dictionary<(Guid JobId, long Index), Guid> _byIndex = [];
    // Attempts that ended and finished jobs, remembered (bounded, oldest forgotten first) to refuse late previews.
    private readonly Dictionary<Guid, int> _endedAttempts = [];
    private readonly Queue<Guid> _endedOrder = new();
    private readonly HashSet<Guid> _finishedJobs = [];
    private readonly Queue<Guid> _finishedOrder = new();

    /// <summary>Items with a preview held now.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byItem.Count;
            }
        }
    }

    /// <summary>
    /// Keeps <paramref name="message"/> as its item's latest preview and announces it on the job's events; false when it
    /// is refused (too large, older than the one held, or of an attempt or job that has ended).
    /// </summary>
    public bool Offer(ItemPreviewed message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var settings = options.Value;
        if (message.Image.Length is 0 || message.Image.Length > settings.MaxBytes)
        {
            return false;
        }

        var preview = new ItemPreview(message.ItemId, message.JobId, message.Index, message.Attempt, message.Step, message.TotalSteps,
            message.ContentType, message.Image, message.Width, message.Height, time.GetUtcNow());
        lock (_gate)
        {
            if (_finishedJobs.Contains(message.JobId)
                || (_endedAttempts.TryGetValue(message.ItemId, out var ended) && message.Attempt <= ended)
                || (_byItem.TryGetValue(message.ItemId, out var held)
                    && (held.Attempt > message.Attempt || (held.Attempt == message.Attempt && held.Step >= message.Step))))
            {
                return false;
            }

            if (held is null && _byItem.Count >= settings.MaxItems)
            {
                // A linear scan, only when full: cheaper overall than keeping an ordered index for every preview.
                RemoveLocked(_byItem.Values.MinBy(p => p.ReceivedAt)!);
            }

            _byItem[message.ItemId] = preview;
            _byIndex[(message.JobId, message.Index)] = message.ItemId;
        }

        hub.Publish(new JobEvent(JobEventTypes.Preview, message.JobId, message.Index, message.ItemId, message.Attempt,
            Step: message.Step, TotalSteps: message.TotalSteps, Url: CoordinatorRoutes.ItemPreviewUrl(message.JobId, message.Index, message.Step)));
        return true;
    }

    /// <summary>The latest preview of item <paramref name="index"/> of <paramref name="jobId"/>; null when none is held or it is stale.</summary>
    public ItemPreview? Get(Guid jobId, long index)
    {
        lock (_gate)
        {
            return _byIndex.TryGetValue((jobId, index), out var itemId)
                && _byItem.TryGetValue(itemId, out var preview)
                && time.GetUtcNow() - preview.ReceivedAt <= options.Value.MaxAge
                ? preview
                : null;
        }
    }

    /// <inheritdoc />
    public void Observe(JobEvent jobEvent)
    {
        ArgumentNullException.ThrowIfNull(jobEvent);
        switch (jobEvent.Type)
        {
            case JobEventTypes.ItemDone or JobEventTypes.ItemRetrying or JobEventTypes.ItemFailed when jobEvent.ItemId is { } itemId:
                EndAttempt(itemId, jobEvent.Attempt ?? int.MaxValue);
                break;
            case JobEventTypes.JobDone:
                FinishJob(jobEvent.JobId);
                break;
        }
    }

    private void EndAttempt(Guid itemId, int attempt)
    {
        lock (_gate)
        {
            if (_byItem.TryGetValue(itemId, out var held) && held.Attempt <= attempt)
            {
                RemoveLocked(held);
            }

            if (!_endedAttempts.TryGetValue(itemId, out var known))
            {
                Remember(_endedOrder, itemId, forget: id => _endedAttempts.Remove(id));
            }

            _endedAttempts[itemId] = Math.Max(known, attempt);
        }
    }

    private void FinishJob(Guid jobId)
    {
        lock (_gate)
        {
            foreach (var preview in _byItem.Values.Where(p => p.JobId == jobId).ToList())
            {
                RemoveLocked(preview);
            }

            if (_finishedJobs.Add(jobId))
            {
                Remember(_finishedOrder, jobId, forget: id => _finishedJobs.Remove(id));
            }
        }
    }

    private void Remember(Queue<Guid> order, Guid id, Action<Guid> forget)
    {
        order.Enqueue(id);
        if (order.Count > options.Value.MaxItems)
        {
            forget(order.Dequeue());
        }
    }

    private void RemoveLocked(ItemPreview preview)
    {
        _byItem.Remove(preview.ItemId);
        _byIndex.Remove((preview.JobId, preview.Index));
    }
}
