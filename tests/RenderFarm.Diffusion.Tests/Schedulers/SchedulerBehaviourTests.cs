using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Tests.Schedulers;

public sealed class SchedulerBehaviourTests
{
    private static readonly SchedulerConfig Sd = SchedulerConfig.StableDiffusion1;

    [Theory]
    [InlineData(SamplerNames.Ddim, "----------")]
    [InlineData(SamplerNames.Plms, "-----------")]
    [InlineData(SamplerNames.Euler, "----------")]
    [InlineData(SamplerNames.Lms, "----------")]
    [InlineData(SamplerNames.DpmPlusPlus2M, "----------")]
    [InlineData(SamplerNames.DpmPlusPlus2MKarras, "----------")]
    [InlineData(SamplerNames.EulerAncestral, "NNNNNNNNN-")]
    [InlineData(SamplerNames.Lcm, "NNNNNNNNN-")]
    public void Needs_noise_pattern(string sampler, string pattern)
    {
        // Ancestral Euler's last step has σ_up = 0 and LCM returns its estimate after the last step: neither draws noise there.
        var scheduler = SchedulerFactory.Create(sampler, Sd);
        scheduler.SetTimesteps(10);

        var actual = new string([.. Enumerable.Range(0, scheduler.Timesteps.Count).Select(i => scheduler.NeedsNoise(i) ? 'N' : '-')]);

        actual.ShouldBe(pattern);
    }

    [Fact]
    public void Ddim_with_eta_needs_noise_at_every_step_and_uses_it()
    {
        var scheduler = SchedulerFactory.Create(SamplerNames.Ddim, Sd, eta: 0.5);
        scheduler.SetTimesteps(10);
        Enumerable.Range(0, 10).ShouldAllBe(i => scheduler.NeedsNoise(i));

        float[] output = [0.1f, -0.2f, 0.3f, 0.4f];
        float[] a = [1f, 2f, -1f, 0.5f];
        float[] b = [1f, 2f, -1f, 0.5f];
        scheduler.Step(output, 3, a, [0f, 0f, 0f, 0f]);
        scheduler.Step(output, 3, b, [1f, 1f, 1f, 1f]);

        // σ at step 3 (601 → 501): η·√((1 − ᾱ₆₀₁)/(1 − ᾱ₇₀₁)·(1 − ᾱ₇₀₁/ᾱ₆₀₁)); unit noise shifts every value by exactly σ.
        var at = ReferenceMath.AlphasCumprod[601];
        var ap = ReferenceMath.AlphasCumprod[501];
        var sigma = 0.5 * Math.Sqrt((1 - ap) / (1 - at) * (1 - (at / ap)));
        for (var j = 0; j < a.Length; j++)
        {
            ((double)b[j] - a[j]).ShouldBe(sigma, 1e-6);
        }

        Should.Throw<ArgumentException>(() => scheduler.Step(output, 3, a, []));
    }

    [Fact]
    public void Factory_rejects_unknown_names_listing_the_valid_ones()
    {
        var error = Should.Throw<ArgumentException>(() => SchedulerFactory.Create("k_dpm_3m", Sd));

        error.ParamName.ShouldBe("samplerName");
        error.Message.ShouldContain("k_dpm_3m");
        foreach (var name in SamplerNames.All)
        {
            error.Message.ShouldContain(name);
        }
    }

    [Theory]
    [InlineData(SamplerNames.Ddim, typeof(DdimScheduler))]
    [InlineData(SamplerNames.Plms, typeof(PndmScheduler))]
    [InlineData(SamplerNames.Euler, typeof(EulerDiscreteScheduler))]
    [InlineData(SamplerNames.EulerAncestral, typeof(EulerAncestralDiscreteScheduler))]
    [InlineData(SamplerNames.Lms, typeof(LmsDiscreteScheduler))]
    [InlineData(SamplerNames.DpmPlusPlus2M, typeof(DpmSolverMultistepScheduler))]
    [InlineData(SamplerNames.DpmPlusPlus2MKarras, typeof(DpmSolverMultistepScheduler))]
    [InlineData(SamplerNames.Lcm, typeof(LcmScheduler))]
    public void Factory_creates_each_named_sampler(string sampler, Type expected)
    {
        SchedulerFactory.Create(sampler, Sd).ShouldBeOfType(expected);
    }

    [Theory]
    [InlineData("timestep_spacing")]
    [InlineData("prediction_type")]
    [InlineData("beta_schedule")]
    public void Unsupported_config_values_are_rejected(string field)
    {
        var config = field switch
        {
            "timestep_spacing" => Sd with { TimestepSpacing = "karras" },
            "prediction_type" => Sd with { PredictionType = "sample" },
            _ => Sd with { BetaSchedule = "squaredcos_cap_v2" },
        };

        Should.Throw<ArgumentException>(() => SchedulerFactory.Create(SamplerNames.Euler, config)).Message.ShouldContain(field);
    }

    [Fact]
    public void Stepping_before_set_timesteps_is_an_error()
    {
        var scheduler = SchedulerFactory.Create(SamplerNames.Euler, Sd);

        Should.Throw<InvalidOperationException>(() => scheduler.Step([0f], 0, new float[1], []));
    }

    [Theory]
    [InlineData(SamplerNames.Plms)]
    [InlineData(SamplerNames.Lms)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    public void Multistep_samplers_reject_skipped_steps(string sampler)
    {
        var scheduler = SchedulerFactory.Create(sampler, Sd);
        scheduler.SetTimesteps(10);
        var sample = new float[4];
        scheduler.Step(new float[4], 0, sample, []);

        Should.Throw<InvalidOperationException>(() => scheduler.Step(new float[4], 2, sample, []));
    }

    [Theory]
    [InlineData(SamplerNames.Ddim)]
    [InlineData(SamplerNames.Plms)]
    [InlineData(SamplerNames.Euler)]
    [InlineData(SamplerNames.EulerAncestral)]
    [InlineData(SamplerNames.Lms)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    [InlineData(SamplerNames.DpmPlusPlus2MKarras)]
    [InlineData(SamplerNames.Lcm)]
    public void Step_does_not_allocate_after_the_first_call(string sampler)
    {
        var scheduler = SchedulerFactory.Create(sampler, Sd, eta: 0.3);
        var output = SamplingHarness.Gaussian(4096, 2);
        var noise = SamplingHarness.Gaussian(4096, 3);
        var input = new float[4096];

        // The runtime itself sometimes charges a few hundred bytes to this thread once (a CI run saw 536 bytes in one
        // sampler's loop, which allocates nothing): tiering and first-call bookkeeping. A real allocation in Step or
        // ScaleModelInput happens on every run, so the cleanest of several runs must be zero.
        var perRun = new long[5];
        for (var run = 0; run < perRun.Length; run++)
        {
            scheduler.SetTimesteps(8);
            var sample = SamplingHarness.Gaussian(4096, 1);
            scheduler.Step(output, 0, sample, noise);

            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 1; i < scheduler.Timesteps.Count; i++)
            {
                scheduler.ScaleModelInput(sample, input, i);
                scheduler.Step(output, i, sample, scheduler.NeedsNoise(i) ? noise : default);
            }

            perRun[run] = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        perRun.Min().ShouldBe(0, $"bytes allocated per run: {string.Join(", ", perRun)}");
    }

    [Theory]
    [InlineData(SamplerNames.Plms)]
    [InlineData(SamplerNames.Lms)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    public void Set_timesteps_resets_history_so_a_rerun_repeats_exactly(string sampler)
    {
        var scheduler = SchedulerFactory.Create(sampler, Sd);
        var start = SamplingHarness.Gaussian(32, 5);
        var oracle = new AnalyticOracle(SamplingHarness.Gaussian(32, 6));

        scheduler.SetTimesteps(12);
        var first = SamplingHarness.Run(scheduler, start, oracle);
        scheduler.SetTimesteps(12);
        var second = SamplingHarness.Run(scheduler, start, oracle);

        second.ShouldBe(first);
    }

    [Theory]
    [InlineData(SamplerNames.Euler)]
    [InlineData(SamplerNames.EulerAncestral)]
    [InlineData(SamplerNames.Lms)]
    public void K_diffusion_samplers_scale_the_input_by_one_over_root_sigma_squared_plus_one(string sampler)
    {
        var scheduler = SchedulerFactory.Create(sampler, Sd);
        scheduler.SetTimesteps(10);
        var destination = new float[2];

        scheduler.ScaleModelInput([2f, -1f], destination, 3);

        var sigma = ReferenceMath.SigmaAt(601);
        ((double)destination[0]).ShouldBe(2 / Math.Sqrt((sigma * sigma) + 1), 1e-6);
        ((double)destination[1]).ShouldBe(-1 / Math.Sqrt((sigma * sigma) + 1), 1e-6);
    }

    [Theory]
    [InlineData(SamplerNames.Ddim)]
    [InlineData(SamplerNames.Plms)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    [InlineData(SamplerNames.Lcm)]
    public void Variance_preserving_samplers_pass_the_input_through(string sampler)
    {
        var scheduler = SchedulerFactory.Create(sampler, Sd);
        scheduler.SetTimesteps(4);
        var destination = new float[2];

        scheduler.ScaleModelInput([2f, -1f], destination, 1);

        destination.ShouldBe([2f, -1f]);
    }

    [Theory]
    [InlineData(SamplerNames.Ddim, 2, 701)]
    [InlineData(SamplerNames.Plms, 3, 701)]
    [InlineData(SamplerNames.Lcm, 1, 759)]
    public void Ddpm_family_add_noise_follows_the_forward_process(string sampler, int stepIndex, int timestep)
    {
        var scheduler = SchedulerFactory.Create(sampler, Sd);
        scheduler.SetTimesteps(sampler == SamplerNames.Lcm ? 4 : 10);
        var destination = new float[1];

        scheduler.AddNoise([0.7f], [-1.3f], stepIndex, destination);

        var a = ReferenceMath.AlphasCumprod[timestep];
        ((double)destination[0]).ShouldBe((Math.Sqrt(a) * 0.7) + (Math.Sqrt(1 - a) * -1.3), 1e-6);
    }

    [Fact]
    public void Euler_add_noise_adds_sigma_times_noise()
    {
        var scheduler = SchedulerFactory.Create(SamplerNames.Euler, Sd);
        scheduler.SetTimesteps(10);
        var destination = new float[1];

        scheduler.AddNoise([0.7f], [-1.3f], 4, destination);

        ((double)destination[0]).ShouldBe(0.7 + (ReferenceMath.SigmaAt(501) * -1.3), 1e-5);
    }
}
