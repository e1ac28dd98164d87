using Microsoft.Extensions.Time.Testing;
using RenderFarm.Coordinator.Hosting;

namespace RenderFarm.Coordinator.Tests;

/// <summary>The loop every periodic coordinator pass (retention, shard assembly, the metrics snapshot) runs on.</summary>
public sealed class PeriodicPassServiceTests
{
    [Fact]
    public async Task A_pass_runs_at_start_and_on_each_tick_and_a_failed_one_does_not_stop_the_next()
    {
        var clock = new FakeTimeProvider();
        using var service = new CountingService(clock, failOnPass: 2);

        await service.StartAsync(CancellationToken.None);
        await service.WaitForPassesAsync(1);
        clock.Advance(TimeSpan.FromSeconds(10));
        await service.WaitForPassesAsync(2);
        clock.Advance(TimeSpan.FromSeconds(10));
        await service.WaitForPassesAsync(3);

        service.Failures.ShouldBe(["pass 2"]);
        clock.Advance(TimeSpan.FromSeconds(9));
        await Task.Delay(100);
        service.Passes.ShouldBe(3, "no pass before the next tick");

        await service.StopAsync(CancellationToken.None);
        service.ExecuteTask.ShouldNotBeNull().IsCompletedSuccessfully.ShouldBeTrue("shutdown ends the loop without an error");
    }

    private sealed class CountingService(TimeProvider clock, int failOnPass) : PeriodicPassService(clock)
    {
        private int _passes;

        public int Passes => Volatile.Read(ref _passes);
        public List<string> Failures { get; } = [];

        protected override TimeSpan Interval => TimeSpan.FromSeconds(10);

        protected override Task PassAsync(CancellationToken cancellationToken)
        {
            var pass = Interlocked.Increment(ref _passes);
            return pass == failOnPass ? Task.FromException(new InvalidOperationException($"pass {pass}")) : Task.CompletedTask;
        }

        protected override void PassFailed(Exception exception) => Failures.Add(exception.Message);

        public async Task WaitForPassesAsync(int count)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (Passes < count)
            {
                await Task.Delay(10, timeout.Token);
            }
        }
    }
}
