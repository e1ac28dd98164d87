using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Tests.Schedulers;

/// <summary>
/// Full runs against <see cref="AnalyticOracle"/>, a model that knows the clean latent μ. Every x₀ estimate is then μ,
/// so each sampler's end state is known in closed form (derivations next to each test).
/// </summary>
public sealed class SchedulerOracleTests
{
    private const int Length = 64;
    private static readonly SchedulerConfig Sd = SchedulerConfig.StableDiffusion1;
    private static readonly float[] Mu = SamplingHarness.Scaled(SamplingHarness.Gaussian(Length, seed: 7), 0.8f);
    private static readonly float[] InitialNoise = SamplingHarness.Gaussian(Length, seed: 11);

    public static TheoryData<string, int> ConvergingSamplers => new()
    {
        { SamplerNames.Euler, 30 },
        { SamplerNames.Lms, 30 },
        { SamplerNames.DpmPlusPlus2M, 20 },
        { SamplerNames.DpmPlusPlus2MKarras, 20 },
        { SamplerNames.Lcm, 4 },
        { SamplerNames.EulerAncestral, 30 },
    };

    [Theory]
    [MemberData(nameof(ConvergingSamplers))]
    public void Sampler_ends_at_the_oracles_target(string sampler, int steps)
    {
        // Euler and LMS: the exact ODE path x(σ) = μ + σ·(x − μ)/σ keeps d = (x − μ)/σ constant, which Euler follows exactly and
        // LMS reproduces (its weights integrate the Lagrange basis, which sums to 1), landing on σ = 0, i.e. μ.
        // DPM-Solver++: the last step (σ_next = 0) returns its x₀ estimate, μ. LCM: the last step returns
        // c_out·μ + c_skip·x with c_skip(259) ≈ 4e-8. Euler ancestral: the last step has σ_up = σ_down = 0, so it lands on μ
        // whatever noise came before.
        var result = RunFromNoise(SchedulerFactory.Create(sampler, Sd), steps, new AnalyticOracle(Mu));

        SamplingHarness.ShouldAllBeClose(result, Mu, 1e-4, sampler);
    }

    [Theory]
    [MemberData(nameof(ConvergingSamplers))]
    public void Sampler_ends_at_the_target_with_v_prediction(string sampler, int steps)
    {
        var config = Sd with { PredictionType = "v_prediction" };

        var result = RunFromNoise(SchedulerFactory.Create(sampler, config), steps, new AnalyticOracle(Mu, vPrediction: true));

        SamplingHarness.ShouldAllBeClose(result, Mu, 1e-4, sampler);
    }

    [Theory]
    [InlineData(SamplerNames.Ddim, false)]
    [InlineData(SamplerNames.Ddim, true)]
    [InlineData(SamplerNames.Plms, false)]
    public void Deterministic_ddim_family_ends_at_the_closed_form(string sampler, bool vPrediction)
    {
        // With ε exact, DDIM maps x_t = √ᾱ_t·μ + √(1 − ᾱ_t)·e to √ᾱ_prev·μ + √(1 − ᾱ_prev)·e with the same e, and (leading
        // spacing) the next step starts where this one ended. The last step goes to t = 1 − 20 < 0, i.e. ᾱ_final = ᾱ₀.
        // So x_final = √ᾱ₀·μ + √(1 − ᾱ₀)·e with e = (x_T − √ᾱ_981·μ)/√(1 − ᾱ_981). PLMS: every ε it sees equals e and its
        // Adams–Bashforth weights sum to 1, so it makes exactly the same moves.
        var config = Sd with { PredictionType = vPrediction ? "v_prediction" : "epsilon" };
        var scheduler = SchedulerFactory.Create(sampler, config);

        var result = RunFromNoise(scheduler, 50, new AnalyticOracle(Mu, vPrediction));

        var aT = ReferenceMath.AlphasCumprod[981];
        var a0 = ReferenceMath.AlphasCumprod[0];
        var expected = new double[Length];
        for (var j = 0; j < Length; j++)
        {
            var e = (InitialNoise[j] - (Math.Sqrt(aT) * Mu[j])) / Math.Sqrt(1 - aT);
            expected[j] = (Math.Sqrt(a0) * Mu[j]) + (Math.Sqrt(1 - a0) * e);
        }

        SamplingHarness.ShouldAllBeClose(result, expected, 2e-5, sampler);
        // The closed form is not μ: √(1 − ᾱ₀) ≈ 0.029 of noise remains, so the test would notice a sampler that overshoots to μ.
        result.Zip(Mu, (r, m) => Math.Abs(r - m)).Max().ShouldBeGreaterThan(1e-2f);
    }

    [Fact]
    public void Plms_with_v_prediction_ends_near_the_closed_form()
    {
        // diffusers combines the raw v outputs with the Adams–Bashforth weights and converts the combination to ε with the
        // current ᾱ. The oracle's v differs between timesteps (v_t = √ᾱ_t·e − √(1 − ᾱ_t)·μ), so the combined v is not the
        // current v and PLMS drifts slightly off the DDIM closed form; this pins that the drift stays small (it is ~7e-3).
        var config = Sd with { PredictionType = "v_prediction" };

        var result = RunFromNoise(SchedulerFactory.Create(SamplerNames.Plms, config), 50, new AnalyticOracle(Mu, vPrediction: true));

        var epsilonRun = RunFromNoise(SchedulerFactory.Create(SamplerNames.Plms, Sd), 50, new AnalyticOracle(Mu));
        SamplingHarness.ShouldAllBeClose(result, epsilonRun, 2e-2, "PLMS v vs ε");
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.8)]
    public void Ddim_img2img_ends_at_the_closed_form_of_the_noised_source(double strength)
    {
        const int Steps = 50;
        var source = SamplingHarness.Gaussian(Length, seed: 23);
        var noise = SamplingHarness.Gaussian(Length, seed: 29);
        var scheduler = SchedulerFactory.Create(SamplerNames.Ddim, Sd);
        scheduler.SetTimesteps(Steps);
        var start = Steps - (int)(Steps * strength);
        var noised = new float[Length];
        scheduler.AddNoise(source, noise, start, noised);

        var result = SamplingHarness.Run(scheduler, noised, new AnalyticOracle(Mu), start);

        // x_s = √ᾱ_s·src + √(1 − ᾱ_s)·n, so e = (x_s − √ᾱ_s·μ)/√(1 − ᾱ_s) = n + √ᾱ_s·(src − μ)/√(1 − ᾱ_s), and the run ends at
        // √ᾱ₀·μ + √(1 − ᾱ₀)·e: the source leaks through e, more for lower strength (larger √ᾱ_s).
        var ts = (int)scheduler.Timesteps[start];
        var expected = ExpectedImg2Img(source, noise, ts);
        SamplingHarness.ShouldAllBeClose(result, expected, 2e-5, $"strength {strength}");
    }

    [Fact]
    public void Ddim_img2img_result_depends_on_strength()
    {
        var source = SamplingHarness.Gaussian(Length, seed: 23);
        var noise = SamplingHarness.Gaussian(Length, seed: 29);

        var low = ExpectedImg2Img(source, noise, 501);
        var high = ExpectedImg2Img(source, noise, 801);

        low.Zip(high, (a, b) => Math.Abs(a - b)).Max().ShouldBeGreaterThan(1e-3);
    }

    [Theory]
    [InlineData(SamplerNames.Euler)]
    [InlineData(SamplerNames.EulerAncestral)]
    [InlineData(SamplerNames.Lms)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    [InlineData(SamplerNames.DpmPlusPlus2MKarras)]
    public void Img2img_from_a_later_step_still_converges(string sampler)
    {
        const int Steps = 30;
        var scheduler = SchedulerFactory.Create(sampler, Sd);
        scheduler.SetTimesteps(Steps);
        var noised = new float[Length];
        scheduler.AddNoise(SamplingHarness.Gaussian(Length, seed: 23), InitialNoise, 12, noised);

        var result = SamplingHarness.Run(scheduler, noised, new AnalyticOracle(Mu), startIndex: 12);

        SamplingHarness.ShouldAllBeClose(result, Mu, 1e-4, sampler);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(12)]
    public void Plms_img2img_ends_at_the_ddim_closed_form_from_any_start(int start)
    {
        // Started later, PLMS warms up with a first-order (DDIM) step and then AB2…AB4; all see ε = e, so it ends where
        // DDIM would. Index 1 is the repeated timestep: a run starting there leaves the sample at that level for step 2.
        const int Steps = 30;
        var source = SamplingHarness.Gaussian(Length, seed: 23);
        var scheduler = SchedulerFactory.Create(SamplerNames.Plms, Sd);
        scheduler.SetTimesteps(Steps);
        var noised = new float[Length];
        scheduler.AddNoise(source, InitialNoise, start, noised);

        var result = SamplingHarness.Run(scheduler, noised, new AnalyticOracle(Mu), start);

        var expected = ExpectedImg2Img(source, InitialNoise, (int)scheduler.Timesteps[start]);
        SamplingHarness.ShouldAllBeClose(result, expected, 2e-5, $"start {start}");
    }

    [Fact]
    public void Euler_ancestral_lands_on_the_target_whatever_the_noise()
    {
        var first = RunFromNoise(SchedulerFactory.Create(SamplerNames.EulerAncestral, Sd), 20, new AnalyticOracle(Mu), noiseSeed: 1);
        var second = RunFromNoise(SchedulerFactory.Create(SamplerNames.EulerAncestral, Sd), 20, new AnalyticOracle(Mu), noiseSeed: 500);

        SamplingHarness.ShouldAllBeClose(first, Mu, 1e-4, "seed 1");
        SamplingHarness.ShouldAllBeClose(second, Mu, 1e-4, "seed 500");
    }

    [Fact]
    public void Euler_ancestral_intermediate_states_depend_on_the_noise()
    {
        var scheduler = SchedulerFactory.Create(SamplerNames.EulerAncestral, Sd);
        scheduler.SetTimesteps(10);
        var start = SamplingHarness.Scaled(InitialNoise, scheduler.InitNoiseSigma);
        var oracle = new AnalyticOracle(Mu);
        var input = new float[Length];
        scheduler.ScaleModelInput(start, input, 0);
        var output = oracle.Predict(input, scheduler.Timesteps[0]);

        var a = (float[])start.Clone();
        var b = (float[])start.Clone();
        scheduler.Step(output, 0, a, SamplingHarness.Gaussian(Length, 1));
        scheduler.Step(output, 0, b, SamplingHarness.Gaussian(Length, 2));

        a.Zip(b, (x, y) => Math.Abs(x - y)).Max().ShouldBeGreaterThan(1e-2f);
    }

    [Fact]
    public void Dpm_karras_ends_at_the_target_with_many_steps()
    {
        var result = RunFromNoise(SchedulerFactory.Create(SamplerNames.DpmPlusPlus2MKarras, Sd), 50, new AnalyticOracle(Mu));

        SamplingHarness.ShouldAllBeClose(result, Mu, 1e-4, "50 Karras steps");
    }

    private static float[] RunFromNoise(IScheduler scheduler, int steps, AnalyticOracle oracle, int noiseSeed = 99)
    {
        scheduler.SetTimesteps(steps);
        var start = SamplingHarness.Scaled(InitialNoise, scheduler.InitNoiseSigma);
        return SamplingHarness.Run(scheduler, start, oracle, noiseSeed: noiseSeed);
    }

    /// <summary>√ᾱ₀·μ + √(1 − ᾱ₀)·e for x_s = √ᾱ_s·src + √(1 − ᾱ_s)·noise (see the DDIM img2img test).</summary>
    private static double[] ExpectedImg2Img(float[] source, float[] noise, int startTimestep)
    {
        var aS = ReferenceMath.AlphasCumprod[startTimestep];
        var a0 = ReferenceMath.AlphasCumprod[0];
        var expected = new double[source.Length];
        for (var j = 0; j < source.Length; j++)
        {
            var e = noise[j] + (Math.Sqrt(aS) * (source[j] - Mu[j]) / Math.Sqrt(1 - aS));
            expected[j] = (Math.Sqrt(a0) * Mu[j]) + (Math.Sqrt(1 - a0) * e);
        }

        return expected;
    }
}
