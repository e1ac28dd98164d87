using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Messaging;
using RenderFarm.ModelGenerator;
using RenderFarm.Worker.Consumers;
using RenderFarm.Worker.Extensions;
using RenderFarm.Worker.Memory;

namespace RenderFarm.Worker.Tests;

/// <summary>How a memory budget is written, validated and what it means for the tiny model's shipped profile.</summary>
public sealed class MemoryBudgetSettingTests
{
    private const long MiB = 1L << 20;

    [Theory]
    [InlineData("6GiB", 6L << 30)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("1073741824", 1073741824L)]
    [InlineData(" 8GB ", 8_000_000_000L)]
    public void Sizes_are_fixed_budgets_whatever_is_free(string text, long bytes)
    {
        var setting = MemoryBudgetSetting.Parse(text);

        setting.Bytes.ShouldBe(bytes);
        setting.FractionOfFree.ShouldBeNull();
        setting.Resolve(freeBytes: 1).ShouldBe(bytes);
    }

    [Theory]
    [InlineData("50%", 0.5)]
    [InlineData("12.5%", 0.125)]
    [InlineData("100%", 1.0)]
    [InlineData("0.5", 0.5)]
    [InlineData(".25", 0.25)]
    public void Percentages_and_fractions_are_shares_of_the_free_memory(string text, double fraction)
    {
        var setting = MemoryBudgetSetting.Parse(text);

        setting.FractionOfFree.ShouldBe(fraction);
        setting.Bytes.ShouldBeNull();
        setting.Resolve(8L << 30).ShouldBe((long)(fraction * (8L << 30)));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("lots", "not a memory size")]
    [InlineData("6XB", "not a memory size")]
    [InlineData("-1GiB", "not a memory size")]
    [InlineData("0", "must be positive")]
    [InlineData("0%", "above 0%")]
    [InlineData("150%", "at most 100%")]
    [InlineData("1.5", "neither a fraction")]
    public void Bad_values_say_what_is_wrong(string text, string reason)
    {
        MemoryBudgetSetting.TryParse(text, out var setting, out var error).ShouldBeFalse();

        setting.ShouldBeNull();
        error.ShouldContain(reason);
        Should.Throw<FormatException>(() => MemoryBudgetSetting.Parse(text)).Message.ShouldBe(error);
    }

    [Fact]
    public void A_bad_budget_fails_start_naming_the_setting_and_the_switch()
    {
        var error = Should.Throw<OptionsValidationException>(() => Resolve(new() { ["Worker:MemoryBudget"] = "lots" }));

        error.Message.ShouldContain("Worker:MemoryBudget");
        error.Message.ShouldContain("--memory-budget");
        error.Message.ShouldContain("'lots'");
    }

    [Fact]
    public void A_budget_given_both_ways_is_refused()
    {
        var error = Should.Throw<OptionsValidationException>(() =>
            Resolve(new() { ["Worker:MemoryBudget"] = "6GiB", ["Worker:MemoryBudgetBytes"] = "1000" }));

        error.Message.ShouldContain("Worker:MemoryBudgetBytes are both set");
    }

    [Fact]
    public void The_worker_host_switches_map_onto_the_worker_section()
    {
        var configuration = new ConfigurationBuilder()
            .AddCommandLine(["--memory-budget", "6GiB", "--slots", "2", "--id", "gpu-0", "--pool", "big"], WorkerExtensions.CommandLineSwitches())
            .Build();
        var options = configuration.GetSection(WorkerOptions.SectionName).Get<WorkerOptions>()!;

        (options.MemoryBudget, options.Slots, options.Id, options.Pool).ShouldBe(("6GiB", 2, "gpu-0", "big"));
        options.BudgetSetting()!.Bytes.ShouldBe(6L << 30);
    }

    [Fact]
    public void The_bytes_setting_still_works()
    {
        var options = Resolve(new() { ["Worker:MemoryBudgetBytes"] = "1000" });

        options.BudgetSetting()!.Bytes.ShouldBe(1000);
    }

    [Fact]
    public void A_large_budget_holds_512_resident_and_larger_images_with_other_strategies()
    {
        var capacity = WorkerMemory.Compute(TinyPlanner(), 8L << 30, deviceTotalBytes: 16L << 30);

        capacity.Strategy.ShouldBe(MemoryStrategyNames.Resident);
        capacity.ResidentMaxPixels.ShouldBeGreaterThanOrEqualTo(512L * 512);
        capacity.MaxPixels.ShouldBeGreaterThan(capacity.ResidentMaxPixels);
    }

    [Fact]
    public void A_small_budget_holds_512_only_by_tiling()
    {
        var capacity = WorkerMemory.Compute(TinyPlanner(), 90 * MiB, deviceTotalBytes: 16L << 30);

        capacity.Strategy.ShouldBe("sequential+tiled-vae+latent-tiling");
        capacity.ResidentMaxPixels.ShouldBeLessThan(512L * 512);
        capacity.MaxPixels.ShouldBeGreaterThanOrEqualTo(512L * 512);
    }

    [Fact]
    public void Without_a_budget_everything_runs_resident_so_only_the_resident_limit_of_the_device_counts()
    {
        var capacity = WorkerMemory.Compute(TinyPlanner(), budgetBytes: null, deviceTotalBytes: 1L << 30);

        capacity.Strategy.ShouldBe(MemoryStrategyNames.Resident);
        capacity.MaxPixels.ShouldBe(capacity.ResidentMaxPixels);
        capacity.MaxPixels.ShouldBeGreaterThan(0);
        capacity.MaxPixels.ShouldBeLessThan(WorkerMemory.Compute(TinyPlanner(), budgetBytes: null, deviceTotalBytes: 8L << 30).MaxPixels);
    }

    [Fact]
    public void A_budget_below_the_runtime_and_the_unet_holds_nothing()
    {
        var capacity = WorkerMemory.Compute(TinyPlanner(), 40 * MiB, deviceTotalBytes: 16L << 30);

        capacity.ShouldBe(new MemoryCapacity(WorkerMemory.NoStrategy, 0, 0));
    }

    [Fact]
    public void The_tiny_model_comes_with_its_measured_profile_and_a_calibrated_one_is_kept()
    {
        using var folder = new TempFolder();
        var tiny = folder.Path;
        TestModels.WriteTinyMemoryProfile(tiny, overwrite: false);

        var profile = MemoryProfile.TryLoad(tiny).ShouldNotBeNull();
        profile.Kind.ShouldBe(MemoryProfile.Measured);
        profile.Model.ShouldBe(WorkerOptions.TinyModelName);

        var calibrated = profile with { BaseBytes = 1234 };
        calibrated.Save(tiny);
        TestModels.WriteTinyMemoryProfile(tiny, overwrite: false);
        MemoryProfile.TryLoad(tiny)!.BaseBytes.ShouldBe(1234);
    }

    [Fact]
    public void A_planned_refusal_fails_for_good_and_an_arena_refusal_mid_run_is_retried()
    {
        var planned = new MemoryBudgetExceededException(100 * MiB, 90 * MiB, 0, "nothing fits");
        var arena = new MemoryBudgetExceededException(0, 90 * MiB, 256, "the capped arena refused", new InvalidOperationException("BFCArena"));

        RenderWorkUnitConsumer.Classify(planned).ShouldBe((planned.Message, false));
        RenderWorkUnitConsumer.Classify(arena).Retryable.ShouldBeTrue();
    }

    private static MemoryPlanner TinyPlanner()
    {
        var tiny = TestModels.EnsureTiny(Path.Combine(SharedModels.Root, WorkerOptions.TinyModelName), memoryProfile: true);
        return new MemoryPlanner(MemoryProfile.TryLoad(tiny)!);
    }

    private static WorkerOptions Resolve(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var provider = new ServiceCollection().AddRenderFarmWorkerServices(configuration).BuildServiceProvider();
        return provider.GetRequiredService<IOptions<WorkerOptions>>().Value;
    }
}

/// <summary>
/// Workers with a budget plan every render with it and report what it holds. One class, so its tests run one after
/// another: capped sessions share one process-wide ONNX Runtime arena whose limit each budget replaces.
/// </summary>
public sealed class WorkerMemoryBudgetTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_worker_with_a_large_budget_reports_it_resident_with_its_capacity_models_and_own_queue()
    {
        await using var worker = await WorkerHarness.StartAsync(settings: new() { ["Worker:MemoryBudget"] = "8GiB" });
        var id = worker.Slots.Slots[0].WorkerId;

        var beat = await CapacityKnownAsync(worker);

        beat.MemoryBudgetBytes.ShouldBe(8L << 30);
        beat.Strategy.ShouldBe(MemoryStrategyNames.Resident);
        beat.ResidentMaxPixels.ShouldBeGreaterThanOrEqualTo(512L * 512);
        beat.MaxPixels.ShouldBeGreaterThanOrEqualTo(beat.ResidentMaxPixels);
        beat.InstalledModels.ShouldNotBeNull().ShouldContain(WorkerOptions.TinyModelName);
        beat.RenderQueue.ShouldBe(QueueNames.WorkerQueue(id));
    }

    [Fact]
    public async Task A_small_budget_renders_with_the_strategy_that_fits_reports_it_and_refuses_what_cannot_fit()
    {
        await using var worker = await WorkerHarness.StartAsync(settings: new() { ["Worker:MemoryBudget"] = "90MiB" });

        // Before any item: what a 512² render would take, which this budget holds only by tiling.
        var before = await CapacityKnownAsync(worker);
        before.MemoryBudgetBytes.ShouldBe(90L << 20);
        before.Strategy.ShouldBe("sequential+tiled-vae+latent-tiling");
        before.ResidentMaxPixels.ShouldBeLessThan(before.MaxPixels);

        // 64² fits only with one session loaded at a time (resident needs ~97 MiB).
        var small = TestItems.Item(seed: 31);
        await worker.SendAsync(TestItems.Unit(small));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Any(r => r.ItemId == small.ItemId) || p.All<ItemFailed>().Any(), Patience, "the 64² render");
        worker.Published.All<ItemFailed>().ShouldBeEmpty();
        await worker.Published.WaitUntilAsync(p => p.All<WorkerHeartbeat>().Any(h => h.Strategy == "sequential"), Patience, "a heartbeat with the item's strategy");

        // 1024² needs more than 90 MiB with every strategy: refused before it runs, for good, with the planner's reason.
        var large = TestItems.Item(seed: 32, steps: 1) with { Width = 1024, Height = 1024 };
        await worker.SendAsync(TestItems.Unit(large));
        await worker.Published.WaitUntilAsync(p => p.All<ItemFailed>().Any(f => f.ItemId == large.ItemId), Patience, "the 1024² refusal");

        var failed = worker.Published.All<ItemFailed>().Single(f => f.ItemId == large.ItemId);
        failed.Retryable.ShouldBeFalse();
        failed.Reason.ShouldContain("memory budget is 90.0 MiB");
        failed.Reason.ShouldContain("nothing fits");
        worker.Published.All<ItemRendered>().ShouldNotContain(r => r.ItemId == large.ItemId);
    }

    [Fact]
    public async Task A_unit_sent_to_the_worker_s_own_queue_is_rendered()
    {
        await using var worker = await WorkerHarness.StartAsync();
        var item = TestItems.Item(seed: 41);
        var queue = QueueNames.WorkerQueue(worker.Slots.Slots[0].WorkerId);

        var endpoint = await worker.Bus.GetSendEndpoint(QueueNames.WorkerQueueAddress(queue));
        await endpoint.Send(TestItems.Unit(item));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Any(r => r.ItemId == item.ItemId), Patience, "the unit from the worker's own queue");

        worker.Published.All<ItemStarted>().Single(s => s.ItemId == item.ItemId).WorkerId.ShouldBe(worker.Slots.Slots[0].WorkerId);
    }

    /// <summary>The first heartbeat after warm-up wrote the tiny model's profile, so the capacity is known.</summary>
    private static async Task<WorkerHeartbeat> CapacityKnownAsync(WorkerHarness worker)
    {
        await worker.Published.WaitUntilAsync(p => p.All<WorkerHeartbeat>().Any(h => h.MaxPixels > 0), Patience, "a heartbeat with the budget's capacity");
        return worker.Published.All<WorkerHeartbeat>().First(h => h.MaxPixels > 0);
    }
}
