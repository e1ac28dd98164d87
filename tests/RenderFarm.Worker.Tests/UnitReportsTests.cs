using RenderFarm.Contracts;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// What goes on the wire for a unit's starts and images in each report mode (<see cref="WorkerOptions.UnitReports"/>):
/// the coordinator pays per message, so per unit must really gather starts and images, an item must still count as
/// started only when its batch begins, and every image must be stored before it is reported.
/// </summary>
public sealed class UnitReportsTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Per_unit_sends_the_first_start_at_once_and_gathers_the_rest_with_the_images_after_they_are_stored()
    {
        await using var worker = await WorkerHarness.StartAsync(o =>
        {
            o.Renderer = ItemRendererKind.Null;
            o.UnitReports = UnitReportMode.PerUnit;
            // Longer than the whole unit: what is held can only leave at the unit's end, together.
            o.ReportWindow = TimeSpan.FromMinutes(5);
        });
        var unit = TestItems.Unit(TestItems.Item(seed: 1), TestItems.Item(seed: 2), TestItems.Item(seed: 3), TestItems.Item(seed: 4));

        await worker.SendAsync(unit);
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 4, Patience, "four images reported");

        // One item per render batch here: the first batch's start goes when it begins (the unit's speed is not known
        // yet), the fast batches after it hold theirs with the images, starts first.
        var starts = worker.Published.Sent<ItemsStarted>();
        starts.Select(m => m.Items.Select(s => s.ItemId).ToList()).ShouldBe(
            [[unit.Items[0].ItemId], [.. unit.Items.Skip(1).Select(i => i.ItemId)]]);
        starts.SelectMany(m => m.Items).ShouldAllBe(s => s.JobId == unit.JobId && s.WorkerId == worker.Slots.Slots[0].WorkerId && s.Attempt == 1);
        worker.Published.Sent<ItemStarted>().ShouldBeEmpty("per unit, no start goes alone");

        var images = worker.Published.Sent<ItemsRendered>().ShouldHaveSingleItem();
        images.Items.Select(r => r.ItemId).ShouldBe(unit.Items.Select(i => i.ItemId), ignoreOrder: true);
        worker.Published.Sent<ItemRendered>().ShouldBeEmpty("per unit, no image goes alone");
        var order = worker.Published.SentInOrder();
        order.IndexOf(starts[1]).ShouldBeLessThan(order.IndexOf(images), "held starts go before the images they travel with");
        foreach (var item in unit.Items)
        {
            var image = images.Items.Single(r => r.ItemId == item.ItemId);
            image.ArtifactKey.ShouldBe(item.OutputKey);
            image.Attempt.ShouldBe(item.Attempt);
            image.Sha256.ShouldNotBeNull();
            worker.Published.ArtifactExistedWhenReported(item.ItemId).ShouldBeTrue("an image was reported before it was stored");
        }

        worker.Published.All<ItemFailed>().ShouldBeEmpty();
    }

    [Fact]
    public async Task Per_unit_with_a_zero_window_sends_each_start_when_its_batch_begins_and_each_image_when_it_is_stored()
    {
        await using var worker = await WorkerHarness.StartAsync(o =>
        {
            o.Renderer = ItemRendererKind.Null;
            o.UnitReports = UnitReportMode.PerUnit;
            o.ReportWindow = TimeSpan.Zero;
        });
        var unit = TestItems.Unit(TestItems.Item(seed: 5), TestItems.Item(seed: 6), TestItems.Item(seed: 7));

        await worker.SendAsync(unit);
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 3, Patience, "three images reported");

        var order = worker.Published.SentInOrder();
        var starts = worker.Published.Sent<ItemsStarted>();
        var images = worker.Published.Sent<ItemsRendered>();
        starts.Count.ShouldBe(3, "nothing is held with a zero window");
        images.Count.ShouldBe(3, "nothing is held with a zero window");
        starts.ShouldAllBe(m => m.Items.Count == 1);
        images.ShouldAllBe(m => m.Items.Count == 1);
        for (var i = 0; i < 3; i++)
        {
            starts[i].Items[0].ItemId.ShouldBe(unit.Items[i].ItemId);
            order.IndexOf(starts[i]).ShouldBeLessThan(order.IndexOf(images.Single(m => m.Items[0].ItemId == unit.Items[i].ItemId)));
            if (i > 0)
            {
                // An item starts only once the one before it is done: a start is sent when its batch begins.
                order.IndexOf(starts[i]).ShouldBeGreaterThan(order.IndexOf(images.Single(m => m.Items[0].ItemId == unit.Items[i - 1].ItemId)));
            }
        }
    }

    [Fact]
    public async Task Per_item_sends_one_start_and_one_image_message_per_item_as_before()
    {
        await using var worker = await WorkerHarness.StartAsync(o =>
        {
            o.Renderer = ItemRendererKind.Null;
            o.UnitReports = UnitReportMode.PerItem;
        });
        var unit = TestItems.Unit(TestItems.Item(seed: 8), TestItems.Item(seed: 9), TestItems.Item(seed: 10));

        await worker.SendAsync(unit);
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 3, Patience, "three images reported");

        worker.Published.Sent<ItemStarted>().Select(s => s.ItemId).ShouldBe(unit.Items.Select(i => i.ItemId), ignoreOrder: true);
        worker.Published.Sent<ItemRendered>().Select(r => r.ItemId).ShouldBe(unit.Items.Select(i => i.ItemId), ignoreOrder: true);
        worker.Published.Sent<ItemsStarted>().ShouldBeEmpty();
        worker.Published.Sent<ItemsRendered>().ShouldBeEmpty();
        unit.Items.ShouldAllBe(i => worker.Published.ArtifactExistedWhenReported(i.ItemId));
    }
}
