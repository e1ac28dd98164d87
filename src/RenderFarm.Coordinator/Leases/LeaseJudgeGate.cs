namespace RenderFarm.Coordinator.Leases;

/// <summary>
/// Decides when the lease rescuer may judge leases: only once heartbeats and completions have had
/// <see cref="Grace"/> to reach the database since the last sign that they could not. Those signs: the coordinator
/// just started, its own broker connection is unhealthy, its last pass failed, or a consumer failed because the
/// database was unreachable. During such an outage no heartbeat renews anything, and judging the moment it ends
/// lapsed the items of workers that had been rendering all along, spending an attempt for a fault of the farm's own.
/// </summary>
internal sealed class LeaseJudgeGate(TimeSpan grace)
{
    private DateTimeOffset? _quietSince;

    public TimeSpan Grace { get; } = grace;

    /// <summary>The rescuer's own pass failed: start the quiet period again at the next healthy look.</summary>
    public void Disturbed() => _quietSince = null;

    /// <param name="now">Now.</param>
    /// <param name="busHealthy">Whether this coordinator's bus reports itself healthy.</param>
    /// <param name="lastConsumerOutage">When a consumer last failed on an unreachable database, if ever.</param>
    public bool MayJudge(DateTimeOffset now, bool busHealthy, DateTimeOffset? lastConsumerOutage)
    {
        if (!busHealthy)
        {
            _quietSince = null;
            return false;
        }

        _quietSince ??= now;
        var quietSince = lastConsumerOutage is { } failed && failed > _quietSince ? failed : _quietSince.Value;
        return now - quietSince >= Grace;
    }
}
