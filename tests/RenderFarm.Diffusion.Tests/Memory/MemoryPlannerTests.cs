using RenderFarm.Diffusion.Memory;

namespace RenderFarm.Diffusion.Tests.Memory;

public sealed class MemoryPlannerTests
{
    private static readonly RenderShape Shape768 = new(768, 768);

    [Fact]
    public void Plentiful_memory_is_rendered_resident()
    {
        var plan = new MemoryPlanner(TestProfiles.Cpu()).Plan(Shape768, 64 * TestProfiles.GiB);

        plan.Fits.ShouldBeTrue();
        plan.Strategy!.Names.ShouldBe(["resident"]);
        plan.Considered.Count.ShouldBe(1);
        plan.PredictedPeakBytes.ShouldBeLessThanOrEqualTo(64 * TestProfiles.GiB);
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("vae-heavy")]
    public void Shrinking_budgets_fall_back_in_the_documented_order(string profileName)
    {
        var planner = new MemoryPlanner(profileName == "cpu" ? TestProfiles.Cpu() : TestProfiles.VaeHeavy());
        var resident = planner.Predict(Shape768, MemoryStrategy.Resident).PeakBytes;
        var chosen = new List<string>();
        var rung = 0;
        for (var budget = resident; ; budget = budget * 19 / 20)
        {
            var plan = planner.Plan(Shape768, budget);
            if (!plan.Fits)
            {
                break;
            }

            // The ladder is walked from its top every time: a smaller budget never picks an earlier rung.
            plan.Considered.Count.ShouldBeGreaterThanOrEqualTo(rung);
            rung = plan.Considered.Count;
            plan.PredictedPeakBytes.ShouldBeLessThanOrEqualTo(budget);
            var names = string.Join(",", plan.Strategy!.Names);
            if (chosen.Count == 0 || chosen[^1] != names)
            {
                chosen.Add(names);
            }
        }

        chosen[0].ShouldBe("resident");
        if (profileName == "cpu")
        {
            // The UNet's batched call is the peak: splitting it is the first fallback.
            chosen[1].ShouldBe("resident,batch-split");
        }

        chosen.ShouldContain(n => n.StartsWith("sequential", StringComparison.Ordinal));
        chosen[^1].ShouldContain("latent-tiling");
        if (profileName == "vae-heavy")
        {
            // The VAE is the peak here, so tiling it is the rung that fits before the UNet is windowed.
            chosen.ShouldContain(n => n.Contains("tiled-vae", StringComparison.Ordinal) && !n.Contains("latent-tiling", StringComparison.Ordinal));
        }

        chosen.FindIndex(n => n.StartsWith("sequential", StringComparison.Ordinal))
            .ShouldBeGreaterThan(chosen.FindLastIndex(n => n.StartsWith("resident", StringComparison.Ordinal)));
    }

    [Fact]
    public void Every_rejected_alternative_names_its_need_and_the_budget()
    {
        var planner = new MemoryPlanner(TestProfiles.Cpu());
        var budget = planner.Predict(Shape768, new MemoryStrategy { Strategies = MemoryStrategies.Sequential | MemoryStrategies.BatchSplit }).PeakBytes;

        var plan = planner.Plan(Shape768, budget);

        plan.Strategy!.Names.ShouldBe(["sequential", "batch-split"]);
        plan.Considered.Count.ShouldBeGreaterThan(1);
        foreach (var rejected in plan.Considered.SkipLast(1))
        {
            rejected.Fits.ShouldBeFalse();
            rejected.Reason.ShouldContain("> budget");
            rejected.Prediction.PeakBytes.ShouldBeGreaterThan(budget);
        }

        plan.Considered[^1].Fits.ShouldBeTrue();
    }

    [Fact]
    public void A_budget_below_the_weights_is_refused_with_a_reason()
    {
        var plan = new MemoryPlanner(TestProfiles.Cpu()).Plan(new RenderShape(512, 512), 300 * TestProfiles.MiB);

        plan.Fits.ShouldBeFalse();
        plan.Strategy.ShouldBeNull();
        plan.Reason.ShouldStartWith("nothing fits");
        plan.Reason.ShouldContain("weights");
        plan.Considered.ShouldAllBe(c => !c.Fits);
    }

    [Fact]
    public void Latent_tiling_bounds_the_unet_so_size_costs_time_not_attention_memory()
    {
        var planner = new MemoryPlanner(TestProfiles.Cpu());
        var tiled = new MemoryStrategy
        {
            Strategies = MemoryStrategies.Sequential | MemoryStrategies.TiledVae | MemoryStrategies.LatentTiling,
            LatentWindow = new TileSize(32, 8),
        };

        var small = planner.Predict(new RenderShape(1024, 1024), tiled);
        var large = planner.Predict(new RenderShape(2048, 2048), tiled);
        var resident = planner.Predict(new RenderShape(2048, 2048), MemoryStrategy.Resident);

        // 4× the pixels: the engine's own image buffers grow, the UNet window does not.
        (large.PeakBytes - small.PeakBytes).ShouldBeLessThan(MemoryPlanner.EngineHostBytes(new RenderShape(2048, 2048), true));
        large.Seconds.ShouldBeGreaterThan(3 * small.Seconds);
        resident.PeakBytes.ShouldBeGreaterThan(10 * large.PeakBytes);
    }

    [Fact]
    public void Vae_on_the_cpu_is_tried_only_on_a_gpu()
    {
        var cpuPlan = new MemoryPlanner(TestProfiles.Cpu()).Plan(new RenderShape(1024, 1024), 1 * TestProfiles.GiB);
        cpuPlan.Considered.ShouldNotContain(c => c.Strategy.Has(MemoryStrategies.VaeCpu));

        var sd15 = new MemoryPlanner(MemoryProfile.StableDiffusion15());
        var resident = sd15.Predict(new RenderShape(1024, 1024), MemoryStrategy.Resident);
        var vaeCpu = sd15.Predict(new RenderShape(1024, 1024), new MemoryStrategy { Strategies = MemoryStrategies.VaeCpu });
        vaeCpu.PeakBytes.ShouldBeLessThanOrEqualTo(resident.PeakBytes);
        vaeCpu.Seconds.ShouldBeGreaterThan(resident.Seconds);
        sd15.Plan(new RenderShape(1024, 1024), 4 * TestProfiles.GiB).Considered.ShouldContain(c => c.Strategy.Has(MemoryStrategies.VaeCpu));
    }

    [Fact]
    public void Stable_diffusion_15_renders_512_resident_on_8_GiB_and_needs_tiling_far_beyond()
    {
        var planner = new MemoryPlanner(MemoryProfile.StableDiffusion15());

        planner.Plan(new RenderShape(512, 512), 8 * TestProfiles.GiB).Strategy!.Names.ShouldBe(["resident"]);
        var large = planner.Plan(new RenderShape(2048, 2048), 8 * TestProfiles.GiB);
        large.Fits.ShouldBeTrue();
        large.Strategy!.Has(MemoryStrategies.LatentTiling).ShouldBeTrue();
        MemoryProfile.StableDiffusion15().Kind.ShouldBe(MemoryProfile.Predicted);
    }

    [Fact]
    public void Largest_square_is_the_edge_of_what_fits()
    {
        var planner = new MemoryPlanner(TestProfiles.Cpu());
        var budget = 2 * TestProfiles.GiB;

        var side = planner.LargestSquare(budget, strategy: MemoryStrategy.Resident);

        side.ShouldBeGreaterThan(0);
        (side % 8).ShouldBe(0);
        planner.Predict(new RenderShape(side, side), MemoryStrategy.Resident).PeakBytes.ShouldBeLessThanOrEqualTo(budget);
        planner.Predict(new RenderShape(side + 8, side + 8), MemoryStrategy.Resident).PeakBytes.ShouldBeGreaterThan(budget);
        planner.LargestSquare(budget).ShouldBeGreaterThan(side);
    }

    [Fact]
    public void Sequential_holds_one_component_at_a_time()
    {
        var profile = TestProfiles.Cpu();
        var planner = new MemoryPlanner(profile);
        var shape = new RenderShape(256, 256);

        var resident = planner.Predict(shape, MemoryStrategy.Resident);
        var sequential = planner.Predict(shape, new MemoryStrategy { Strategies = MemoryStrategies.Sequential });

        (resident.PeakBytes - sequential.PeakBytes).ShouldBe(profile.TextEncoder.WeightBytes + profile.VaeDecoder.WeightBytes);
        sequential.Seconds.ShouldBeGreaterThan(resident.Seconds);
    }
}
