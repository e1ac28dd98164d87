using RenderFarm.Domain.Policies;

namespace RenderFarm.Domain.Tests.Policies;

public class LeasePolicyTests
{
    private static readonly DateTimeOffset Heartbeat = new(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Lease_expires_30s_after_the_last_heartbeat_by_default() =>
        LeasePolicy.Default.ExpiresAt(Heartbeat).ShouldBe(Heartbeat.AddSeconds(30));

    [Fact]
    public void Lease_is_held_up_to_and_including_the_expiry_instant()
    {
        LeasePolicy.Default.IsExpired(Heartbeat, Heartbeat).ShouldBeFalse();
        LeasePolicy.Default.IsExpired(Heartbeat, Heartbeat.AddSeconds(29)).ShouldBeFalse();
        LeasePolicy.Default.IsExpired(Heartbeat, Heartbeat.AddSeconds(30)).ShouldBeFalse();
    }

    [Fact]
    public void Lease_is_expired_one_tick_after_expiry() =>
        LeasePolicy.Default.IsExpired(Heartbeat, Heartbeat.AddSeconds(30).AddTicks(1)).ShouldBeTrue();

    [Fact]
    public void A_newer_heartbeat_renews_the_lease()
    {
        var now = Heartbeat.AddSeconds(45);
        LeasePolicy.Default.IsExpired(Heartbeat, now).ShouldBeTrue();
        LeasePolicy.Default.IsExpired(Heartbeat.AddSeconds(20), now).ShouldBeFalse();
    }

    [Fact]
    public void Query_bound_agrees_with_IsExpired_at_the_boundary()
    {
        var policy = new LeasePolicy { LeaseDuration = TimeSpan.FromSeconds(12) };
        var now = Heartbeat.AddSeconds(100);
        var bound = policy.ExpiredIfHeartbeatBefore(now);

        policy.IsExpired(bound, now).ShouldBeFalse();
        policy.IsExpired(bound.AddTicks(-1), now).ShouldBeTrue();
    }

    [Fact]
    public void Lease_must_outlast_two_heartbeat_intervals()
    {
        LeasePolicy.Default.Validate().ShouldBeEmpty();
        new LeasePolicy { HeartbeatInterval = TimeSpan.FromSeconds(10), LeaseDuration = TimeSpan.FromSeconds(15) }
            .Validate().ShouldHaveSingleItem().ShouldContain("twice HeartbeatInterval");
        new LeasePolicy { HeartbeatInterval = TimeSpan.Zero }.Validate().ShouldContain(e => e.Contains("HeartbeatInterval must be positive"));
    }
}
