using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Tests.Schedulers;

/// <summary>Timestep schedules for SD 1.x's config (T = 1000, steps_offset 1), each derived by hand from diffusers' spacing rules.</summary>
public sealed class SchedulerTimestepTests
{
    private static readonly SchedulerConfig Sd = SchedulerConfig.StableDiffusion1;

    private static SchedulerConfig WithSpacing(string spacing) => Sd with { TimestepSpacing = spacing };

    private static double[] TimestepsOf(string sampler, int steps, SchedulerConfig? config = null)
    {
        var scheduler = SchedulerFactory.Create(sampler, config ?? Sd);
        scheduler.SetTimesteps(steps);
        return scheduler.Timesteps.ToArray();
    }

    [Theory]
    [InlineData(SamplerNames.Ddim)]
    [InlineData(SamplerNames.Euler)]
    [InlineData(SamplerNames.EulerAncestral)]
    [InlineData(SamplerNames.Lms)]
    public void Leading_spacing_with_50_steps_is_981_down_to_1(string sampler)
    {
        // leading: stride = 1000 div 50 = 20; t_k = 20k + steps_offset(1) for k = 49 … 0 → 981, 961, …, 21, 1.
        var expected = Enumerable.Range(0, 50).Select(k => 981.0 - (20 * k)).ToArray();

        TimestepsOf(sampler, 50).ShouldBe(expected);
    }

    [Theory]
    [InlineData(SamplerNames.Ddim)]
    [InlineData(SamplerNames.Euler)]
    [InlineData(SamplerNames.EulerAncestral)]
    [InlineData(SamplerNames.Lms)]
    public void Leading_spacing_with_10_steps_is_901_down_to_1(string sampler)
    {
        // stride = 1000 div 10 = 100; 100k + 1 for k = 9 … 0.
        TimestepsOf(sampler, 10).ShouldBe([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    }

    [Fact]
    public void Leading_spacing_floors_the_stride_when_steps_do_not_divide_1000()
    {
        // 30 steps: stride = 1000 div 30 = 33; 33k + 1 for k = 29 … 0 → 958, 925, …, 34, 1.
        var expected = Enumerable.Range(0, 30).Select(k => 958.0 - (33 * k)).ToArray();

        TimestepsOf(SamplerNames.Ddim, 30).ShouldBe(expected);
    }

    [Fact]
    public void Linspace_spacing_rounds_evenly_spaced_points_for_ddim()
    {
        // linspace(0, 999, 10) has step 111 exactly: 0, 111, …, 999; reversed. No steps_offset for linspace.
        TimestepsOf(SamplerNames.Ddim, 10, WithSpacing("linspace")).ShouldBe([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    }

    [Fact]
    public void Linspace_spacing_keeps_fractional_timesteps_for_euler()
    {
        // Euler-family linspace is not rounded: linspace(0, 999, 7) has step 166.5 → 999, 832.5, 666, 499.5, 333, 166.5, 0.
        TimestepsOf(SamplerNames.Euler, 7, WithSpacing("linspace")).ShouldBe([999, 832.5, 666, 499.5, 333, 166.5, 0]);
    }

    [Fact]
    public void Trailing_spacing_counts_down_from_999()
    {
        // trailing: round(1000 − 100k) − 1 for k = 0 … 9 → 999, 899, …, 99.
        TimestepsOf(SamplerNames.Ddim, 10, WithSpacing("trailing")).ShouldBe([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    }

    [Fact]
    public void Trailing_spacing_rounds_halves_to_even_like_numpy()
    {
        // 16 steps: stride 62.5 → 1000, 937.5, 875, 812.5, 750, 687.5, 625, 562.5, 500, 437.5, 375, 312.5, 250, 187.5, 125, 62.5;
        // np.round sends .5 to the even neighbour (938, 812, 688, 562, 438, 312, 188, 62); then −1.
        TimestepsOf(SamplerNames.Euler, 16, WithSpacing("trailing"))
            .ShouldBe([999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61]);
    }

    [Fact]
    public void Plms_repeats_the_second_timestep()
    {
        // PNDM skip_prk_steps: ascending ts = 1, 101, …, 901; plms = concat(ts[:-1], ts[-2:-1], ts[-1:]) reversed
        // = 901, 801, 801, 701, …, 1: n + 1 = 11 entries with 801 twice.
        TimestepsOf(SamplerNames.Plms, 10).ShouldBe([901, 801, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    }

    [Fact]
    public void Plms_with_50_steps_repeats_961()
    {
        var expected = new List<double> { 981, 961 };
        expected.AddRange(Enumerable.Range(0, 49).Select(k => 961.0 - (20 * k)));

        var timesteps = TimestepsOf(SamplerNames.Plms, 50);

        timesteps.ShouldBe(expected);
        timesteps.Length.ShouldBe(51);
    }

    [Theory]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    public void Dpm_leading_uses_a_stride_of_1000_div_n_plus_1(string sampler)
    {
        // DPMSolverMultistep leading: stride = 1000 div (20 + 1) = 47; 47k + 1 for k = 20 … 1 (k = 0 is dropped).
        TimestepsOf(sampler, 20).ShouldBe(
            [941, 894, 847, 800, 753, 706, 659, 612, 565, 518, 471, 424, 377, 330, 283, 236, 189, 142, 95, 48]);
        // 10 steps: stride = 1000 div 11 = 90 → 901, 811, …, 91.
        TimestepsOf(sampler, 10).ShouldBe([901, 811, 721, 631, 541, 451, 361, 271, 181, 91]);
    }

    [Fact]
    public void Dpm_linspace_drops_the_zero_of_n_plus_1_points()
    {
        // round(linspace(0, 999, 11)) = 0, 100, 200, 300, 400, 500 (499.5 → even), 599, 699, 799, 899, 999; reversed, last dropped.
        TimestepsOf(SamplerNames.DpmPlusPlus2M, 10, WithSpacing("linspace")).ShouldBe([999, 899, 799, 699, 599, 500, 400, 300, 200, 100]);
    }

    [Fact]
    public void Karras_sigmas_run_from_sigma_max_to_sigma_min_with_rho_7_spacing()
    {
        const int Steps = 10;
        var scheduler = SchedulerFactory.Create(SamplerNames.DpmPlusPlus2MKarras, Sd);
        scheduler.SetTimesteps(Steps);

        // σ_t = √((1 − ᾱ_t)/ᾱ_t): SD's table spans σ₀ ≈ 0.0292 to σ₉₉₉ ≈ 14.6146 (published values).
        var sigmaMax = ReferenceMath.SigmaAt(999);
        var sigmaMin = ReferenceMath.SigmaAt(0);
        sigmaMax.ShouldBe(14.6146, 1e-4);
        sigmaMin.ShouldBe(0.0292, 1e-4);

        // Read σ back from the schedule through AddNoise (see SigmaOfDpmStep).
        var sigmas = Enumerable.Range(0, Steps).Select(i => SigmaOfDpmStep(scheduler, i)).ToArray();
        sigmas[0].ShouldBe(sigmaMax, sigmaMax * 1e-5);
        sigmas[^1].ShouldBe(sigmaMin, sigmaMin * 1e-4);

        // ρ = 7: σ^(1/7) is evenly spaced.
        var roots = sigmas.Select(s => Math.Pow(s, 1 / 7.0)).ToArray();
        var stride = (roots[^1] - roots[0]) / (Steps - 1);
        for (var i = 1; i < Steps; i++)
        {
            (roots[i] - roots[i - 1]).ShouldBe(stride, 1e-5);
        }

        // Timesteps are _sigma_to_t rounded (as diffusers does for this scheduler): the ends land on 999 and 0.
        scheduler.Timesteps[0].ShouldBe(999);
        scheduler.Timesteps[^1].ShouldBe(0);
        scheduler.Timesteps.ShouldBe(scheduler.Timesteps.OrderByDescending(t => t).ToArray());
    }

    [Fact]
    public void Karras_timesteps_invert_log_sigma_interpolation()
    {
        const int Steps = 25;
        var scheduler = SchedulerFactory.Create(SamplerNames.DpmPlusPlus2MKarras, Sd);
        scheduler.SetTimesteps(Steps);

        for (var i = 0; i < Steps; i++)
        {
            var sigma = SigmaOfDpmStep(scheduler, i);
            // The fractional t with log σ(t) = log σ, found independently by bisection on the log-σ interpolation.
            double lo = 0, hi = 999;
            for (var k = 0; k < 100; k++)
            {
                var mid = (lo + hi) / 2;
                var sigmaMid = ReferenceMath.Sigma(ReferenceMath.AlphaCumprodAtFractional(mid));
                (lo, hi) = sigmaMid < sigma ? (mid, hi) : (lo, mid);
            }

            scheduler.Timesteps[i].ShouldBe(Math.Round(lo), $"step {i}, σ = {sigma}");
        }
    }

    [Theory]
    [InlineData(4, new double[] { 999, 759, 499, 259 })]
    [InlineData(8, new double[] { 999, 879, 759, 639, 499, 379, 259, 139 })]
    [InlineData(1, new double[] { 999 })]
    public void Lcm_takes_its_steps_from_the_50_step_distillation_schedule(int steps, double[] expected)
    {
        // Origin schedule: 20k − 1 for k = 1 … 50, reversed: 999, 979, …, 19. Indices floor(linspace(0, 50, n, endpoint=False)):
        // n = 4 → 0, 12.5, 25, 37.5 → 0, 12, 25, 37 → 999 − 20·idx = 999, 759, 499, 259.
        // n = 8 → 0, 6.25, 12.5, 18.75, 25, 31.25, 37.5, 43.75 → 0, 6, 12, 18, 25, 31, 37, 43.
        TimestepsOf(SamplerNames.Lcm, steps).ShouldBe(expected);
    }

    [Fact]
    public void Lcm_rejects_more_steps_than_its_original_schedule()
    {
        var scheduler = SchedulerFactory.Create(SamplerNames.Lcm, Sd);

        Should.Throw<ArgumentOutOfRangeException>(() => scheduler.SetTimesteps(51));
    }

    [Theory]
    [InlineData("leading", 10, 901)]
    [InlineData("trailing", 10, 999)]
    [InlineData("linspace", 10, 999)]
    public void Init_noise_sigma_of_k_diffusion_samplers_follows_the_spacing(string spacing, int steps, int firstTimestep)
    {
        var scheduler = SchedulerFactory.Create(SamplerNames.Euler, WithSpacing(spacing));
        scheduler.SetTimesteps(steps);

        // diffusers: √(σ_max² + 1) for leading (so the scaled input has unit variance), σ_max for linspace/trailing.
        var sigmaMax = ReferenceMath.SigmaAt(firstTimestep);
        var expected = spacing == "leading" ? Math.Sqrt((sigmaMax * sigmaMax) + 1) : sigmaMax;
        ((double)scheduler.InitNoiseSigma).ShouldBe(expected, expected * 1e-6);
    }

    [Theory]
    [InlineData(SamplerNames.Ddim)]
    [InlineData(SamplerNames.Plms)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    [InlineData(SamplerNames.DpmPlusPlus2MKarras)]
    [InlineData(SamplerNames.Lcm)]
    public void Variance_preserving_samplers_start_from_unit_noise(string sampler)
    {
        var scheduler = SchedulerFactory.Create(sampler, Sd);
        scheduler.SetTimesteps(4);

        scheduler.InitNoiseSigma.ShouldBe(1f);
    }

    private static double SigmaOfDpmStep(IScheduler scheduler, int stepIndex)
    {
        // AddNoise gives α·x₀ + σ_t·ε with α = 1/√(σ² + 1), σ_t = σ·α; the ratio of the two coefficients is σ.
        var destination = new float[2];
        scheduler.AddNoise([1f, 0f], [0f, 1f], stepIndex, destination);
        return (double)destination[1] / destination[0];
    }
}
