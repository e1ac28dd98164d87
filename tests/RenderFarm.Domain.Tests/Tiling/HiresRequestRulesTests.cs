using RenderFarm.Domain.Tiling;

namespace RenderFarm.Domain.Tests.Tiling;

public class HiresRequestRulesTests
{
    [Fact]
    public void A_16k_square_with_defaults_is_valid_and_resolves_to_a_native_base()
    {
        var spec = new HiresSpec(16384, 16384);

        HiresRequestRules.Validate(spec).ShouldBeEmpty();
        var resolved = HiresRequestRules.Resolve(spec);
        resolved.ShouldBe(new ResolvedHires(16384, 16384, 512, 64, 0.35, 512, 512));
        resolved.CreateGrid().Tiles.Count.ShouldBe(37 * 37);
    }

    [Theory]
    [InlineData(4096, 2304, 680, 384)]
    [InlineData(1536, 1536, 512, 512)]
    [InlineData(256, 256, 256, 256)]
    [InlineData(8192, 1024, 1448, 184)]
    [InlineData(64, 4096, 64, 4096)]
    public void The_default_base_keeps_the_target_aspect_near_512_squared(int width, int height, int baseWidth, int baseHeight) =>
        HiresRequestRules.DefaultBaseSize(width, height).ShouldBe((baseWidth, baseHeight));

    [Theory]
    [InlineData("width", 16392, 16384, null, null, null, null, null, "hires limit")]
    [InlineData("width", 1004, 1024, null, null, null, null, null, "multiple of 8")]
    [InlineData("height", 1024, 32, null, null, null, null, null, "between 64")]
    [InlineData("tile", 1024, 1024, 100, null, null, null, null, "multiple of 8")]
    [InlineData("tile", 1024, 1024, 4096, null, null, null, null, "2048")]
    [InlineData("overlap", 1024, 1024, 512, 264, null, null, null, "half the tile")]
    [InlineData("overlap", 1024, 1024, 512, 12, null, null, null, "multiple of 8")]
    [InlineData("strength", 1024, 1024, null, null, 0.0, null, null, "greater than 0")]
    [InlineData("strength", 1024, 1024, null, null, 1.5, null, null, "at most 1")]
    [InlineData("baseHeight", 1024, 1024, null, null, null, 512, null, "go together")]
    [InlineData("baseWidth", 1024, 1024, null, null, null, 2048, 512, "larger than the target")]
    [InlineData("baseWidth", 8192, 8192, null, null, null, 4096, 4096, "txt2img limit")]
    [InlineData("tile", 16384, 16384, 64, 32, null, null, null, "tiles, over the limit")]
    public void Each_broken_rule_names_its_field_and_the_fix(
        string field, int width, int height, int? tile, int? overlap, double? strength, int? baseWidth, int? baseHeight, string hint)
    {
        var errors = HiresRequestRules.Validate(new HiresSpec(width, height, tile, overlap, strength, baseWidth, baseHeight));

        errors.Count.ShouldBe(1, string.Join(Environment.NewLine, errors));
        errors[0].Field.ShouldBe(field);
        errors[0].Message.ShouldContain(hint, Case.Insensitive);
    }

    [Fact]
    public void Limits_are_configurable()
    {
        var limits = new HiresLimits { MaxPixels = 32768L * 32768L, MaxSide = 32768, MaxTiles = 1_000_000 };

        HiresRequestRules.Validate(new HiresSpec(32768, 32768), limits).ShouldBeEmpty();
        HiresRequestRules.Validate(new HiresSpec(32768, 32768)).ShouldNotBeEmpty();
    }

    [Fact]
    public void Resolve_refuses_an_invalid_spec() =>
        Should.Throw<ArgumentException>(() => HiresRequestRules.Resolve(new HiresSpec(100, 100))).Message.ShouldContain("width");

    [Fact]
    public void A_small_tile_gets_an_overlap_that_fits_it() =>
        HiresRequestRules.Resolve(new HiresSpec(512, 512, Tile: 96)).Overlap.ShouldBe(48);
}
