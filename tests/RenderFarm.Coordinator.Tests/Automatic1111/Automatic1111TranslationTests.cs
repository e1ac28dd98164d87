using System.Text.Json;
using RenderFarm.Coordinator.Automatic1111;

namespace RenderFarm.Coordinator.Tests.Automatic1111;

/// <summary>The pure mapping rules: A1111 sampler names, hires fix onto a hires job, batches onto counts and seeds.</summary>
public sealed class Automatic1111TranslationTests
{
    [Theory]
    [InlineData("Euler a", null, "euler_a")]
    [InlineData("k_euler_a", null, "euler_a")]
    [InlineData("euler", null, "euler")]
    [InlineData("LMS", "Automatic", "lms")]
    [InlineData("DDIM", null, "ddim")]
    [InlineData("PLMS", null, "plms")]
    [InlineData("DPM++ 2M", null, "dpmpp_2m")]
    [InlineData("DPM++ 2M", "Karras", "dpmpp_2m_karras")]
    [InlineData("DPM++ 2M", "karras", "dpmpp_2m_karras")]
    [InlineData("DPM++ 2M Karras", null, "dpmpp_2m_karras")]
    [InlineData("LCM", null, "lcm")]
    public void A1111_sampler_names_map_onto_the_farms(string name, string? scheduler, string farm) =>
        Automatic1111Samplers.Resolve(name, scheduler, out _).ShouldBe(farm);

    [Fact]
    public void Every_farm_sampler_has_an_a1111_name_and_that_name_is_the_one_the_pngs_carry()
    {
        Automatic1111Samplers.All.Select(e => e.Farm).Distinct().Order().ShouldBe(RenderFarm.Domain.Requests.KnownSamplers.All.Order());
        foreach (var entry in Automatic1111Samplers.All)
        {
            RenderFarm.Diffusion.Imaging.GenerationParameters.DisplayName(entry.Farm).ShouldBe(entry.Name);
        }
    }

    [Theory]
    [InlineData("Heun", null, "Sampler not found")]
    [InlineData("Euler a", "Karras", "Karras")]
    [InlineData("Euler", "Exponential", "Scheduler not found")]
    public void A_sampler_or_schedule_the_farm_lacks_is_refused_by_name(string name, string? scheduler, string problem)
    {
        Automatic1111Samplers.Resolve(name, scheduler, out var why).ShouldBeNull();
        why.ShouldContain(problem);
    }

    [Theory]
    [InlineData(512, 512, 2.0, 0, 0, 1024, 1024)]
    [InlineData(512, 768, 1.5, 0, 0, 768, 1152)]
    [InlineData(512, 512, 1.3, 0, 0, 664, 664)] // 665.6 truncated as A1111 does, then down to whole latent cells
    [InlineData(512, 768, 2.0, 1024, 0, 1024, 1536)]
    [InlineData(512, 768, 2.0, 0, 1536, 1024, 1536)]
    [InlineData(512, 512, 2.0, 1024, 768, 1024, 768)]
    public void The_hires_target_follows_a1111s_rule_in_whole_latent_cells(int width, int height, double scale, int resizeX, int resizeY, int targetWidth, int targetHeight) =>
        Automatic1111Translation.Target(width, height, scale, resizeX, resizeY).ShouldBe((targetWidth, targetHeight));

    [Fact]
    public void A_batch_is_one_job_counting_batch_size_times_n_iter_from_the_seed()
    {
        var body = Parse<Txt2ImgBody>("""{"prompt": "p", "seed": 10, "batch_size": 3, "n_iter": 2, "sampler_name": "Euler a", "cfg_scale": 5}""");

        var call = ((Translation.Ok)Automatic1111Translation.Translate(body, null)).Call;

        call.Jobs.Count.ShouldBe(1);
        (call.Jobs[0].Count, call.Jobs[0].Seed, call.Jobs[0].Sampler, call.Jobs[0].GuidanceScale).ShouldBe((6, 10L, "euler_a", 5.0));
        (call.Jobs[0].Width, call.Jobs[0].Height, call.Jobs[0].Steps).ShouldBe((512, 512, 50));
        call.Jobs[0].Model.ShouldBeNull();
        call.Images.ShouldBe(6);
    }

    [Fact]
    public void Seed_minus_one_leaves_the_seed_to_the_job_api_and_the_options_checkpoint_applies()
    {
        var body = Parse<Txt2ImgBody>("""{"prompt": "p", "seed": -1}""");

        var job = ((Translation.Ok)Automatic1111Translation.Translate(body, "sd15")).Call.Jobs[0];

        job.Seed.ShouldBeNull();
        job.Model.ShouldBe("sd15");
        job.Sampler.ShouldBe("euler");
    }

    [Fact]
    public void Hires_fix_is_one_hires_job_per_image_with_the_first_pass_as_base_and_consecutive_seeds()
    {
        var body = Parse<Txt2ImgBody>("""
            {"prompt": "p", "seed": 7, "batch_size": 2, "width": 512, "height": 768, "enable_hr": true, "hr_scale": 2,
             "denoising_strength": 0.55, "override_settings": {"sd_model_checkpoint": "sd15 [abcdef0123]"}}
            """);

        var call = ((Translation.Ok)Automatic1111Translation.Translate(body, "tiny-sd")).Call;

        call.Hires.ShouldBeTrue();
        call.Jobs.Select(j => j.Seed).ShouldBe([7L, 8L]);
        var job = call.Jobs[0];
        (job.Mode, job.Width, job.Height, job.BaseWidth, job.BaseHeight).ShouldBe(("hires", 1024, 1536, 512, 768));
        (job.Strength, job.Tile, job.Count, job.Model).ShouldBe((0.55, 1536, (int?)null, "sd15"));
    }

    [Fact]
    public void Hires_fix_past_the_largest_tile_is_refined_in_the_default_tiles()
    {
        var body = Parse<Txt2ImgBody>("""{"prompt": "p", "width": 768, "height": 768, "enable_hr": true, "hr_scale": 4}""");

        var job = ((Translation.Ok)Automatic1111Translation.Translate(body, null)).Call.Jobs[0];

        (job.Width, job.Height, job.Tile).ShouldBe((3072, 3072, (int?)null));
    }

    [Fact]
    public void Whole_numbers_are_read_as_pydantic_reads_them_and_fractions_are_refused()
    {
        var body = Parse<Txt2ImgBody>("""{"width": 512.0, "height": "768", "seed": 4294967295.0, "steps": 20}""");

        (body.Width, body.Height, body.Seed, body.Steps).ShouldBe((512, 768, 4294967295L, 20));
        Should.Throw<JsonException>(() => Parse<Txt2ImgBody>("""{"steps": 20.5}"""));
        Should.Throw<JsonException>(() => Parse<Txt2ImgBody>("""{"width": 1e12}"""));
    }

    private static T Parse<T>(string json) => JsonSerializer.Deserialize<T>(json, Automatic1111Json.Options)!;
}

/// <summary>Start-up validation of <c>Coordinator:Automatic1111</c>: a bad value stops the host with the key named.</summary>
public sealed class Automatic1111OptionsTests
{
    [Fact]
    public void The_defaults_are_valid_and_wait_ten_minutes() =>
        (new Automatic1111OptionsValidator().Validate(null, new Automatic1111Options()).Succeeded, new Automatic1111Options().WaitTimeout)
            .ShouldBe((true, TimeSpan.FromMinutes(10)));

    [Theory]
    [InlineData("00:00:00", "00:00:01", "WaitTimeout")]
    [InlineData("2.00:00:00", "00:00:01", "WaitTimeout")]
    [InlineData("00:10:00", "00:00:00", "PollInterval")]
    public void A_setting_out_of_range_fails_naming_the_key(string wait, string poll, string key)
    {
        var options = new Automatic1111Options { WaitTimeout = TimeSpan.Parse(wait), PollInterval = TimeSpan.Parse(poll) };

        var result = new Automatic1111OptionsValidator().Validate(null, options);

        result.Failed.ShouldBeTrue();
        result.FailureMessage.ShouldContain($"Coordinator:Automatic1111:{key}");
    }
}
