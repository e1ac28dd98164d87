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

    [Theory]
    [InlineData(512, 512, 64, 592, 440)]
    [InlineData(768, 768, 96, 888, 664)]
    [InlineData(1024, 1024, 128, 1184, 888)]
    public void Defaults_follow_the_models_native_side(int modelSide, int tile, int overlap, int baseWidth, int baseHeight)
    {
        var resolved = HiresRequestRules.Resolve(new HiresSpec(2048, 1536, ModelSide: modelSide));

        resolved.ShouldBe(new ResolvedHires(2048, 1536, tile, overlap, HiresLimits.DefaultStrength, baseWidth, baseHeight));
        HiresRequestRules.DefaultBaseSize(2048, 1536, modelSide).ShouldBe((baseWidth, baseHeight));
    }

    [Fact]
    public void Given_values_win_over_a_models_defaults() =>
        HiresRequestRules.Resolve(new HiresSpec(2048, 1536, Tile: 512, Overlap: 32, BaseWidth: 512, BaseHeight: 384, ModelSide: 1024))
            .ShouldBe(new ResolvedHires(2048, 1536, 512, 32, HiresLimits.DefaultStrength, 512, 384));

    [Fact]
    public void A_given_tile_keeps_the_models_overlap_unless_it_is_over_half_the_tile()
    {
        HiresRequestRules.Resolve(new HiresSpec(2048, 1536, Tile: 640, ModelSide: 1024)).Overlap.ShouldBe(128);
        HiresRequestRules.Resolve(new HiresSpec(2048, 1536, Tile: 192, ModelSide: 1024)).Overlap.ShouldBe(96);
    }

    [Fact]
    public void The_default_base_never_exceeds_a_target_smaller_than_the_model() =>
        HiresRequestRules.Resolve(new HiresSpec(768, 768, ModelSide: 1024)).ShouldSatisfyAllConditions(
            r => (r.BaseWidth, r.BaseHeight).ShouldBe((768, 768)),
            r => r.Tile.ShouldBe(1024));

    [Fact]
    public void The_tile_error_names_the_models_own_tile() =>
        HiresRequestRules.Validate(new HiresSpec(2048, 2048, Tile: 100, ModelSide: 768)).Single().Message.ShouldContain("768 here");
}
