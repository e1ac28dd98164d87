using RenderFarm.Domain.Items;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.Tests.Requests;

namespace RenderFarm.Domain.Tests.Items;

public class WorkUnitPlannerTests
{
    private static IEnumerable<ItemSpec> Items(int count, long seed = 0, string sampler = "euler", int steps = 30, double guidance = 7.5, string model = "sd15", int width = 512) =>
        Enumerable.Range(0, count).Select(i => new ItemSpec(i, seed + i, "p", "", width, 512, steps, guidance, sampler, model, "txt2img", null, null, null));

    [Fact]
    public void Default_unit_size_is_8() => new WorkUnitPlanner().MaxItemsPerUnit.ShouldBe(8);

    [Fact]
    public void Identical_items_split_into_full_units_and_a_remainder()
    {
        var units = new WorkUnitPlanner().Plan(Items(20)).ToList();

        units.Select(u => u.Count).ShouldBe([8, 8, 4]);
        units.SelectMany(u => u).Select(i => i.Index).ShouldBe(Enumerable.Range(0, 20).Select(i => (long)i));
    }

    [Fact]
    public void Unit_size_is_configurable()
    {
        new WorkUnitPlanner(3).Plan(Items(7)).Select(u => u.Count).ShouldBe([3, 3, 1]);
        new WorkUnitPlanner(1).Plan(Items(3)).Select(u => u.Count).ShouldBe([1, 1, 1]);
        Should.Throw<ArgumentOutOfRangeException>(() => new WorkUnitPlanner(0));
    }

    [Theory]
    [InlineData("sampler")]
    [InlineData("steps")]
    [InlineData("guidance")]
    [InlineData("model")]
    [InlineData("size")]
    public void A_change_in_a_batch_setting_starts_a_new_unit(string setting)
    {
        var second = setting switch
        {
            "sampler" => Items(3, sampler: "ddim"),
            "steps" => Items(3, steps: 20),
            "guidance" => Items(3, guidance: 5),
            "model" => Items(3, model: "sdxl"),
            _ => Items(3, width: 768),
        };
        var units = new WorkUnitPlanner().Plan(Items(2).Concat(second)).ToList();

        units.Select(u => u.Count).ShouldBe([2, 3]);
    }

    [Fact]
    public void Different_prompts_and_seeds_share_a_unit()
    {
        var items = Items(4).Select((i, k) => i with { Prompt = $"prompt {k}", Seed = k * 1000 });
        new WorkUnitPlanner().Plan(items).Select(u => u.Count).ShouldBe([4]);
    }

    [Fact]
    public void Only_consecutive_items_are_grouped()
    {
        var items = Items(2).Concat(Items(2, sampler: "ddim")).Concat(Items(2));
        new WorkUnitPlanner().Plan(items).Select(u => u.Count).ShouldBe([2, 2, 2]);
    }

    [Fact]
    public void Empty_input_plans_no_units() => new WorkUnitPlanner().Plan([]).ShouldBeEmpty();

    [Fact]
    public void A_sampler_sweep_fills_whole_units_per_sampler()
    {
        var request = JobRequestValidatorTests.Valid() with
        {
            Sweep = new SweepRequest { Prompts = Enumerable.Range(0, 10).Select(i => $"p{i}").ToArray(), Samplers = ["euler", "ddim"] },
        };
        var units = new WorkUnitPlanner().Plan(SweepExpansion.For(request, 0, "sd15").Items()).ToList();

        units.Select(u => u.Count).ShouldBe([8, 2, 8, 2]);
        units.ShouldAllBe(u => u.All(i => i.BatchKey == u[0].BatchKey));
    }

    [Fact]
    public void Planning_streams_its_input()
    {
        // An endless source: planning must yield units without reading to the end.
        static IEnumerable<ItemSpec> Endless()
        {
            for (long i = 0; ; i++)
            {
                yield return new ItemSpec(i, i, "p", "", 512, 512, 30, 7.5, "euler", "sd15", "txt2img", null, null, null);
            }
        }

        new WorkUnitPlanner().Plan(Endless()).Take(3).Sum(u => u.Count).ShouldBe(24);
    }

    [Fact]
    public void Any_item_type_can_be_planned_with_a_key_selector()
    {
        var key = new BatchKey("sd15", 512, 512, "euler", 30, 7.5, "txt2img", null);
        var other = key with { Steps = 20 };
        var rows = new[] { (Id: 1, Key: key), (Id: 2, Key: key), (Id: 3, Key: other) };

        new WorkUnitPlanner().Plan(rows, r => r.Key).Select(u => u.Select(r => r.Id).ToArray()).ShouldBe([[1, 2], [3]]);
    }
}
