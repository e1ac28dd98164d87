using RenderFarm.Contracts;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Domain.Tests.Tiling;

public class HiresExpansionTests
{
    private static readonly JobRequest Request = new()
    {
        Prompt = "a harbour at dawn",
        NegativePrompt = "fog",
        Width = 1536,
        Height = 1024,
        Steps = 24,
        GuidanceScale = 6,
        Sampler = "euler",
        Mode = RenderModes.Hires,
        Seed = 99,
    };

    private static string Key(long index) => $"k/{index}";

    [Fact]
    public void Items_are_base_then_tiles_then_stitch_with_the_single_machine_seeds_and_prompts()
    {
        var expansion = HiresExpansion.For(Request, ValidationLimits.Default, seedIfUnset: 1, modelIfUnset: "tiny-sd", Key);
        var grid = TileGrid.Create(1536, 1024, HiresLimits.DefaultTile, HiresLimits.DefaultOverlap);

        var items = expansion.Items.ToList();

        items.Count.ShouldBe(grid.Tiles.Count + 2);
        items.Select(i => i.Spec.Index).ShouldBe([.. Enumerable.Range(0, items.Count).Select(i => (long)i)]);
        var (baseWidth, baseHeight) = HiresRequestRules.DefaultBaseSize(1536, 1024);
        items[0].Spec.ShouldSatisfyAllConditions(
            s => (s.Mode, s.Seed, s.Width, s.Height, s.Strength).ShouldBe((RenderModes.Txt2Img, 99L, baseWidth, baseHeight, (double?)null)),
            s => (s.Prompt, s.NegativePrompt, s.Steps, s.Sampler, s.Model).ShouldBe(("a harbour at dawn", "fog", 24, "euler", "tiny-sd")));
        items[0].Part.Role.ShouldBe(HiresRoles.Base);
        for (var t = 0; t < grid.Tiles.Count; t++)
        {
            var tile = items[t + 1];
            tile.Spec.Seed.ShouldBe(TileDerivation.Seed(99, t));
            tile.Spec.Prompt.ShouldBe(TileDerivation.Prompt("a harbour at dawn", t));
            (tile.Spec.Mode, tile.Spec.Width, tile.Spec.Height, tile.Spec.Strength).ShouldBe((RenderModes.HiresTile, grid.Tiles[t].Width, grid.Tiles[t].Height, (double?)HiresLimits.DefaultStrength));
            (tile.Part.Role, tile.Part.TileIndex, tile.Part.BaseImageKey).ShouldBe((HiresRoles.Tile, t, "k/0"));
            HiresExpansion.TileIndexOfItem(tile.Spec.Index, grid.Tiles.Count).ShouldBe(t);
        }

        var stitch = items[^1];
        (stitch.Spec.Mode, stitch.Spec.Width, stitch.Spec.Height, stitch.Spec.Seed).ShouldBe((RenderModes.HiresStitch, 1536, 1024, 99L));
        stitch.Part.TileKeys.ShouldBe([.. Enumerable.Range(1, grid.Tiles.Count).Select(i => $"k/{i}")]);
        HiresExpansion.TileIndexOfItem(0, grid.Tiles.Count).ShouldBeNull();
        HiresExpansion.TileIndexOfItem(stitch.Spec.Index, grid.Tiles.Count).ShouldBeNull();
    }

    [Fact]
    public void The_upscaler_goes_to_the_tiles_that_use_it_and_the_stitch_that_records_it()
    {
        var expansion = HiresExpansion.For(Request with { Upscaler = "tiny-upscaler-x2" }, ValidationLimits.Default, seedIfUnset: 1, modelIfUnset: "tiny-sd", Key);

        expansion.Base.Part.Upscaler.ShouldBeNull();
        expansion.Tiles.ShouldAllBe(t => t.Part.Upscaler == "tiny-upscaler-x2");
        expansion.Stitch.Part.Upscaler.ShouldBe("tiny-upscaler-x2");
        HiresExpansion.For(Request, ValidationLimits.Default, 1, "tiny-sd", Key).Items.ShouldAllBe(i => i.Part.Upscaler == null);
    }

    [Fact]
    public void A_given_base_image_is_the_base_at_its_own_size_and_the_tiles_read_it()
    {
        var expansion = HiresExpansion.For(Request with { Seed = null }, ValidationLimits.Default, seedIfUnset: 5, modelIfUnset: "tiny-sd", Key,
            new HiresBaseImage("jobs/j/init.png", 600, 400));

        expansion.Seed.ShouldBe(5);
        (expansion.Base.Spec.Width, expansion.Base.Spec.Height).ShouldBe((600, 400));
        expansion.Tiles.ShouldAllBe(t => t.Part.BaseImageKey == "jobs/j/init.png");
        expansion.Stitch.Part.BaseImageKey.ShouldBe("jobs/j/init.png");
    }

    [Fact]
    public void Only_valid_hires_requests_expand()
    {
        Should.Throw<ArgumentException>(() => HiresExpansion.For(Request with { Mode = RenderModes.Txt2Img }, ValidationLimits.Default, 1, "m", Key));
        Should.Throw<ArgumentException>(() => HiresExpansion.For(Request with { Tile = 500 }, ValidationLimits.Default, 1, "m", Key));
    }
}
