using RenderFarm.Domain.Requests;

namespace RenderFarm.Domain.Tests.Requests;

public class JobRequestValidatorTests
{
    private static readonly JobRequestValidator Validator = new();

    internal static JobRequest Valid() => new()
    {
        Prompt = "a lighthouse at dusk",
        Width = 512,
        Height = 512,
        Steps = 30,
        GuidanceScale = 7.5,
        Sampler = "euler_a",
    };

    private static ValidationError SingleError(JobRequest request, JobRequestValidator? validator = null)
    {
        var errors = (validator ?? Validator).Validate(request);
        errors.Count.ShouldBe(1, string.Join(Environment.NewLine, errors));
        return errors[0];
    }

    private static void ShouldFailWith(JobRequest request, string field, string fixHint, JobRequestValidator? validator = null)
    {
        var error = SingleError(request, validator);
        error.Field.ShouldBe(field);
        error.Message.ShouldContain(fixHint, Case.Insensitive);
    }

    [Fact]
    public void Minimal_txt2img_request_is_valid() => Validator.Validate(Valid()).ShouldBeEmpty();

    [Fact]
    public void Fully_specified_requests_in_every_mode_are_valid()
    {
        var validator = new JobRequestValidator(knownModels: new HashSet<string>(StringComparer.Ordinal) { "sd15", "sdxl" });
        var full = Valid() with
        {
            NegativePrompt = "blurry",
            Seed = 42,
            Count = 4,
            Model = "sd15",
            Priority = 10,
            Width = 2048,
            Height = 2048,
            Steps = 1000,
            GuidanceScale = 50,
        };
        validator.Validate(full).ShouldBeEmpty();
        validator.Validate(full with { Mode = "img2img", InitImage = "uploads/a.png", Strength = 1 }).ShouldBeEmpty();
        validator.Validate(full with { Mode = "img2img", InitImage = "uploads/a.png" }).ShouldBeEmpty();
        validator.Validate(full with { Mode = "inpaint", InitImage = "uploads/a.png", Mask = "uploads/m.png", Strength = 0.01 }).ShouldBeEmpty();
        validator.Validate(full with { Steps = 1, GuidanceScale = 0, Width = 64, Height = 64, Seed = 0 }).ShouldBeEmpty();
    }

    [Fact]
    public void Valid_sweep_passes()
    {
        var request = Valid() with
        {
            Sweep = new SweepRequest
            {
                Prompts = ["a", "b"],
                Seeds = [1, 2, 3],
                GuidanceScales = [5, 7.5],
                Steps = [20, 30],
                Samplers = ["ddim", "lcm"],
            },
        };
        Validator.Validate(request).ShouldBeEmpty();
    }

    [Fact]
    public void Negative_prompts_axis_replaces_the_single_field_and_names_a_bad_entry()
    {
        Validator.Validate(Valid() with { NegativePrompt = "  ", Sweep = new SweepRequest { NegativePrompts = ["", "blurry"] } }).ShouldBeEmpty();
        ShouldFailWith(Valid() with { Sweep = new SweepRequest { NegativePrompts = ["blurry", " "] } }, "sweep.negativePrompts[1]", "only whitespace");
        ShouldFailWith(Valid() with { Sweep = new SweepRequest { NegativePrompts = [] } }, "sweep.negativePrompts", "at least one value");
        ShouldFailWith(Valid() with { Sweep = new SweepRequest { NegativePrompts = [new string('x', ValidationLimits.DefaultMaxPromptLength + 1)] } }, "sweep.negativePrompts[0]", "");
    }

    [Fact]
    public void Sizes_axis_replaces_width_and_height_for_txt2img_and_names_a_bad_entry()
    {
        Validator.Validate(Valid() with { Width = 0, Height = 0, Sweep = new SweepRequest { Sizes = [new ImageSize(512, 512), new ImageSize(768, 512)] } }).ShouldBeEmpty();
        ShouldFailWith(Valid() with { Sweep = new SweepRequest { Sizes = [new ImageSize(512, 512), new ImageSize(500, 512)] } }, "sweep.sizes[1].width", "not a multiple of 8");
        ShouldFailWith(Valid() with { Sweep = new SweepRequest { Sizes = [new ImageSize(512, 4)] } }, "sweep.sizes[0].height", "at least");
        ShouldFailWith(Valid() with { Sweep = new SweepRequest { Sizes = [new ImageSize(8192, 8192)] } }, "sweep.sizes[0].width", "over the limit");
        ShouldFailWith(Valid() with { Sweep = new SweepRequest { Sizes = [] } }, "sweep.sizes", "at least one value");
        ShouldFailWith(Valid() with { Mode = "img2img", InitImage = "uploads/a.png", Sweep = new SweepRequest { Sizes = [new ImageSize(512, 512)] } }, "sweep.sizes", "only used by txt2img");
    }

    [Fact]
    public void Strengths_axis_is_for_img2img_and_inpaint_with_each_entry_in_range()
    {
        var img2img = Valid() with { Mode = "img2img", InitImage = "uploads/a.png" };
        Validator.Validate(img2img with { Strength = 7, Sweep = new SweepRequest { Strengths = [0.2, 1] } }).ShouldBeEmpty();
        ShouldFailWith(img2img with { Sweep = new SweepRequest { Strengths = [0.5, 0] } }, "sweep.strengths[1]", "greater than 0 and at most 1");
        ShouldFailWith(img2img with { Sweep = new SweepRequest { Strengths = [] } }, "sweep.strengths", "at least one value");
        ShouldFailWith(Valid() with { Sweep = new SweepRequest { Strengths = [0.5] } }, "sweep.strengths", "only used by img2img and inpaint");
    }

    [Fact]
    public void Sweep_axes_stand_in_for_their_single_fields()
    {
        var request = Valid() with
        {
            Prompt = null!,
            Steps = 0,
            GuidanceScale = double.NaN,
            Sampler = null!,
            Sweep = new SweepRequest { Prompts = ["a"], Steps = [20], GuidanceScales = [7], Samplers = ["lcm"] },
        };
        Validator.Validate(request).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public void Missing_prompt_is_rejected(string? prompt) =>
        ShouldFailWith(Valid() with { Prompt = prompt! }, "prompt", "describe the image");

    [Fact]
    public void Prompt_longer_than_limit_is_rejected()
    {
        Validator.Validate(Valid() with { Prompt = new string('a', 10_000) }).ShouldBeEmpty();
        ShouldFailWith(Valid() with { Prompt = new string('a', 10_001) }, "prompt", "shorten it to at most 10000");
    }

    [Fact]
    public void Negative_prompt_longer_than_limit_is_rejected() =>
        ShouldFailWith(Valid() with { NegativePrompt = new string('a', 10_001) }, "negativePrompt", "shorten it");

    [Fact]
    public void Prompt_limit_is_configurable() =>
        ShouldFailWith(Valid() with { Prompt = "12345" }, "prompt", "at most 4", new JobRequestValidator(new ValidationLimits { MaxPromptLength = 4 }));

    [Theory]
    [InlineData(513, 512, "width", "use 512 or 520")]
    [InlineData(512, 100, "height", "use 96 or 104")]
    public void Dimensions_not_multiple_of_8_are_rejected(int width, int height, string field, string fix) =>
        ShouldFailWith(Valid() with { Width = width, Height = height }, field, fix);

    [Theory]
    [InlineData(56, 512, "width")]
    [InlineData(512, 0, "height")]
    [InlineData(-64, 512, "width")]
    public void Dimensions_below_64_are_rejected(int width, int height, string field) =>
        ShouldFailWith(Valid() with { Width = width, Height = height }, field, "at least 64");

    [Fact]
    public void Image_over_pixel_limit_is_rejected()
    {
        ShouldFailWith(Valid() with { Width = 2048, Height = 2056 }, "width", "reduce width or height");
        ShouldFailWith(Valid() with { Width = 4096, Height = 4096 }, "width", "2048×2048");
    }

    [Fact]
    public void Pixel_limit_is_configurable()
    {
        var validator = new JobRequestValidator(new ValidationLimits { MaxPixels = 8192L * 8192 });
        validator.Validate(Valid() with { Width = 8192, Height = 8192 }).ShouldBeEmpty();
        ShouldFailWith(Valid() with { Width = 8192, Height = 8200 }, "width", "8192×8192", validator);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(1001)]
    public void Steps_outside_1_to_1000_are_rejected(int steps) =>
        ShouldFailWith(Valid() with { Steps = steps }, "steps", "between 1 and 1000");

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void Guidance_not_finite_is_rejected(double guidance) =>
        ShouldFailWith(Valid() with { GuidanceScale = guidance }, "guidanceScale", "between 0 and 50");

    [Theory]
    [InlineData(-0.5)]
    [InlineData(50.01)]
    [InlineData(750)]
    public void Guidance_outside_0_to_50_is_rejected(double guidance) =>
        ShouldFailWith(Valid() with { GuidanceScale = guidance }, "guidanceScale", "between 0 and 50");

    [Theory]
    [InlineData("euler-a")]
    [InlineData("Euler")]
    [InlineData("")]
    [InlineData(null)]
    public void Unknown_sampler_is_rejected(string? sampler) =>
        ShouldFailWith(Valid() with { Sampler = sampler! }, "sampler", "use one of: ddim, plms, euler, euler_a, lms, dpmpp_2m, dpmpp_2m_karras, lcm");

    [Fact]
    public void Every_known_sampler_is_accepted()
    {
        foreach (var sampler in KnownSamplers.All)
        {
            Validator.Validate(Valid() with { Sampler = sampler }).ShouldBeEmpty();
        }
    }

    [Fact]
    public void Unknown_model_is_rejected_when_the_host_supplies_models()
    {
        var validator = new JobRequestValidator(knownModels: new HashSet<string>(StringComparer.Ordinal) { "sd15", "sdxl" });
        ShouldFailWith(Valid() with { Model = "sd3" }, "model", "use one of: sd15, sdxl", validator);
        validator.Validate(Valid()).ShouldBeEmpty();
    }

    [Fact]
    public void Any_model_is_accepted_when_the_host_supplies_none() =>
        Validator.Validate(Valid() with { Model = "whatever" }).ShouldBeEmpty();

    [Fact]
    public void Blank_model_is_rejected() =>
        ShouldFailWith(Valid() with { Model = " " }, "model", "leave the field out");

    [Fact]
    public void Negative_seed_is_rejected() =>
        ShouldFailWith(Valid() with { Seed = -1 }, "seed", "between 0 and");

    [Fact]
    public void Seed_beyond_json_safe_integer_is_rejected()
    {
        Validator.Validate(Valid() with { Seed = ValidationLimits.MaxSeed }).ShouldBeEmpty();
        ShouldFailWith(Valid() with { Seed = ValidationLimits.MaxSeed + 1 }, "seed", "between 0 and 9007199254740991");
    }

    [Fact]
    public void Seed_whose_last_item_overflows_is_rejected() =>
        ShouldFailWith(Valid() with { Seed = ValidationLimits.MaxSeed - 1, Count = 3 }, "seed", "at most 9007199254740989");

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void Count_below_1_is_rejected(int count) =>
        ShouldFailWith(Valid() with { Count = count }, "count", "at least 1");

    [Fact]
    public void Count_over_limit_is_rejected()
    {
        Validator.Validate(Valid() with { Count = 10_000 }).ShouldBeEmpty();
        ShouldFailWith(Valid() with { Count = 10_001 }, "count", "lower it");
        ShouldFailWith(Valid() with { Count = 5 }, "count", "lower it", new JobRequestValidator(new ValidationLimits { MaxCount = 4 }));
    }

    [Fact]
    public void Count_with_explicit_seeds_is_rejected() =>
        ShouldFailWith(Valid() with { Count = 2, Sweep = new SweepRequest { Seeds = [1, 2] } }, "count", "remove count or list more seeds");

    [Fact]
    public void Sweep_over_item_limit_is_rejected()
    {
        var sweep = new SweepRequest { Prompts = Enumerable.Repeat("p", 1001).ToArray(), Seeds = Enumerable.Range(0, 1000).Select(i => (long)i).ToArray() };
        ShouldFailWith(Valid() with { Sweep = sweep }, "sweep", "shorten the sweep axes");
    }

    [Fact]
    public void Count_times_sweep_over_item_limit_is_rejected()
    {
        var validator = new JobRequestValidator(new ValidationLimits { MaxSweepItems = 100 });
        validator.Validate(Valid() with { Count = 10, Sweep = new SweepRequest { Steps = Enumerable.Repeat(20, 10).ToArray() } }).ShouldBeEmpty();
        ShouldFailWith(Valid() with { Count = 11, Sweep = new SweepRequest { Steps = Enumerable.Repeat(20, 10).ToArray() } }, "sweep", "over the limit of 100", validator);
    }

    [Fact]
    public void Count_over_configured_item_limit_without_sweep_names_count()
    {
        var validator = new JobRequestValidator(new ValidationLimits { MaxSweepItems = 100 });
        ShouldFailWith(Valid() with { Count = 101 }, "count", "over the limit of 100", validator);
    }

    [Fact]
    public void Empty_sweep_axis_is_rejected() =>
        ShouldFailWith(Valid() with { Sweep = new SweepRequest { Samplers = [] } }, "sweep.samplers", "list at least one value or leave the field out");

    [Theory]
    [MemberData(nameof(BadSweepEntries))]
    public void Bad_sweep_entries_name_their_index(SweepRequest sweep, string field, string fix) =>
        ShouldFailWith(Valid() with { Sweep = sweep }, field, fix);

    public static TheoryData<SweepRequest, string, string> BadSweepEntries() => new()
    {
        { new SweepRequest { Prompts = ["ok", ""] }, "sweep.prompts[1]", "describe the image" },
        { new SweepRequest { Seeds = [1, -2] }, "sweep.seeds[1]", "between 0 and" },
        { new SweepRequest { GuidanceScales = [7, double.NaN] }, "sweep.guidanceScales[1]", "between 0 and 50" },
        { new SweepRequest { Steps = [0] }, "sweep.steps[0]", "between 1 and 1000" },
        { new SweepRequest { Samplers = ["euler", "k_euler"] }, "sweep.samplers[1]", "use one of" },
    };

    [Fact]
    public void Many_bad_sweep_entries_produce_a_bounded_number_of_errors()
    {
        var sweep = new SweepRequest { Seeds = Enumerable.Repeat(-1L, 100_000).ToArray() };
        var errors = Validator.Validate(Valid() with { Sweep = sweep });
        errors.Count.ShouldBe(JobRequestValidator.MaxErrorsPerAxis + 1);
        errors[^1].Field.ShouldBe("sweep.seeds");
    }

    [Fact]
    public void Unknown_mode_is_rejected() =>
        ShouldFailWith(Valid() with { Mode = "outpaint" }, "mode", "use one of: txt2img, img2img, inpaint");

    [Theory]
    [InlineData("img2img")]
    [InlineData("inpaint")]
    public void Modes_from_an_image_require_init_image(string mode) =>
        ShouldFailWith(Valid() with { Mode = mode, Mask = mode == "inpaint" ? "m.png" : null }, "initImage", "pass its artifact key");

    [Fact]
    public void Inpaint_requires_mask() =>
        ShouldFailWith(Valid() with { Mode = "inpaint", InitImage = "a.png" }, "mask", "upload a mask");

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.1)]
    [InlineData(1.0001)]
    [InlineData(double.NaN)]
    public void Strength_outside_0_exclusive_to_1_is_rejected(double strength)
    {
        ShouldFailWith(Valid() with { Mode = "img2img", InitImage = "a.png", Strength = strength }, "strength", "greater than 0 and at most 1");
        ShouldFailWith(Valid() with { Mode = "inpaint", InitImage = "a.png", Mask = "m.png", Strength = strength }, "strength", "greater than 0 and at most 1");
    }

    [Fact]
    public void Image_inputs_on_txt2img_are_rejected()
    {
        ShouldFailWith(Valid() with { InitImage = "a.png" }, "initImage", "remove it or set mode");
        ShouldFailWith(Valid() with { Strength = 0.5 }, "strength", "remove it or set mode");
        ShouldFailWith(Valid() with { Mask = "m.png" }, "mask", "set mode to inpaint");
        ShouldFailWith(Valid() with { Mode = "img2img", InitImage = "a.png", Mask = "m.png" }, "mask", "set mode to inpaint");
    }

    [Theory]
    [InlineData(-101)]
    [InlineData(101)]
    public void Priority_outside_range_is_rejected(int priority) =>
        ShouldFailWith(Valid() with { Priority = priority }, "priority", "between -100 and 100");

    [Fact]
    public void All_errors_are_reported_at_once()
    {
        var errors = Validator.Validate(Valid() with { Width = 10, Steps = 0, Sampler = "x", Seed = -1 });
        errors.Select(e => e.Field).ShouldBe(["width", "steps", "sampler", "seed"], ignoreOrder: true);
    }

    [Fact]
    public void Million_item_sweep_validates_without_expanding()
    {
        // 1000 prompts × 1000 seeds: the validator touches 2000 entries, never a million items.
        var sweep = new SweepRequest
        {
            Prompts = Enumerable.Range(0, 1000).Select(i => $"prompt {i}").ToArray(),
            Seeds = Enumerable.Range(0, 1000).Select(i => (long)i).ToArray(),
        };
        Validator.Validate(Valid() with { Sweep = sweep }).ShouldBeEmpty();
    }

    [Fact]
    public void Absurd_sweep_is_reported_without_overflow()
    {
        // 5 axes of 10^4 entries: 10^20 items, past long.MaxValue; the count saturates instead of wrapping.
        var big = 10_000;
        var sweep = new SweepRequest
        {
            Prompts = Enumerable.Repeat("p", big).ToArray(),
            Seeds = Enumerable.Range(0, big).Select(i => (long)i).ToArray(),
            GuidanceScales = Enumerable.Repeat(7.0, big).ToArray(),
            Steps = Enumerable.Repeat(20, big).ToArray(),
            Samplers = Enumerable.Repeat("euler", big).ToArray(),
        };
        ShouldFailWith(Valid() with { Sweep = sweep }, "sweep", "more than 2^63");
    }
}
