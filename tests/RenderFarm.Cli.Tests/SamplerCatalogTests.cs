using RenderFarm.Diffusion.Schedulers;
using RenderFarm.Domain.Requests;

namespace RenderFarm.Cli.Tests;

/// <summary>The domain validates sampler names without referencing the engine; this keeps the two lists one list.</summary>
public sealed class SamplerCatalogTests
{
    [Fact]
    public void The_domain_accepts_exactly_the_samplers_the_engine_implements()
    {
        KnownSamplers.All.ShouldBe(SamplerNames.All, ignoreOrder: true);
        foreach (var name in KnownSamplers.All)
        {
            SchedulerFactory.Create(name, SchedulerConfig.StableDiffusion1).ShouldNotBeNull();
        }
    }

    [Fact]
    public void The_domain_limits_lcm_to_the_engine_schedule()
    {
        KnownSamplers.LcmMaxSteps.ShouldBe(SchedulerConfig.StableDiffusion1.OriginalInferenceSteps);
        var lcm = SchedulerFactory.Create(SamplerNames.Lcm, SchedulerConfig.StableDiffusion1);
        lcm.SetTimesteps(KnownSamplers.LcmMaxSteps);
        Should.Throw<ArgumentOutOfRangeException>(() => lcm.SetTimesteps(KnownSamplers.LcmMaxSteps + 1));
    }
}
