using RenderFarm.Worker.Outages;
using RenderFarm.Storage;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Models;

namespace RenderFarm.Worker.Tests;

public sealed class RenderWorkUnitTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_unit_of_three_items_is_rendered_uploaded_then_reported_per_item()
    {
        await using var worker = await WorkerHarness.StartAsync();
        var unit = TestItems.Unit(TestItems.Item(seed: 11), TestItems.Item(seed: 12), TestItems.Item(seed: 13));

        await worker.SendAsync(unit);
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 3, Patience, "three ItemRendered");

        var started = worker.Published.All<ItemStarted>();
        started.Select(s => s.ItemId).ShouldBe(unit.Items.Select(i => i.ItemId), ignoreOrder: true);
        started.ShouldAllBe(s => s.JobId == unit.JobId && s.Attempt == 1 && s.WorkerId == worker.Slots.Slots[0].WorkerId);
        worker.Published.All<ItemFailed>().ShouldBeEmpty();

        // The model's content hash travels with every image, as the folder's own files give it (memory profile aside).
        var modelHash = RenderFarm.Storage.Models.ModelContentHash.OfFolder(Path.Combine(SharedModels.Root, WorkerOptions.TinyModelName));
        foreach (var item in unit.Items)
        {
            var rendered = worker.Published.All<ItemRendered>().Single(r => r.ItemId == item.ItemId);
            rendered.ArtifactKey.ShouldBe(item.OutputKey);
            rendered.ModelHash.ShouldBe(modelHash);
            rendered.JobId.ShouldBe(unit.JobId);
            worker.Published.ArtifactExistedWhenReported(item.ItemId).ShouldBeTrue("ItemRendered went out before the upload finished");

            await using var stream = await worker.Store.OpenReadAsync(item.OutputKey, CancellationToken.None);
            using var png = new MemoryStream();
            await stream.CopyToAsync(png);
            var decoded = PngCodec.Decode(png.ToArray());
            (decoded.Width, decoded.Height).ShouldBe((64, 64));
            var parameters = PngCodec.ReadTextChunks(png.ToArray())[PngCodec.ParametersKeyword];
            parameters.ShouldContain(item.Prompt);
            parameters.ShouldContain($"Seed: {item.Seed}");
        }

        // Progress: bounded by the steps, and the last step of every item is reported before its completion.
        var progress = worker.Published.All<ItemProgressed>();
        foreach (var item in unit.Items)
        {
            var mine = progress.Where(p => p.ItemId == item.ItemId).ToList();
            mine.Count.ShouldBeInRange(1, item.Steps);
            mine.ShouldContain(p => p.Step == item.Steps && p.TotalSteps == item.Steps);
        }
    }

    [Fact]
    public async Task Progress_of_a_long_render_is_rate_limited()
    {
        await using var worker = await WorkerHarness.StartAsync(o => o.ProgressEventsPerSecond = 2);
        var item = TestItems.Item(seed: 5, steps: 150);

        var began = DateTimeOffset.UtcNow;
        await worker.SendAsync(TestItems.Unit(item));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 1, Patience, "the long render");
        var seconds = (DateTimeOffset.UtcNow - began).TotalSeconds;

        var events = worker.Published.All<ItemProgressed>().Where(p => p.ItemId == item.ItemId).ToList();
        events.Count.ShouldBeLessThanOrEqualTo((int)Math.Ceiling(seconds * 2) + 2, $"{events.Count} events in {seconds:F1} s");
        events[0].Step.ShouldBe(1);
        events[^1].Step.ShouldBe(150);
    }

    [Fact]
    public async Task An_item_for_an_unknown_model_fails_for_good_while_the_others_render()
    {
        await using var worker = await WorkerHarness.StartAsync();
        var good1 = TestItems.Item(seed: 21);
        var bad = TestItems.Item(seed: 22, model: "no-such-model");
        var good2 = TestItems.Item(seed: 23);
        var unit = TestItems.Unit(good1, bad, good2);

        await worker.SendAsync(unit);
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 2 && p.All<ItemFailed>().Count == 1, Patience, "two rendered and one failed");

        var failed = worker.Published.All<ItemFailed>().Single();
        failed.ItemId.ShouldBe(bad.ItemId);
        failed.Retryable.ShouldBeFalse();
        failed.Reason.ShouldContain("no-such-model");
        worker.Published.All<ItemRendered>().Select(r => r.ItemId).ShouldBe([good1.ItemId, good2.ItemId], ignoreOrder: true);
        (await worker.Store.ExistsAsync(bad.OutputKey, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task Invalid_settings_fail_the_item_for_good()
    {
        await using var worker = await WorkerHarness.StartAsync();
        var bad = TestItems.Item(seed: 31) with { Sampler = "no_such_sampler" };

        await worker.SendAsync(TestItems.Unit(bad));
        await worker.Published.WaitUntilAsync(p => p.All<ItemFailed>().Count == 1, Patience, "ItemFailed");

        var failed = worker.Published.All<ItemFailed>().Single();
        failed.Retryable.ShouldBeFalse();
        failed.Reason.ShouldContain("no_such_sampler");
    }

    [Theory]
    [InlineData(UnitReportMode.PerItem)]
    [InlineData(UnitReportMode.PerUnit)]
    public async Task Job_canceled_stops_the_running_item_between_steps_and_publishes_nothing_more_for_it(UnitReportMode mode)
    {
        var hold = new RenderHold(atStep: 5);
        await using var worker = await WorkerHarness.StartAsync(o => o.UnitReports = mode, moreServices: hold.Register);
        var slow = TestItems.Item(seed: 41, steps: 900); // held at step 5: still running when the cancel lands
        var unit = TestItems.Unit(slow, TestItems.Item(seed: 42));

        await worker.SendAsync(unit);
        await worker.Published.WaitUntilAsync(p => p.All<ItemProgressed>().Any(e => e.ItemId == slow.ItemId), Patience, "the slow item's first step");
        var canceledAt = DateTimeOffset.UtcNow;
        await worker.Bus.Publish(new JobCanceled(unit.JobId, canceledAt, "test"));

        // The slot lets go of the item within a few steps, long before 900 steps could finish.
        var slot = worker.Slots.Slots[0];
        await Poll.UntilAsync(() => slot.CurrentItemIds.Count == 0, TimeSpan.FromSeconds(15), "the slot to release the canceled item");
        var lastStep = worker.Published.All<ItemProgressed>().Where(e => e.ItemId == slow.ItemId).Max(e => e.Step);
        lastStep.ShouldBeLessThanOrEqualTo(hold.AtStep + 1, "the render went on after the cancel");

        await Task.Delay(TimeSpan.FromSeconds(1));
        worker.Published.All<ItemRendered>().ShouldBeEmpty();
        worker.Published.All<ItemFailed>().ShouldBeEmpty();
        // In either report mode an item is reported started when its batch begins (per unit, in ItemsStarted).
        worker.Published.All<ItemStarted>().Select(s => s.ItemId).ShouldBe([slow.ItemId], "the unit's second item must not start");
        (mode == UnitReportMode.PerUnit ? worker.Published.Sent<ItemStarted>() : worker.Published.Sent<ItemsStarted>().SelectMany(m => m.Items).ToList())
            .ShouldBeEmpty("each mode sends its own form");
    }

    [Fact]
    public async Task Units_of_a_job_canceled_earlier_are_acknowledged_without_rendering()
    {
        await using var worker = await WorkerHarness.StartAsync();
        var jobId = Guid.NewGuid();
        await worker.Bus.Publish(new JobCanceled(jobId, DateTimeOffset.UtcNow, null));
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        var marker = TestItems.Item(seed: 52);

        await worker.SendAsync(TestItems.Unit(jobId, TestItems.Item(seed: 51)));
        await worker.SendAsync(TestItems.Unit(marker));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Any(r => r.ItemId == marker.ItemId), Patience, "the next unit");

        worker.Published.All<ItemStarted>().ShouldAllBe(s => s.JobId != jobId);
    }

    [Fact]
    public async Task Heartbeats_report_device_providers_and_the_models_loaded_by_a_render()
    {
        await using var worker = await WorkerHarness.StartAsync(o => o.WarmUp = false);
        var workerId = worker.Slots.Slots[0].WorkerId;
        await worker.Published.WaitUntilAsync(p => p.All<WorkerHeartbeat>().Any(h => h.State == WorkerState.Idle), Patience, "an Idle heartbeat");
        worker.Published.All<WorkerHeartbeat>().First(h => h.State == WorkerState.Idle).LoadedModels.ShouldBeEmpty();

        await worker.SendAsync(TestItems.Unit(TestItems.Item(seed: 61)));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 1, Patience, "the render");
        var after = DateTimeOffset.UtcNow;
        await worker.Published.WaitUntilAsync(p => p.All<WorkerHeartbeat>().Any(h => h.Timestamp > after), TimeSpan.FromSeconds(10), "a heartbeat after the render");

        var beat = worker.Published.All<WorkerHeartbeat>().Last(h => h.Timestamp > after);
        beat.WorkerId.ShouldBe(workerId);
        beat.Host.ShouldBe(Environment.MachineName);
        beat.DeviceName.ShouldNotBeNullOrWhiteSpace();
        beat.MemoryTotalBytes.ShouldBeGreaterThan(0);
        beat.MemoryFreeBytes.ShouldBeInRange(1, beat.MemoryTotalBytes);
        beat.MemoryBudgetBytes.ShouldBe(beat.MemoryTotalBytes);
        beat.ExecutionProviders.ShouldContain(ExecutionProviders.Cpu);
        beat.LoadedModels.ShouldBe([TestItems.Model]);
        beat.CurrentItemIds.ShouldBeEmpty();
        beat.State.ShouldBe(WorkerState.Idle);
        beat.Strategy.ShouldBe("resident");
        beat.Pool.ShouldBe(PlacementProperties.DefaultPool);
    }

    [Fact]
    public async Task Heartbeats_say_since_when_the_store_cannot_be_reached_and_stop_once_it_answers()
    {
        await using var worker = await WorkerHarness.StartAsync();
        var outage = worker.Host.Services.GetRequiredService<StoreOutage>();
        var answers = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var upload = outage.ExecuteAsync(_ => answers.Task.IsCompleted
            ? ValueTask.CompletedTask
            : throw new ArtifactStoreException("connection refused", new HttpRequestException("refused")) { Unreachable = true }, CancellationToken.None);

        await worker.Published.WaitUntilAsync(p => p.All<WorkerHeartbeat>().Any(h => h.StoreUnreachableSince is not null), Patience, "a heartbeat naming the outage");
        var since = worker.Published.All<WorkerHeartbeat>().First(h => h.StoreUnreachableSince is not null).StoreUnreachableSince!.Value;
        since.ShouldBe(outage.UnreachableSince ?? since);

        answers.SetResult();
        await upload;
        var after = DateTimeOffset.UtcNow;
        await worker.Published.WaitUntilAsync(p => p.All<WorkerHeartbeat>().Any(h => h.Timestamp > after), Patience, "a heartbeat after the store answered");
        worker.Published.All<WorkerHeartbeat>().Last().StoreUnreachableSince.ShouldBeNull();
    }

    [Fact]
    public async Task A_busy_slot_heartbeats_its_current_item_so_the_lease_is_renewed()
    {
        // Heartbeats are periodic (1 s here): the item is held at step 5 so it outlives a beat however fast the render.
        var hold = new RenderHold(atStep: 5);
        await using var worker = await WorkerHarness.StartAsync(moreServices: hold.Register);
        var slow = TestItems.Item(seed: 71, steps: 1000);
        var unit = TestItems.Unit(slow);

        await worker.SendAsync(unit);
        await worker.Published.WaitUntilAsync(
            p => p.All<WorkerHeartbeat>().Any(h => h.State == WorkerState.Busy && h.CurrentItemIds.Contains(slow.ItemId)),
            Patience, "a Busy heartbeat naming the item");
        await worker.Bus.Publish(new JobCanceled(unit.JobId, DateTimeOffset.UtcNow, null));
    }

    [Fact]
    public async Task Every_slot_is_a_worker_with_its_own_id_heartbeat_and_renders()
    {
        await using var worker = await WorkerHarness.StartAsync(o => o.Slots = 2);
        var ids = worker.Slots.Slots.Select(s => s.WorkerId).ToList();
        ids.Distinct().Count().ShouldBe(2);

        await worker.Published.WaitUntilAsync(p => ids.All(id => p.All<WorkerHeartbeat>().Any(h => h.WorkerId == id && h.State == WorkerState.Idle)), Patience, "an Idle heartbeat from each slot");
        var warm = worker.Published.All<WorkerHeartbeat>().Where(h => h.State == WorkerState.Idle).ToList();
        warm.ShouldAllBe(h => h.LoadedModels.Contains(TestItems.Model));

        // Two slow units at once: both slots busy at the same time.
        var a = TestItems.Item(seed: 81, steps: 60);
        var b = TestItems.Item(seed: 82, steps: 60);
        await worker.SendAsync(TestItems.Unit(a));
        await worker.SendAsync(TestItems.Unit(b));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 2, Patience, "both renders");
        worker.Published.All<ItemRendered>().Select(r => r.WorkerId).ShouldBe(ids, ignoreOrder: true);
    }

    [Fact]
    public async Task The_null_renderer_completes_items_at_once_with_a_valid_png()
    {
        await using var worker = await WorkerHarness.StartAsync(o => o.Renderer = ItemRendererKind.Null);
        var items = Enumerable.Range(0, 5).Select(i => TestItems.Item(seed: 90 + i, model: "any-model-at-all")).ToArray();

        await worker.SendAsync(TestItems.Unit(items));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 5, TimeSpan.FromSeconds(30), "five ItemRendered");

        foreach (var item in items)
        {
            await using var stream = await worker.Store.OpenReadAsync(item.OutputKey, CancellationToken.None);
            using var png = new MemoryStream();
            await stream.CopyToAsync(png);
            PngCodec.Decode(png.ToArray()).Width.ShouldBe(1);
        }
    }
}

internal static class Poll
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (!condition())
        {
            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout} waiting for {what}.");
            }

            await Task.Delay(50);
        }
    }
}
