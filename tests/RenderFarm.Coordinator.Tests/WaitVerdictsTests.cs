using RenderFarm.Contracts;
using RenderFarm.Coordinator.Placement;

namespace RenderFarm.Coordinator.Tests;

/// <summary>"Why waiting" per worker, from the placement rules alone.</summary>
public sealed class WaitVerdictsTests
{
    private const string Model = "tiny-sd";
    private static readonly UnitShape Unit = new(Model, 512, 512);

    private static WorkerCapacity Worker(long maxSide = 0, string[]? loaded = null, string[]? installed = null, int running = 0, int assigned = 0) => new(
        "w", 6L << 30, maxSide * maxSide, 0, loaded ?? [Model], installed ?? [], "renderfarm-render-w", running, assigned);

    [Fact]
    public void An_idle_worker_that_fits_and_has_the_model_can_take_it_with_no_reason()
    {
        var (canTake, reasons, explanation) = WaitVerdicts.Judge(Unit, Worker(maxSide: 1024), WorkerState.Idle, live: true);

        canTake.ShouldBeTrue();
        reasons.ShouldBeEmpty();
        explanation.ShouldNotBeNullOrWhiteSpace();
    }

    [Theory]
    [InlineData(false, WorkerState.Idle, WaitReasons.Gone)]
    [InlineData(true, WorkerState.Draining, WaitReasons.Draining)]
    [InlineData(true, WorkerState.Starting, WaitReasons.Starting)]
    public void A_worker_not_taking_work_gives_that_one_reason(bool live, WorkerState state, string reason)
    {
        var (canTake, reasons, _) = WaitVerdicts.Judge(Unit, Worker(maxSide: 1024, running: 1), state, live);

        canTake.ShouldBeFalse();
        reasons.ShouldBe([reason]);
    }

    [Fact]
    public void Too_small_busy_and_model_missing_are_all_named_and_only_the_first_two_refuse()
    {
        var small = WaitVerdicts.Judge(Unit, Worker(maxSide: 256, running: 2, assigned: 1, loaded: [], installed: []), WorkerState.Busy, live: true);
        var fetching = WaitVerdicts.Judge(Unit, Worker(loaded: [], installed: []), WorkerState.Idle, live: true);
        var installed = WaitVerdicts.Judge(Unit, Worker(loaded: [], installed: [Model]), WorkerState.Idle, live: true);

        small.CanTake.ShouldBeFalse();
        small.Reasons.ShouldBe([WaitReasons.TooSmall, WaitReasons.Busy, WaitReasons.ModelMissing]);
        small.Explanation.ShouldContain("512×512");
        small.Explanation.ShouldContain("2 item(s), 1 more placed on it");
        fetching.CanTake.ShouldBeTrue();
        fetching.Reasons.ShouldBe([WaitReasons.ModelMissing]);
        installed.Reasons.ShouldBeEmpty();
    }
}
