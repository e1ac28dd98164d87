using RenderFarm.Contracts;
using RenderFarm.Coordinator.Placement;

namespace RenderFarm.Coordinator.Tests;

/// <summary>The placement rules alone: eligibility, preference order, shared versus direct, and waiting.</summary>
public sealed class PlacementPolicyTests
{
    private const string Model = "tiny-sd";
    private static readonly PlacementPolicy Policy = new(preferredBacklog: 4);

    private static WorkerCapacity Worker(
        string id, long maxSide = 0, long residentSide = 0, string[]? loaded = null, string[]? installed = null,
        bool ownQueue = true, int running = 0, int assigned = 0) => new(
        id, 6L << 30, maxSide * maxSide, residentSide * residentSide, loaded ?? [Model], installed ?? [Model],
        ownQueue ? "renderfarm-render-" + id : null, running, assigned);

    private static UnitShape Unit(int side, string model = Model) => new(model, side, side);

    [Fact]
    public void With_no_live_worker_the_unit_waits_in_the_shared_queue()
    {
        Policy.Place(Unit(512), []).ShouldBeOfType<PlacementDecision.Shared>();
    }

    [Fact]
    public void When_every_worker_can_take_it_equally_well_it_goes_to_the_shared_queue()
    {
        var fleet = new[] { Worker("a", 1024, 512), Worker("b", 2048, 1024, running: 3) };

        Policy.Place(Unit(256), fleet).ShouldBeOfType<PlacementDecision.Shared>();
    }

    [Fact]
    public void A_unit_a_recently_absent_worker_could_not_take_avoids_the_shared_queue()
    {
        var live = new[] { Worker("large", 2048) };

        Policy.Place(Unit(1024), live, absent: [Worker("small-restarting", 512)])
            .ShouldBeOfType<PlacementDecision.Direct>().Worker.Id.ShouldBe("large");
        Policy.Place(Unit(256), live, absent: [Worker("small-restarting", 512)]).ShouldBeOfType<PlacementDecision.Shared>();
    }

    [Fact]
    public void A_unit_only_the_large_worker_fits_goes_to_its_own_queue()
    {
        var fleet = new[] { Worker("small", 512, 256), Worker("large", 1536, 1024) };

        var decision = Policy.Place(Unit(1024), fleet).ShouldBeOfType<PlacementDecision.Direct>();

        decision.Worker.Id.ShouldBe("large");
    }

    [Fact]
    public void A_worker_that_cannot_plan_has_no_known_limit_and_stays_eligible()
    {
        var fleet = new[] { Worker("unknown", maxSide: 0), Worker("small", 512, 512) };

        var decision = Policy.Place(Unit(2048), fleet).ShouldBeOfType<PlacementDecision.Direct>();

        decision.Worker.Id.ShouldBe("unknown");
        Worker("unknown").Fits(long.MaxValue).ShouldBeTrue();
    }

    [Fact]
    public void When_live_workers_exist_but_none_fits_the_unit_is_held_with_the_largest_size_named()
    {
        var fleet = new[] { Worker("small", 512), Worker("medium", 1536) };

        var hold = Policy.Place(Unit(2048), fleet).ShouldBeOfType<PlacementDecision.Hold>();

        hold.Reason.ShouldContain("2048×2048");
        hold.Reason.ShouldContain("1536×1536");
        hold.Reason.ShouldContain("medium");
        hold.Reason.ShouldContain("6 GiB");
    }

    [Fact]
    public void Among_eligible_workers_a_loaded_model_beats_an_installed_one_which_beats_none()
    {
        var fleet = new[]
        {
            Worker("none", 2048, loaded: [], installed: []),
            Worker("installed", 2048, loaded: [], installed: [Model]),
            Worker("loaded", 2048, loaded: [Model]),
            Worker("small", 256),
        };

        Policy.Place(Unit(1024), fleet).ShouldBeOfType<PlacementDecision.Direct>().Worker.Id.ShouldBe("loaded");
        Policy.Place(Unit(1024), fleet.Where(w => w.Id != "loaded").ToList())
            .ShouldBeOfType<PlacementDecision.Direct>().Worker.Id.ShouldBe("installed");
    }

    [Fact]
    public void With_the_model_settled_the_cheaper_strategy_wins_then_the_lighter_load()
    {
        var fleet = new[]
        {
            Worker("offload-idle", 2048, residentSide: 512),
            Worker("resident-busy", 2048, residentSide: 1024, running: 2, assigned: 1),
            Worker("resident-idle", 2048, residentSide: 1024, running: 1),
            Worker("small", 256),
        };

        Policy.Place(Unit(1024), fleet).ShouldBeOfType<PlacementDecision.Direct>().Worker.Id.ShouldBe("resident-idle");
    }

    [Fact]
    public void A_preference_alone_sends_to_the_preferred_worker_only_while_its_own_queue_is_short()
    {
        var preferred = Worker("has-model", 2048, loaded: [Model]);
        var other = Worker("no-model", 2048, loaded: [], installed: []);

        Policy.Place(Unit(512), [preferred, other]).ShouldBeOfType<PlacementDecision.Direct>().Worker.Id.ShouldBe("has-model");
        Policy.Place(Unit(512), [preferred with { AssignedQueued = 4 }, other]).ShouldBeOfType<PlacementDecision.Shared>();
    }

    [Fact]
    public void A_unit_that_must_go_to_one_worker_goes_there_however_long_its_queue()
    {
        var fleet = new[] { Worker("small", 256), Worker("large", 2048, assigned: 100) };

        Policy.Place(Unit(1024), fleet).ShouldBeOfType<PlacementDecision.Direct>().Worker.Id.ShouldBe("large");
    }

    [Fact]
    public void Workers_without_an_own_queue_are_served_through_the_shared_queue()
    {
        var fleet = new[] { Worker("small", 256), Worker("large-legacy", 2048, ownQueue: false) };

        Policy.Place(Unit(1024), fleet).ShouldBeOfType<PlacementDecision.Shared>();
    }

    [Fact]
    public void A_stitch_runs_no_model_so_any_worker_takes_it_whatever_the_target_size()
    {
        var stitch = new RenderItem(Guid.NewGuid(), 1, 5, 1, "p", "", 8192, 8192, 4, 7.5, "euler", Model, RenderModes.HiresStitch,
            null, null, null, "out.png");

        var shape = UnitShape.Of(stitch);

        shape.Pixels.ShouldBe(0);
        Policy.Place(shape, [Worker("small", 256), Worker("smaller", 128)]).ShouldBeOfType<PlacementDecision.Shared>();
    }

    [Fact]
    public void An_upscale_tile_runs_no_unet_and_goes_first_to_a_worker_holding_its_upscaler()
    {
        // Strength 0 marks an upscale job's tile; its model is the job's upscaler, not a Stable Diffusion model.
        var tile = new RenderItem(Guid.NewGuid(), 1, 1, 1, "", "", 1024, 1024, 1, 1.0, "euler", "tiny-upscaler-x2", RenderModes.HiresTile,
            0, null, null, "out.png");
        var refine = tile with { Strength = 0.35, Model = Model };

        var shape = UnitShape.Of(tile);

        shape.ShouldBe(new UnitShape("tiny-upscaler-x2", 0, 0));
        UnitShape.Of(refine).Pixels.ShouldBe(1024 * 1024);
        var holder = Worker("holder", 256, installed: ["tiny-upscaler-x2"]);
        Policy.Place(shape, [Worker("small", 256), holder]).ShouldBe(new PlacementDecision.Direct(holder));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(64 * 64, 64)]
    [InlineData(1536L * 1536 + 5, 1536)]
    [InlineData(1000 * 1000, 1000)]
    [InlineData(1001 * 1001, 1000)]
    public void The_largest_square_side_is_a_multiple_of_8_within_the_pixels(long pixels, int side)
    {
        PlacementPolicy.LargestSquareSide(pixels).ShouldBe(side);
    }

    [Fact]
    public void The_largest_worker_is_an_unknown_limit_before_any_known_one()
    {
        PlacementPolicy.Largest([Worker("a", 512), Worker("b", 1024)])!.Id.ShouldBe("b");
        PlacementPolicy.Largest([Worker("a", 512), Worker("u", 0)])!.Id.ShouldBe("u");
        PlacementPolicy.Largest([]).ShouldBeNull();
    }
}
