using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Tests.Schedulers;

/// <summary>The farm accepts 1 to 1000 steps: every sampler must schedule the whole range inside the training table.</summary>
public sealed class MaxStepsTests
{
    public static TheoryData<string, int> SamplersAndEdgeSteps()
    {
        var data = new TheoryData<string, int>();
        foreach (var sampler in SamplerNames.All)
        {
            // LCM's schedule has 50 steps; the domain refuses more for it (KnownSamplers.LcmMaxSteps).
            int[] edges = sampler == SamplerNames.Lcm ? [1, 4, 49, 50] : [1, 499, 500, 501, 998, 999, 1000];
            foreach (var steps in edges)
            {
                data.Add(sampler, steps);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SamplersAndEdgeSteps))]
    public void Every_accepted_step_count_schedules_timesteps_inside_the_training_range(string sampler, int steps)
    {
        var scheduler = SchedulerFactory.Create(sampler, SchedulerConfig.StableDiffusion1);

        scheduler.SetTimesteps(steps);

        scheduler.Timesteps.ShouldAllBe(t => t >= 0 && t <= 999);
    }

    [Theory]
    [InlineData(SamplerNames.Ddim)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    public void A_thousand_leading_steps_use_every_timestep_once(string sampler)
    {
        var scheduler = SchedulerFactory.Create(sampler, SchedulerConfig.StableDiffusion1);

        scheduler.SetTimesteps(1000);

        scheduler.Timesteps.ShouldBe(Enumerable.Range(0, 1000).Reverse().Select(t => (double)t));
    }

    [Fact]
    public void Below_the_edge_the_leading_offset_is_untouched()
    {
        var scheduler = SchedulerFactory.Create(SamplerNames.Ddim, SchedulerConfig.StableDiffusion1);

        scheduler.SetTimesteps(999);

        // T div 999 = 1, so k + 1 for k = 0…998: 999 … 1, exactly diffusers' schedule.
        scheduler.Timesteps[0].ShouldBe(999);
        scheduler.Timesteps[^1].ShouldBe(1);
    }
}
