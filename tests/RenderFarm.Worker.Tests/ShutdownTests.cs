using RenderFarm.Contracts;

namespace RenderFarm.Worker.Tests;

public sealed class ShutdownTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Stopping_finishes_the_running_item_and_heartbeats_draining_until_idle()
    {
        // The item is held at step 5 until a draining heartbeat has named it, however fast the render.
        var hold = new RenderHold(atStep: 5);
        await using var worker = await WorkerHarness.StartAsync(settings: new() { ["Worker:ShutdownGrace"] = "00:01:00" }, moreServices: hold.Register);
        var item = TestItems.Item(seed: 101, steps: 40);
        await worker.SendAsync(TestItems.Unit(item));
        await worker.Published.WaitUntilAsync(p => p.All<ItemProgressed>().Any(e => e.ItemId == item.ItemId), Patience, "the first step");

        var stopping = worker.StopAsync();
        await worker.Published.WaitUntilAsync(
            p => p.All<WorkerHeartbeat>().Any(h => h.State == WorkerState.Draining && h.CurrentItemIds.Contains(item.ItemId)), Patience, "a draining heartbeat naming the item");
        hold.Release();
        await stopping;

        worker.Published.All<ItemRendered>().ShouldHaveSingleItem().ItemId.ShouldBe(item.ItemId);
        var draining = worker.Published.All<WorkerHeartbeat>().Where(h => h.State == WorkerState.Draining).ToList();
        draining.ShouldContain(h => h.CurrentItemIds.Contains(item.ItemId), "leases must be renewed while the item finishes");
        draining[^1].CurrentItemIds.ShouldBeEmpty();
        worker.Published.All<WorkerHeartbeat>()[^1].State.ShouldBe(WorkerState.Draining);
    }

    [Fact]
    public async Task Past_the_grace_the_item_is_abandoned_without_a_completion_or_failure()
    {
        // Held at step 5 and never released: the item outlives the 1 s grace however fast the render.
        var hold = new RenderHold(atStep: 5);
        await using var worker = await WorkerHarness.StartAsync(settings: new() { ["Worker:ShutdownGrace"] = "00:00:01" }, moreServices: hold.Register);
        var item = TestItems.Item(seed: 102, steps: 40);
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
