using RenderFarm.Domain.Items;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.Tests.Requests;

namespace RenderFarm.Domain.Tests.Items;

public class SweepExpansionTests
{
    private static JobRequest ThreePromptsTwoSeedsTwoSamplers() => JobRequestValidatorTests.Valid() with
    {
        Sweep = new SweepRequest
        {
            Prompts = ["cat", "dog", "fox"],
            Seeds = [100, 200],
            Samplers = ["euler", "ddim"],
        },
    };

    [Fact]
    public void Count_is_the_product_of_the_axes()
    {
        SweepExpansion.CountItems(ThreePromptsTwoSeedsTwoSamplers()).ShouldBe(12);
        SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15").Count.ShouldBe(12);
    }

    [Fact]
    public void Count_without_sweep_is_count_or_one()
    {
        SweepExpansion.CountItems(JobRequestValidatorTests.Valid()).ShouldBe(1);
        SweepExpansion.CountItems(JobRequestValidatorTests.Valid() with { Count = 7 }).ShouldBe(7);
    }

    [Fact]
    public void Count_multiplies_sweep_combinations() =>
        SweepExpansion.CountItems(JobRequestValidatorTests.Valid() with
        {
            Count = 4,
            Sweep = new SweepRequest { Prompts = ["a", "b", "c"], Steps = [10, 20] },
        }).ShouldBe(24);

    [Fact]
    public void Empty_axis_counts_zero() =>
        SweepExpansion.CountItems(JobRequestValidatorTests.Valid() with { Sweep = new SweepRequest { Prompts = [] } }).ShouldBe(0);

    [Fact]
    public void Item_7_is_the_second_sampler_first_prompt_second_seed()
    {
        // Slowest first: samplers (2) × prompts (3) × seeds (2). 7 = 1·6 + 0·2 + 1.
        var item = SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15").At(7);

        item.Index.ShouldBe(7);
        item.Sampler.ShouldBe("ddim");
        item.Prompt.ShouldBe("cat");
        item.Seed.ShouldBe(200);
        item.Model.ShouldBe("sd15");
        item.Steps.ShouldBe(30);
        item.GuidanceScale.ShouldBe(7.5);
    }

    [Fact]
    public void Every_combination_appears_exactly_once()
    {
        var items = SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15").Items().ToList();

        items.Select(i => i.Index).ShouldBe(Enumerable.Range(0, 12).Select(i => (long)i));
        items.Select(i => (i.Sampler, i.Prompt, i.Seed)).Distinct().Count().ShouldBe(12);
        items.Take(6).ShouldAllBe(i => i.Sampler == "euler");
    }

    [Fact]
    public void Indexing_is_deterministic()
    {
        var a = SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15");
        var b = SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15");
        for (var i = 0; i < a.Count; i++)
        {
            a.At(i).ShouldBe(b.At(i));
        }
    }

    [Fact]
    public void Without_explicit_seeds_item_i_uses_seed_plus_i()
    {
        var request = JobRequestValidatorTests.Valid() with
        {
            Seed = 1000,
            Count = 2,
            Sweep = new SweepRequest { Prompts = ["a", "b"], GuidanceScales = [5, 9] },
        };
        var items = SweepExpansion.For(request, 0, "sd15").Items().ToList();

        items.Select(i => i.Seed).ShouldBe([1000L, 1001, 1002, 1003, 1004, 1005, 1006, 1007]);
        items.Select(i => i.Prompt).ShouldBe(["a", "a", "b", "b", "a", "a", "b", "b"]);
        items.Select(i => i.GuidanceScale).ShouldBe([5.0, 5, 5, 5, 9, 9, 9, 9]);
    }

    [Fact]
    public void Host_seed_is_used_only_when_request_has_none()
    {
        SweepExpansion.For(JobRequestValidatorTests.Valid(), 77, "sd15").At(0).Seed.ShouldBe(77);
        SweepExpansion.For(JobRequestValidatorTests.Valid() with { Seed = 5 }, 77, "sd15").At(0).Seed.ShouldBe(5);
        SweepExpansion.For(JobRequestValidatorTests.Valid() with { Model = "sdxl" }, 77, "sd15").Model.ShouldBe("sdxl");
    }

    [Fact]
    public void Every_item_records_its_parameters()
    {
        var request = JobRequestValidatorTests.Valid() with
        {
            NegativePrompt = "blurry",
            Mode = "inpaint",
            InitImage = "in.png",
            Mask = "mask.png",
            Width = 768,
            Height = 512,
        };
        var item = SweepExpansion.For(request, 3, "sd15").At(0);

        item.ShouldBe(new ItemSpec(0, 3, "a lighthouse at dusk", "blurry", 768, 512, 30, 7.5, "euler_a", "sd15", "inpaint", GenerationDefaults.Strength, "in.png", "mask.png"));
    }

    [Fact]
    public void Negative_prompts_vary_between_guidance_and_prompts_and_leave_other_jobs_indexes_alone()
    {
        var request = ThreePromptsTwoSeedsTwoSamplers() with
        {
            NegativePrompt = "ignored",
            Sweep = ThreePromptsTwoSeedsTwoSamplers().Sweep! with { NegativePrompts = ["", "blurry"] },
        };
        var withNegatives = SweepExpansion.For(request, 0, "sd15");
        var without = SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15");

        SweepExpansion.CountItems(request).ShouldBe(24);
        // Slowest first: samplers (2) × negative prompts (2) × prompts (3) × seeds (2). 13 = 1·12 + 0·6 + 0·2 + 1.
        var item = withNegatives.At(13);
        (item.Sampler, item.NegativePrompt, item.Prompt, item.Seed).ShouldBe(("ddim", "", "cat", 200L));
        withNegatives.At(6).NegativePrompt.ShouldBe("blurry");
        withNegatives.Items().Select(i => (i.Sampler, i.NegativePrompt, i.Prompt, i.Seed)).Distinct().Count().ShouldBe(24);
        without.Items().Select(i => (i.Index, i.Sampler, i.Prompt, i.Seed)).ShouldBe(
            Enumerable.Range(0, 12).Select(i => (Index: (long)i, Sampler: i < 6 ? "euler" : "ddim", Prompt: new[] { "cat", "dog", "fox" }[i / 2 % 3], Seed: i % 2 == 0 ? 100L : 200L)));
    }

    [Fact]
    public void Strengths_vary_between_guidance_and_negative_prompts_and_split_batches()
    {
        var request = JobRequestValidatorTests.Valid() with
        {
            Mode = "img2img",
            InitImage = "in.png",
            Strength = 0.9,
            Sweep = new SweepRequest { Prompts = ["cat", "dog"], Strengths = [0.3, 0.6], NegativePrompts = ["", "blurry"] },
        };
        var expansion = SweepExpansion.For(request, 10, "sd15");

        expansion.Count.ShouldBe(8);
        // strengths (2) × negative prompts (2) × prompts (2): 5 = 1·4 + 0·2 + 1.
        var item = expansion.At(5);
        (item.Strength, item.NegativePrompt, item.Prompt).ShouldBe((0.6, "", "dog"));
        expansion.Items().Select(i => i.Strength).ShouldBe([0.3, 0.3, 0.3, 0.3, 0.6, 0.6, 0.6, 0.6]);
        expansion.At(0).BatchKey.ShouldNotBe(expansion.At(4).BatchKey);
    }

    [Fact]
    public void Sizes_vary_slowest_replace_width_and_height_and_split_batches()
    {
        var request = ThreePromptsTwoSeedsTwoSamplers() with
        {
            Sweep = ThreePromptsTwoSeedsTwoSamplers().Sweep! with { Sizes = [new ImageSize(512, 512), new ImageSize(768, 512)] },
        };
        var expansion = SweepExpansion.For(request, 0, "sd15");

        expansion.Count.ShouldBe(24);
        // sizes (2) × samplers (2) × prompts (3) × seeds (2): 13 = 1·12 + 0·6 + 0·2 + 1, so the sweep without sizes repeats per size.
        var item = expansion.At(13);
        (item.Width, item.Height, item.Sampler, item.Prompt, item.Seed).ShouldBe((768, 512, "euler", "cat", 200L));
        var without = SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15").Items().ToList();
        expansion.Items().Take(12).Select(i => (i.Index, i.Width, i.Sampler, i.Prompt, i.Seed)).ShouldBe(without.Select(i => (i.Index, 512, i.Sampler, i.Prompt, i.Seed)));
        expansion.Items().Skip(12).ShouldAllBe(i => i.Width == 768 && i.Height == 512);
        new WorkUnitPlanner(8).Plan(expansion.Items()).ShouldAllBe(unit => unit.Select(i => i.Width).Distinct().Count() == 1);
    }

    [Fact]
    public void Txt2img_items_carry_no_strength_and_an_empty_negative_prompt()
    {
        var item = SweepExpansion.For(JobRequestValidatorTests.Valid(), 3, "sd15").At(0);
        item.Strength.ShouldBeNull();
        item.NegativePrompt.ShouldBe(string.Empty);
        item.Mode.ShouldBe("txt2img");
    }

    [Fact]
    public void Index_outside_the_job_is_rejected()
    {
        var expansion = SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15");
        Should.Throw<ArgumentOutOfRangeException>(() => expansion.At(12));
        Should.Throw<ArgumentOutOfRangeException>(() => expansion.At(-1));
    }

    [Fact]
    public void Unvalidated_empty_sweep_cannot_be_expanded() =>
        Should.Throw<ArgumentException>(() => SweepExpansion.For(JobRequestValidatorTests.Valid() with { Sweep = new SweepRequest { Seeds = [] } }, 0, "sd15"));

    [Fact]
    public void Host_seed_must_leave_room_for_every_item()
    {
        SweepExpansion.MaxBaseSeed(1).ShouldBe(ValidationLimits.MaxSeed);
        SweepExpansion.MaxBaseSeed(12).ShouldBe(ValidationLimits.MaxSeed - 11);
        var request = JobRequestValidatorTests.Valid() with { Count = 12 };
        SweepExpansion.For(request, SweepExpansion.MaxBaseSeed(12), "sd15").At(11).Seed.ShouldBe(ValidationLimits.MaxSeed);
        Should.Throw<ArgumentOutOfRangeException>(() => SweepExpansion.For(request, SweepExpansion.MaxBaseSeed(12) + 1, "sd15"));
        Should.Throw<ArgumentOutOfRangeException>(() => SweepExpansion.For(request, -1, "sd15"));
    }

    [Fact]
    public void Million_item_sweep_counts_and_indexes_without_expanding()
    {
        var request = JobRequestValidatorTests.Valid() with
        {
            Seed = 0,
            Sweep = new SweepRequest
            {
                Prompts = Enumerable.Range(0, 1000).Select(i => $"prompt {i}").ToArray(),
                Samplers = ["euler", "ddim", "dpmpp_2m", "lms"], // not lcm: it takes at most 50 steps
                Steps = Enumerable.Range(1, 250).ToArray(),
            },
        };
        new JobRequestValidator().Validate(request).ShouldBeEmpty();
        var expansion = SweepExpansion.For(request, 0, "sd15");

        expansion.Count.ShouldBe(1_000_000);
        var last = expansion.At(999_999);
        last.ShouldBe(expansion.At(999_999));
        (last.Sampler, last.Steps, last.Prompt, last.Seed).ShouldBe(("lms", 250, "prompt 999", 999_999L));
        var middle = expansion.At(250_000);
        (middle.Sampler, middle.Steps, middle.Prompt).ShouldBe(("ddim", 1, "prompt 0"));
    }

    [Fact]
    public void Pages_cover_the_job_in_order_with_a_short_last_page()
    {
        var expansion = SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15");
        var pages = expansion.Pages(5).ToList();

        pages.Select(p => p.Count).ShouldBe([5, 5, 2]);
        pages.SelectMany(p => p).ShouldBe(expansion.Items());
    }

    [Fact]
    public void Pages_and_items_resume_from_an_index()
    {
        var expansion = SweepExpansion.For(ThreePromptsTwoSeedsTwoSamplers(), 0, "sd15");
        expansion.Items(10).Select(i => i.Index).ShouldBe([10L, 11]);
        expansion.Pages(4, start: 9).Select(p => p.Count).ShouldBe([3]);
    }
}
