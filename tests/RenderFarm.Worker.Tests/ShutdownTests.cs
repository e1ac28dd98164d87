using RenderFarm.Contracts;

namespace RenderFarm.Worker.Tests;

public sealed class ShutdownTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Stopping_finishes_the_running_item_and_heartbeats_draining_until_idle()
    {
        await using var worker = await WorkerHarness.StartAsync(settings: new() { ["Worker:ShutdownGrace"] = "00:01:00" });
        // Long enough (about 4× a 600-step 64² item) that several 1 s heartbeats fall inside the drain even in Release;
        // with 600 steps at 64² the item could finish within one beat window and the test raced.
        var item = TestItems.Item(seed: 101, steps: 1000) with { Width = 128, Height = 128 };
        await worker.SendAsync(TestItems.Unit(item));
        await worker.Published.WaitUntilAsync(p => p.All<ItemProgressed>().Any(e => e.ItemId == item.ItemId), Patience, "the first step");

        await worker.StopAsync();

        worker.Published.All<ItemRendered>().ShouldHaveSingleItem().ItemId.ShouldBe(item.ItemId);
        var draining = worker.Published.All<WorkerHeartbeat>().Where(h => h.State == WorkerState.Draining).ToList();
        draining.ShouldContain(h => h.CurrentItemIds.Contains(item.ItemId), "leases must be renewed while the item finishes");
        draining[^1].CurrentItemIds.ShouldBeEmpty();
        worker.Published.All<WorkerHeartbeat>()[^1].State.ShouldBe(WorkerState.Draining);
    }

    [Fact]
    public async Task Past_the_grace_the_item_is_abandoned_without_a_completion_or_failure()
    {
        await using var worker = await WorkerHarness.StartAsync(settings: new() { ["Worker:ShutdownGrace"] = "00:00:01" });
        var item = TestItems.Item(seed: 102, steps: 900) with { Width = 128, Height = 128 }; // outlives the 1 s grace, even in Release
        await worker.SendAsync(TestItems.Unit(item));
        await worker.Published.WaitUntilAsync(p => p.All<ItemProgressed>().Any(e => e.ItemId == item.ItemId), Patience, "the first step");

        var stopping = DateTimeOffset.UtcNow;
        await worker.StopAsync();

        (DateTimeOffset.UtcNow - stopping).ShouldBeLessThan(TimeSpan.FromSeconds(20));
        worker.Published.All<ItemRendered>().ShouldBeEmpty();
        worker.Published.All<ItemFailed>().ShouldBeEmpty();
        worker.Slots.Slots[0].CurrentItemIds.ShouldBeEmpty();
        worker.Published.All<WorkerHeartbeat>()[^1].State.ShouldBe(WorkerState.Draining);
    }
}
