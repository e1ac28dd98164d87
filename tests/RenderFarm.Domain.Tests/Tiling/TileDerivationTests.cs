using RenderFarm.Domain.Requests;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Domain.Tests.Tiling;

public class TileDerivationTests
{
    [Fact]
    public void Tile_seeds_are_fixed_numbers_that_never_change_between_runs()
    {
        // Golden values: changing the mixer would silently change every hires image ever rendered.
        TileDerivation.SplitMix64(0, 1).ShouldBe(0xE220A8397B1DCDAFUL);
        TileDerivation.Seed(42, 0).ShouldBe(TileDerivation.Seed(42, 0));
        TileDerivation.Seed(42, 0).ShouldBe((long)(TileDerivation.SplitMix64(42, 1) & ValidationLimits.MaxSeed));
    }

    [Fact]
    public void Every_tile_of_a_large_job_gets_its_own_valid_seed()
    {
        var seeds = Enumerable.Range(0, 65536).Select(i => TileDerivation.Seed(1234, i)).ToArray();

        seeds.Distinct().Count().ShouldBe(seeds.Length);
        seeds.ShouldAllBe(s => s >= 0 && s <= ValidationLimits.MaxSeed);
    }

    [Fact]
    public void Tile_seeds_depend_on_the_job_seed_and_are_not_neighbouring_job_seeds()
    {
        TileDerivation.Seed(1, 0).ShouldNotBe(TileDerivation.Seed(2, 0));
        // Job seed s+1's tile 0 is not job seed s's tile 1: seed sweeps of hires jobs do not share tiles.
        TileDerivation.Seed(7, 1).ShouldNotBe(TileDerivation.Seed(8, 0));
        TileDerivation.Seed(ValidationLimits.MaxSeed, 3).ShouldBeInRange(0, ValidationLimits.MaxSeed);
    }

    [Fact]
    public void Every_tile_renders_the_job_prompt() =>
        TileDerivation.Prompt("a harbour at night", 17).ShouldBe("a harbour at night");
}
