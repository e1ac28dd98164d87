using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Tests.Pipelines;
using RenderFarm.ModelGenerator;

namespace RenderFarm.Diffusion.Tests.Memory;

/// <summary>A budget is kept before running (the plan) and while running (ONNX Runtime's capped arena).</summary>
[Collection(OracleCollection.Name)]
public sealed class BudgetEnforcementTests(OracleModels models)
{
    [Fact]
    public void An_oversized_render_is_refused_before_anything_loads_naming_size_budget_and_what_fits()
    {
        var budget = 1 * TestProfiles.GiB;
        using var pipeline = StableDiffusionPipeline.Open(models.Default, new ExecutionOptions { MemoryBudgetBytes = budget }, TestProfiles.Cpu());
        var request = StrategyEquivalenceTests.Request() with { Width = 1024, Height = 1024, Memory = MemoryStrategy.Resident };

        var error = Should.Throw<MemoryBudgetExceededException>(() => pipeline.Generate(request, null, CancellationToken.None));

        error.BudgetBytes.ShouldBe(budget);
        error.RequiredBytes.ShouldBeGreaterThan(budget);
        error.LargestSquareThatFits.ShouldBeGreaterThan(0);
        error.Message.ShouldContain("1.00 GiB");
        error.Message.ShouldContain($"{error.LargestSquareThatFits}x{error.LargestSquareThatFits}");
        pipeline.TextEncoder.Component.IsLoaded.ShouldBeFalse();
        pipeline.Unet.Component.IsLoaded.ShouldBeFalse();
    }

    [Fact]
    public void A_budget_nothing_fits_is_refused_with_the_planner_reason()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default, new ExecutionOptions { MemoryBudgetBytes = 300 * TestProfiles.MiB }, TestProfiles.Cpu());

        var error = Should.Throw<MemoryBudgetExceededException>(() => pipeline.Generate(StrategyEquivalenceTests.Request(), null, CancellationToken.None));

        error.LargestSquareThatFits.ShouldBe(0);
        error.Message.ShouldContain("nothing fits");
    }

    [Fact]
    public void With_a_budget_and_no_strategy_the_planner_chooses_and_the_render_reports_it()
    {
        var profile = TestProfiles.Cpu();
        var shape = StrategyEquivalenceTests.Request().MemoryShape;
        var sequentialPeak = new MemoryPlanner(profile).Predict(shape, new MemoryStrategy { Strategies = MemoryStrategies.Sequential }).PeakBytes;
        using var pipeline = StableDiffusionPipeline.Open(models.Default, new ExecutionOptions { MemoryBudgetBytes = sequentialPeak }, profile);

        var result = pipeline.Generate(StrategyEquivalenceTests.Request(), null, CancellationToken.None);

        result.Plan.ShouldNotBeNull();
        result.Memory.Names.ShouldBe(["sequential"]);
        result.Plan.Considered.Count.ShouldBeGreaterThan(1);
        pipeline.Unet.Component.IsLoaded.ShouldBeFalse();
    }

    [Fact]
    public void The_capped_arena_stops_a_render_the_plan_did_not_foresee()
    {
        // No profile: nothing to plan with, so only ONNX Runtime's arena cap (the budget) stands between this render
        // (~0.7 GB of attention at 512²) and the machine.
        var tiny = TestModels.EnsureTiny(Path.Combine(Path.GetTempPath(), "renderfarm-tiny-" + TestModels.GeneratorVersion));
        using var pipeline = StableDiffusionPipeline.Open(tiny, new ExecutionOptions { MemoryBudgetBytes = 96 * TestProfiles.MiB }, memoryProfile: null);
        pipeline.MemoryProfile.ShouldBeNull();
        var request = new GenerationRequest { Images = [new ImageSpec("x", "", 1)], Width = 512, Height = 512, Steps = 1 };

        var error = Should.Throw<MemoryBudgetExceededException>(() => pipeline.Generate(request, null, CancellationToken.None));

        error.InnerException.ShouldBeOfType<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>();
        error.BudgetBytes.ShouldBe(96 * TestProfiles.MiB);
        CpuArena.RegisteredLimit.ShouldBe(96 * TestProfiles.MiB);
    }
}
