using RenderFarm.Domain.Requests;

namespace RenderFarm.Domain.Tests.Requests;

/// <summary>LCM's schedule has 50 steps: a request for more would be accepted and then fail on every worker.</summary>
public sealed class LcmStepsTests
{
    private static readonly JobRequestValidator Validator = new();

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(KnownSamplers.LcmMaxSteps)]
    public void Lcm_with_at_most_its_schedule_is_valid(int steps) =>
        Validator.Validate(JobRequestValidatorTests.Valid() with { Sampler = KnownSamplers.Lcm, Steps = steps }).ShouldBeEmpty();

    [Fact]
    public void Lcm_with_more_steps_names_the_field_and_the_fix()
    {
        var errors = Validator.Validate(JobRequestValidatorTests.Valid() with { Sampler = KnownSamplers.Lcm, Steps = KnownSamplers.LcmMaxSteps + 1 });

        var error = errors.ShouldHaveSingleItem();
        error.Field.ShouldBe("steps");
        error.Message.ShouldContain("at most 50 steps");
    }

    [Fact]
    public void Other_samplers_keep_the_full_range() =>
        Validator.Validate(JobRequestValidatorTests.Valid() with { Sampler = KnownSamplers.Euler, Steps = 1000 }).ShouldBeEmpty();

    [Fact]
    public void A_sweep_combining_lcm_with_long_schedules_is_refused_on_the_sweep_axis()
    {
        var request = JobRequestValidatorTests.Valid() with
        {
            Sweep = new SweepRequest { Samplers = [KnownSamplers.Euler, KnownSamplers.Lcm], Steps = [8, 60] },
        };

        Validator.Validate(request).ShouldHaveSingleItem().Field.ShouldBe("sweep.steps");
    }

    [Fact]
    public void A_sweep_of_samplers_without_lcm_accepts_long_schedules() =>
        Validator.Validate(JobRequestValidatorTests.Valid() with
        {
            Steps = 200,
            Sweep = new SweepRequest { Samplers = [KnownSamplers.Euler, KnownSamplers.Ddim] },
        }).ShouldBeEmpty();
}
