namespace RenderFarm.Domain.Policies;

/// <summary>
/// A running item is a lease held by its worker and renewed by the worker's heartbeats. The lease expires once
/// the worker's last heartbeat plus <see cref="LeaseDuration"/> has passed; the rescuer then returns the item.
/// Pure functions over timestamps the caller supplies (the coordinator's clock, never the worker's).
/// </summary>
public sealed record LeasePolicy
{
    /// <summary>Workers heartbeat this often.</summary>
    public static readonly TimeSpan DefaultHeartbeatInterval = TimeSpan.FromSeconds(5);

    /// <summary>Six missed heartbeats: long enough to ride out a GC pause or a broker hiccup, short enough that a dead worker's items return within a minute.</summary>
    public static readonly TimeSpan DefaultLeaseDuration = TimeSpan.FromSeconds(30);

    public static LeasePolicy Default { get; } = new();

    public TimeSpan HeartbeatInterval { get; init; } = DefaultHeartbeatInterval;

    public TimeSpan LeaseDuration { get; init; } = DefaultLeaseDuration;

    /// <summary>Problems with the settings, empty when valid; hosts call this from options validation.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (HeartbeatInterval <= TimeSpan.Zero)
        {
            errors.Add($"{nameof(HeartbeatInterval)} must be positive.");
        }

        // With a lease no longer than two intervals one late heartbeat would already cost the item.
        if (LeaseDuration < 2 * HeartbeatInterval)
        {
            errors.Add($"{nameof(LeaseDuration)} must be at least twice {nameof(HeartbeatInterval)}, so one late heartbeat does not lose a lease.");
        }

        return errors;
    }

    /// <summary>The last instant the lease is still held.</summary>
    public DateTimeOffset ExpiresAt(DateTimeOffset lastHeartbeat) => lastHeartbeat + LeaseDuration;

    /// <summary>
    /// True once <paramref name="now"/> is past <see cref="ExpiresAt"/>; at exactly that instant the lease is
    /// still held, so a heartbeat arriving on the boundary wins over the rescuer.
    /// </summary>
    public bool IsExpired(DateTimeOffset lastHeartbeat, DateTimeOffset now) => now > ExpiresAt(lastHeartbeat);

    /// <summary>
    /// The rescuer's query bound: a lease is expired at <paramref name="now"/> exactly when its last heartbeat is
    /// strictly before this instant (the same rule as <see cref="IsExpired"/>, in the form a WHERE clause needs).
    /// </summary>
    public DateTimeOffset ExpiredIfHeartbeatBefore(DateTimeOffset now) => now - LeaseDuration;
}
