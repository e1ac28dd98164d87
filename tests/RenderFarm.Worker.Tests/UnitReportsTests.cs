using RenderFarm.Contracts;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// What goes on the wire for a unit's starts and images in each report mode (<see cref="WorkerOptions.UnitReports"/>):
/// the coordinator pays per message, so per unit must really mean one start message and gathered images, and every
/// image must still be stored before it is reported.
/// </summary>
public sealed class UnitReportsTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Per_unit_sends_every_start_of_a_unit_in_one_message_and_its_images_together_after_they_are_stored()
    {
        await using var worker = await WorkerHarness.StartAsync(o =>
        {
            o.Renderer = ItemRendererKind.Null;
            o.UnitReports = UnitReportMode.PerUnit;
            // Longer than the whole unit: its images can only leave at the unit's end, all in one message.
            o.ReportWindow = TimeSpan.FromMinutes(5);
        });
        var unit = TestItems.Unit(TestItems.Item(seed: 1), TestItems.Item(seed: 2), TestItems.Item(seed: 3), TestItems.Item(seed: 4));

        await worker.SendAsync(unit);
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 4, Patience, "four images reported");

        var starts = worker.Published.Sent<ItemsStarted>().ShouldHaveSingleItem();
        starts.Items.Select(s => (s.ItemId, s.Attempt)).ShouldBe(unit.Items.Select(i => (i.ItemId, i.Attempt)));
        starts.Items.ShouldAllBe(s => s.JobId == unit.JobId && s.WorkerId == worker.Slots.Slots[0].WorkerId);
        worker.Published.Sent<ItemStarted>().ShouldBeEmpty("per unit, no start goes alone");

        var images = worker.Published.Sent<ItemsRendered>().ShouldHaveSingleItem();
        images.Items.Select(r => r.ItemId).ShouldBe(unit.Items.Select(i => i.ItemId), ignoreOrder: true);
        worker.Published.Sent<ItemRendered>().ShouldBeEmpty("per unit, no image goes alone");
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
    public async Task Per_unit_with_a_zero_window_sends_each_image_as_soon_as_it_is_stored()
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

        worker.Published.Sent<ItemsStarted>().ShouldHaveSingleItem().Items.Count.ShouldBe(3);
        var images = worker.Published.Sent<ItemsRendered>();
        images.Count.ShouldBe(3, "nothing is held with a zero window");
        images.ShouldAllBe(m => m.Items.Count == 1);
        images.SelectMany(m => m.Items).Select(r => r.ItemId).ShouldBe(unit.Items.Select(i => i.ItemId), ignoreOrder: true);
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
