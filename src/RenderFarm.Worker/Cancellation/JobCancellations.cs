namespace RenderFarm.Worker.Cancellation;

/// <summary>
/// Which jobs were canceled, and a token per running unit so a <c>JobCanceled</c> reaches the items rendering now
/// (between denoising steps). Canceled jobs are remembered for <see cref="Retention"/>, so units of such a job
/// still queued behind the cancellation are acknowledged without rendering.
/// </summary>
public sealed class JobCancellations(TimeProvider time)
{
    /// <summary>Long enough to outlast any queue of units dispatched before the cancel; short enough to stay small.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    // One lock for both maps: cancels are rare and units few, and it closes the race between a unit entering
    // and a cancel arriving.
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, DateTimeOffset> _canceled = [];
    private readonly Dictionary<Guid, List<CancellationTokenSource>> _running = [];

    public bool IsCanceled(Guid jobId)
    {
        lock (_gate)
        {
            return _canceled.ContainsKey(jobId);
        }
    }

    /// <summary>
    /// A token that is canceled when <paramref name="jobId"/> is (at once if it already was); dispose the scope when
    /// the unit ends.
    /// </summary>
    public Scope Enter(Guid jobId)
    {
        var source = new CancellationTokenSource();
        lock (_gate)
        {
            if (_canceled.ContainsKey(jobId))
            {
                source.Cancel();
            }
            else if (_running.TryGetValue(jobId, out var sources))
            {
                sources.Add(source);
            }
            else
            {
                _running[jobId] = [source];
            }
        }

        return new Scope(this, jobId, source);
    }

    /// <summary>Records the cancel and cancels every running unit of the job.</summary>
    public void Cancel(Guid jobId)
    {
        var now = time.GetUtcNow();
        List<CancellationTokenSource>? sources;
        lock (_gate)
        {
            _canceled[jobId] = now;
            _running.Remove(jobId, out sources);
            foreach (var id in _canceled.Where(c => now - c.Value > Retention).Select(c => c.Key).ToList())
            {
                _canceled.Remove(id);
            }
        }

        // Outside the lock: cancellation callbacks run synchronously and reach into the engine.
        foreach (var source in sources ?? [])
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
            if (_running.TryGetValue(jobId, out var sources) && sources.Remove(source) && sources.Count == 0)
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
}
