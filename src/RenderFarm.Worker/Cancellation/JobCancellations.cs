namespace RenderFarm.Worker.Cancellation;

/// <summary>
/// Which jobs were canceled, and a token per running unit so a <c>JobCanceled</c> reaches the items rendering now
/// (between denoising steps). Canceled jobs are remembered for <see cref="Retention"/>, so units of such a job
/// still queued behind the cancellation are acknowledged without rendering.
/// </summary>
/// <remarks>
/// A canceled job can be retried (the coordinator queues new attempts of its canceled items). Units dispatched
/// after the cancel (their <c>DispatchedAt</c> is later than the cancel's <c>CanceledAt</c>, both the
/// coordinator's clock) belong to that retry and are rendered; units without a dispatch time, or dispatched before
/// the cancel, are not.
/// </remarks>
public sealed class JobCancellations(TimeProvider time)
{
    /// <summary>Long enough to outlast any queue of units dispatched before the cancel; short enough to stay small.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    // One lock for both maps: cancels are rare and units few, and it closes the race between a unit entering
    // and a cancel arriving.
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, Canceled> _canceled = [];
    private readonly Dictionary<Guid, List<(CancellationTokenSource Source, DateTimeOffset? DispatchedAt)>> _running = [];

    /// <summary>True when the job was canceled after a unit dispatched at <paramref name="dispatchedAt"/> was sent (null: any unit).</summary>
    public bool IsCanceled(Guid jobId, DateTimeOffset? dispatchedAt = null)
    {
        lock (_gate)
        {
            return _canceled.TryGetValue(jobId, out var canceled) && canceled.Covers(dispatchedAt);
        }
    }

    /// <summary>
    /// A token that is canceled when <paramref name="jobId"/> is (at once if it already was); dispose the scope when
    /// the unit ends.
    /// </summary>
    public Scope Enter(Guid jobId, DateTimeOffset? dispatchedAt = null)
    {
        var source = new CancellationTokenSource();
        lock (_gate)
        {
            if (_canceled.TryGetValue(jobId, out var canceled) && canceled.Covers(dispatchedAt))
            {
                source.Cancel();
            }
            else if (_running.TryGetValue(jobId, out var sources))
            {
                sources.Add((source, dispatchedAt));
            }
            else
            {
                _running[jobId] = [(source, dispatchedAt)];
            }
        }

        return new Scope(this, jobId, source);
    }

    /// <summary>
    /// Records the cancel and cancels every running unit of the job dispatched before it (all of them when
    /// <paramref name="canceledAt"/>, the coordinator's time of the cancel, is not given).
    /// </summary>
    public void Cancel(Guid jobId, DateTimeOffset? canceledAt = null)
    {
        var now = time.GetUtcNow();
        var canceled = new Canceled(now, canceledAt);
        List<CancellationTokenSource> stop = [];
        lock (_gate)
        {
            _canceled[jobId] = canceled;
            if (_running.TryGetValue(jobId, out var sources))
            {
                stop.AddRange(sources.Where(s => canceled.Covers(s.DispatchedAt)).Select(s => s.Source));
                sources.RemoveAll(s => canceled.Covers(s.DispatchedAt));
                if (sources.Count == 0)
                {
                    _running.Remove(jobId);
                }
            }

            foreach (var id in _canceled.Where(c => now - c.Value.RecordedAt > Retention).Select(c => c.Key).ToList())
            {
                _canceled.Remove(id);
            }
        }

        // Outside the lock: cancellation callbacks run synchronously and reach into the engine.
        foreach (var source in stop)
        {
            try
            {
                source.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The unit ended between the lock and here: nothing left to stop.
            }
        }
    }

    private void Exit(Guid jobId, CancellationTokenSource source)
    {
        lock (_gate)
        {
            if (_running.TryGetValue(jobId, out var sources) && sources.RemoveAll(s => s.Source == source) > 0 && sources.Count == 0)
            {
                _running.Remove(jobId);
            }
        }

        source.Dispose();
    }

    /// <summary>A running unit's view of its job's cancellation.</summary>
    public sealed class Scope : IDisposable
    {
        private readonly JobCancellations _owner;
        private readonly Guid _jobId;
        private readonly CancellationTokenSource _source;

        internal Scope(JobCancellations owner, Guid jobId, CancellationTokenSource source)
        {
            _owner = owner;
            _jobId = jobId;
            _source = source;
            Token = source.Token;
        }

        public CancellationToken Token { get; }

        public void Dispose() => _owner.Exit(_jobId, _source);
    }

    /// <param name="RecordedAt">This worker's clock, for the retention.</param>
    /// <param name="CanceledAt">The coordinator's clock, compared with units' dispatch times; null: every unit.</param>
    private readonly record struct Canceled(DateTimeOffset RecordedAt, DateTimeOffset? CanceledAt)
    {
        public bool Covers(DateTimeOffset? dispatchedAt) => CanceledAt is not { } at || dispatchedAt is not { } sent || sent <= at;
    }
}
