using RenderFarm.Contracts;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Domain.Tests.Requests;

/// <summary>The common validator's rules for mode hires and for the hires fields in other modes.</summary>
public class HiresValidationTests
{
    private static readonly JobRequestValidator Validator = new();

    private static JobRequest Hires(int width = 4096, int height = 4096) => JobRequestValidatorTests.Valid() with
    {
        Mode = RenderModes.Hires,
        Width = width,
        Height = height,
    };

    private static ValidationError SingleError(JobRequest request, JobRequestValidator? validator = null)
    {
        var errors = (validator ?? Validator).Validate(request);
        errors.Count.ShouldBe(1, string.Join(Environment.NewLine, errors));
        return errors[0];
    }

    [Fact]
    public void A_hires_target_far_past_the_txt2img_limit_is_valid_up_to_16384_squared()
    {
        Validator.Validate(Hires(16384, 16384)).ShouldBeEmpty();
        Validator.Validate(Hires(4096, 2304) with { Tile = 768, Overlap = 96, Strength = 0.3, BaseWidth = 768, BaseHeight = 432, NegativePrompt = "blurry" }).ShouldBeEmpty();
        SingleError(JobRequestValidatorTests.Valid() with { Width = 4096, Height = 4096 }).Field.ShouldBe("width");
    }

    [Fact]
    public void The_hires_limits_come_from_the_validation_limits()
    {
        var small = new JobRequestValidator(new ValidationLimits { Hires = new HiresLimits { MaxPixels = 2048L * 2048 } });

        var error = SingleError(Hires(4096, 4096), small);

        error.Field.ShouldBe("width");
        error.Message.ShouldContain("hires limit of 4194304");
    }

    [Fact]
    public void The_base_render_is_held_to_the_txt2img_limit()
    {
        var error = SingleError(Hires() with { BaseWidth = 2560, BaseHeight = 2048 });

        error.Field.ShouldBe("baseWidth");
        error.Message.ShouldContain("txt2img limit");
    }

    [Fact]
    public void An_init_image_is_an_optional_base_and_strength_is_the_tiles_refinement()
    {
        Validator.Validate(Hires() with { InitImage = "jobs/x/init.png", Strength = 0.25 }).ShouldBeEmpty();
        SingleError(Hires() with { Strength = 1.5 }).Field.ShouldBe("strength");
        SingleError(Hires() with { InitImage = "  " }).Field.ShouldBe("initImage");
    }

    [Fact]
    public void An_init_image_with_a_base_size_is_refused_because_the_image_is_the_base()
    {
        var error = SingleError(Hires() with { InitImage = "jobs/x/init.png", BaseWidth = 512, BaseHeight = 512 });

        error.Field.ShouldBe("baseWidth");
        error.Message.ShouldContain("initImage");
    }

    [Fact]
    public void Count_and_sweeps_are_refused_for_hires()
    {
        SingleError(Hires() with { Count = 2 }).Field.ShouldBe("count");
        SingleError(Hires() with { Sweep = new SweepRequest { Seeds = [1, 2] } }).Field.ShouldBe("sweep");
        Validator.Validate(Hires() with { Count = 1 }).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("tile")]
    [InlineData("overlap")]
    [InlineData("baseWidth")]
    [InlineData("baseHeight")]
    public void Hires_fields_are_refused_in_other_modes_naming_the_field(string field)
    {
        var request = JobRequestValidatorTests.Valid();
        request = field switch
        {
            "tile" => request with { Tile = 512 },
            "overlap" => request with { Overlap = 64 },
            "baseWidth" => request with { BaseWidth = 512 },
            _ => request with { BaseHeight = 512 },
        };

        var error = SingleError(request);

        error.Field.ShouldBe(field);
        error.Message.ShouldContain("hires");
    }

    [Fact]
    public void Lcm_steps_are_still_checked_for_hires()
    {
        SingleError(Hires() with { Sampler = KnownSamplers.Lcm, Steps = 60 }).Field.ShouldBe("steps");
    }

    [Fact]
    public void An_upscaler_is_a_hires_field_named_among_the_known_models()
    {
        var known = new JobRequestValidator(knownModels: new HashSet<string>(["tiny-sd", "tiny-upscaler-x2"], StringComparer.Ordinal));

        known.Validate(Hires() with { Upscaler = "tiny-upscaler-x2" }).ShouldBeEmpty();
        Validator.Validate(Hires() with { Upscaler = "anything" }).ShouldBeEmpty();
        SingleError(Hires() with { Upscaler = "missing" }, known).ShouldSatisfyAllConditions(
            e => e.Field.ShouldBe("upscaler"),
            e => e.Message.ShouldContain("'missing' is not available"));
        SingleError(Hires() with { Upscaler = " " }).Field.ShouldBe("upscaler");
        var notHires = SingleError(JobRequestValidatorTests.Valid() with { Upscaler = "tiny-upscaler-x2" });
        (notHires.Field, notHires.Message).ShouldBe(("upscaler", $"upscaler is only used by mode {RenderModes.Hires} (it upscales the base under each tile); remove it or set mode to {RenderModes.Hires}."));
    }
}
