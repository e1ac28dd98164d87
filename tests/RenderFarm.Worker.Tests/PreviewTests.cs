using RenderFarm.Contracts;
using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Worker.Tests;

/// <summary>Previews of running items: real renders of the tiny model through the worker host, counted as published.</summary>
public sealed class PreviewTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task With_a_huge_interval_each_item_sends_exactly_one_small_jpeg_preview_at_its_first_step()
    {
        await using var worker = await WorkerHarness.StartAsync(o => o.PreviewInterval = TimeSpan.FromHours(1));
        var unit = TestItems.Unit(TestItems.Item(seed: 31, steps: 6), TestItems.Item(seed: 32, steps: 6));

        await worker.SendAsync(unit);
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 2, Patience, "two ItemRendered");

        var previews = worker.Published.All<ItemPreviewed>();
        foreach (var item in unit.Items)
        {
            var mine = previews.Where(p => p.ItemId == item.ItemId).ToList();
            mine.Count.ShouldBe(1);
            var preview = mine[0];
            (preview.JobId, preview.Attempt, preview.Index).ShouldBe((unit.JobId, item.Attempt, item.Index));
            (preview.Step, preview.TotalSteps).ShouldBe((1, 6));
            preview.ContentType.ShouldBe("image/jpeg");
            preview.Image.Length.ShouldBeLessThan(4096);
            var decoded = PngCodec.Decode(preview.Image);
            (decoded.Width, decoded.Height).ShouldBe((item.Width / 8, item.Height / 8));
            (preview.Width, preview.Height).ShouldBe((decoded.Width, decoded.Height));
        }
    }

    [Fact]
    public async Task Previews_off_sends_none_while_progress_still_goes_out()
    {
        await using var worker = await WorkerHarness.StartAsync(o => o.PreviewInterval = TimeSpan.Zero);
        var item = TestItems.Item(seed: 33, steps: 6);

        await worker.SendAsync(TestItems.Unit(item));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 1, Patience, "the render");

        worker.Published.All<ItemPreviewed>().ShouldBeEmpty();
        worker.Published.All<ItemProgressed>().ShouldContain(p => p.ItemId == item.ItemId && p.Step == 6);
    }

    [Fact]
    public async Task A_long_render_sends_previews_no_more_often_than_the_interval_and_none_at_the_last_step()
    {
        var interval = TimeSpan.FromMilliseconds(200);
        await using var worker = await WorkerHarness.StartAsync(o => o.PreviewInterval = interval);
        var item = TestItems.Item(seed: 34, steps: 150);

        var began = DateTimeOffset.UtcNow;
        await worker.SendAsync(TestItems.Unit(item));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 1, Patience, "the long render");
        var elapsed = DateTimeOffset.UtcNow - began;

        var previews = worker.Published.All<ItemPreviewed>().Where(p => p.ItemId == item.ItemId).OrderBy(p => p.Step).ToList();
        // The throttle leaves at least one interval between two previews, so the render's wall time bounds the count.
        previews.Count.ShouldBeLessThanOrEqualTo((int)(elapsed / interval) + 1, $"{previews.Count} previews in {elapsed.TotalSeconds:F1} s");
        previews.Count.ShouldBeLessThan(150);
        previews[0].Step.ShouldBe(1);
        previews.ShouldAllBe(p => p.Step < 150 && p.TotalSteps == 150);
        previews.Select(p => p.Step).ShouldBeUnique();
    }

    [Fact]
    public async Task Items_denoised_in_one_batch_each_get_a_preview_of_their_own_latent()
    {
        await using var worker = await WorkerHarness.StartAsync(o =>
        {
            o.MaxBatchSize = 2;
            o.PreviewInterval = TimeSpan.FromHours(1);
        });
        var a = TestItems.Item(seed: 35, steps: 4);
        var b = TestItems.Item(seed: 36, steps: 4);

        await worker.SendAsync(TestItems.Unit(a, b));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 2, Patience, "the batch");

        var previews = worker.Published.All<ItemPreviewed>();
        var previewA = previews.Single(p => p.ItemId == a.ItemId);
        var previewB = previews.Single(p => p.ItemId == b.ItemId);
        // Different seeds start from different noise, so the two latents (and their previews) differ.
        PngCodec.Decode(previewA.Image).Pixels.ShouldNotBe(PngCodec.Decode(previewB.Image).Pixels);
    }
}
