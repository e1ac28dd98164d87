using System.Net.Sockets;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using RenderFarm.Coordinator.Consumers;
using RenderFarm.Coordinator.Leases;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// When the lease rescuer may judge leases after an outage. The outage end to end (PostgreSQL stopped for 15 s, no
/// attempt spent) is <c>ServiceFaultTests</c> in the integration tests; these pin the rule it depends on.
/// </summary>
public sealed class LeaseJudgeGateTests
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(20);
    private static readonly DateTimeOffset Start = new(2026, 12, 3, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public void A_started_coordinator_judges_only_after_the_grace()
    {
        var gate = new LeaseJudgeGate(Grace);
        gate.MayJudge(Start, busHealthy: true, lastConsumerOutage: null).ShouldBeFalse();
        gate.MayJudge(Start + Grace - TimeSpan.FromSeconds(1), true, null).ShouldBeFalse();
        gate.MayJudge(Start + Grace, true, null).ShouldBeTrue();
    }

    [Fact]
    public void A_consumer_failing_on_the_database_after_the_rescuers_own_passes_recovered_postpones_judging()
    {
        var gate = new LeaseJudgeGate(Grace);
        gate.MayJudge(Start, true, null);
        gate.MayJudge(Start + Grace, true, null).ShouldBeTrue();

        // The database went away and came back; the rescuer's next pass works at once, but a consumer still fails
        // on a dead pooled connection 15 s later: heartbeats and images are still in the consumers' retries.
        var consumerFailed = Start + Grace + TimeSpan.FromSeconds(15);
        gate.MayJudge(consumerFailed + TimeSpan.FromSeconds(1), true, consumerFailed).ShouldBeFalse();
        gate.MayJudge(consumerFailed + Grace - TimeSpan.FromSeconds(1), true, consumerFailed).ShouldBeFalse();
        gate.MayJudge(consumerFailed + Grace, true, consumerFailed).ShouldBeTrue();
    }

    [Fact]
    public void A_failed_pass_or_an_unhealthy_bus_starts_the_quiet_period_again()
    {
        var gate = new LeaseJudgeGate(Grace);
        gate.MayJudge(Start, true, null);
        gate.MayJudge(Start + Grace, true, null).ShouldBeTrue();

        gate.Disturbed();
        var back = Start + Grace + TimeSpan.FromSeconds(5);
        gate.MayJudge(back, true, null).ShouldBeFalse();
        gate.MayJudge(back + Grace, true, null).ShouldBeTrue();

        var brokerLost = back + Grace + TimeSpan.FromSeconds(1);
        gate.MayJudge(brokerLost, busHealthy: false, null).ShouldBeFalse();
        gate.MayJudge(brokerLost + TimeSpan.FromSeconds(1), true, null).ShouldBeFalse();
        gate.MayJudge(brokerLost + TimeSpan.FromSeconds(1) + Grace, true, null).ShouldBeTrue();
    }

    [Fact]
    public async Task The_consumers_outage_retry_reports_a_database_failure_to_the_watch_and_other_failures_not()
    {
        var clock = new FixedClock(Start);
        var services = new ServiceCollection()
            .AddSingleton<TimeProvider>(clock)
            .AddSingleton<DatabaseOutageWatch>()
            .AddSingleton<FlakyConsumer.Outcomes>()
            .AddMassTransit(bus =>
            {
                bus.AddConsumer<FlakyConsumer>(DatabaseOutageRetry.Configure);
                bus.UsingInMemory((context, cfg) => cfg.ConfigureEndpoints(context));
            });
        await using var provider = services.BuildServiceProvider();
        var control = provider.GetRequiredService<IBusControl>();
        await control.StartAsync();
        try
        {
            var watch = provider.GetRequiredService<DatabaseOutageWatch>();
            var outcomes = provider.GetRequiredService<FlakyConsumer.Outcomes>();

            await control.Publish(new FlakyMessage(Unreachable: false));
            await outcomes.WaitAsync(1);
            watch.LastFailureAt.ShouldBeNull("a failure other than the database must not hold the rescuer back");

            await control.Publish(new FlakyMessage(Unreachable: true));
            await outcomes.WaitAsync(2);
            watch.LastFailureAt.ShouldBe(Start);
        }
        finally
        {
            await control.StopAsync();
        }
    }

    public sealed record FlakyMessage(bool Unreachable);

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    /// <summary>Fails its first try: with a refused connection or with a bad message, then succeeds.</summary>
    public sealed class FlakyConsumer(FlakyConsumer.Outcomes outcomes) : IConsumer<FlakyMessage>
    {
        public Task Consume(ConsumeContext<FlakyMessage> context)
        {
            var retry = context.GetRetryAttempt();
            if (retry == 0)
            {
                if (context.Message.Unreachable)
                {
                    throw new NpgsqlException("Failed to connect", new SocketException((int)SocketError.ConnectionRefused));
                }

                outcomes.Done();
                throw new ArgumentException("a message the ledger refuses");
            }

            outcomes.Done();
            return Task.CompletedTask;
        }

        public sealed class Outcomes
        {
            private int _done;

            public void Done() => Interlocked.Increment(ref _done);

            public async Task WaitAsync(int count)
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (Volatile.Read(ref _done) < count)
                {
                    DateTime.UtcNow.ShouldBeLessThan(deadline, $"waited for {count} outcomes");
                    await Task.Delay(20);
                }
            }
        }
    }
}
