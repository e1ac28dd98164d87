using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Upscaling;
using static RenderFarm.Diffusion.Tests.Hires.HiresTestKit;

namespace RenderFarm.Diffusion.Tests.Upscaling;

/// <summary>
/// The tiled upscaler against the tiny upscaler's closed form. The model is per-pixel, so every tile computes exactly
/// the pixels of the untiled run; where tiles overlap the blend normalises equal values by their weight sum, which
/// differs from the value by float rounding (≤ 1e-6 of full scale), while the closed form keeps every byte 1/8 away
/// from a rounding boundary: so bytes must be equal everywhere, blends included.
/// </summary>
public sealed class TiledUpscalerTests(TinyUpscalerFixture models) : IClassFixture<TinyUpscalerFixture>
{
    public static TheoryData<int, int, int> Tilings => new()
    {
        { 2, 0, 0 },    // no tile given: the default (larger than the image: one tile)
        { 2, 24, 6 },   // a few tiles
        { 2, 8, 3 },    // many tiles (6 × 5 on a 37 × 29 image), odd overlap
        { 2, 5, 4 },    // overlap almost the whole tile
        { 4, 16, 4 },
        { 4, 7, 2 },
    };

    [Theory]
    [MemberData(nameof(Tilings))]
    public void Tiled_upscale_equals_the_closed_form(int scale, int tile, int overlap)
    {
        using var upscaler = new Upscaler(UpscalerFolder.Open(scale == 2 ? models.X2 : models.X4));
        var image = Picture(37, 29, seed: 3);
        TileSize? tiling = tile == 0 ? null : new TileSize(tile, overlap);

        var upscaled = upscaler.Upscale(image, tiling, CancellationToken.None);

        upscaled.Width.ShouldBe(37 * scale);
        upscaled.Height.ShouldBe(29 * scale);
        upscaled.Pixels.ShouldBe(TinyUpscalerReference.Upscale(image, scale).Pixels);
    }

    [Fact]
    public void One_tile_of_the_model_matches_the_closed_form_in_floats()
    {
        using var upscaler = new Upscaler(UpscalerFolder.Open(models.X2));
        var image = Picture(5, 3, seed: 9);
        var output = upscaler.RunTile(Upscaler.ToUnitPlanes(image), 3, 5);
        for (var c = 0; c < 3; c++)
        {
            for (var y = 0; y < 6; y++)
            {
                for (var x = 0; x < 10; x++)
                {
                    var b = image.Pixels[((y / 2) * 5 + x / 2) * 3 + c];
                    var expected = 0.75 * (b / 255.0) + ModelGenerator.Upscaler.TinyUpscaler.OffsetBytes(2, y % 2, x % 2) / 255.0;
                    output[c * 60 + y * 10 + x].ShouldBe((float)expected, 2e-6f);
                }
            }
        }
    }

    [Fact]
    public void The_planned_tile_under_a_tight_budget_gives_many_tiles_and_the_same_image()
    {
        var folder = UpscalerFolder.Open(models.X2);
        var profile = Profile();
        var shape = new UpscaleShape(64, 48, 2);
        var planner = new UpscalePlanner(profile);
        var whole = planner.Predict(shape, new TileSize(64, 0)).PeakBytes;
        var small = planner.Predict(shape, UpscalePlanner.Tile(16)).PeakBytes;
        small.ShouldBeLessThan(whole);

        // A budget between the 16- and 32-pixel tiles' predictions: the planner must take 16.
        var budget = (small + planner.Predict(shape, UpscalePlanner.Tile(32)).PeakBytes) / 2;
        var plan = planner.Plan(shape, budget);
        plan.Fits.ShouldBeTrue(plan.Reason);
        plan.Tile.ShouldBe(UpscalePlanner.Tile(16));
        plan.Considered.Select(c => c.Tile.Size).ShouldBe([64, 48, 32, 16]);

        using var upscaler = new Upscaler(WithProfile(folder, profile), new ExecutionOptions { MemoryBudgetBytes = budget });
        upscaler.ChooseTile(64, 48).ShouldBe(UpscalePlanner.Tile(16));
        var image = Picture(64, 48, seed: 5);
        upscaler.Upscale(image, tile: null, CancellationToken.None).Pixels.ShouldBe(TinyUpscalerReference.Upscale(image, 2).Pixels);
    }

    [Fact]
    public void The_generated_folder_ships_a_measured_profile_and_a_budget_shrinks_the_tile()
    {
        var folder = UpscalerFolder.Open(models.X2);
        var profile = folder.Memory.ShouldNotBeNull();
        profile.Kind.ShouldBe(MemoryProfile.Measured);
        using var roomy = new Upscaler(folder, new ExecutionOptions { MemoryBudgetBytes = 4L << 30 });
        using var tight = new Upscaler(folder, new ExecutionOptions { MemoryBudgetBytes = 160L << 20 });
        using var none = new Upscaler(folder);

        roomy.ChooseTile(1024, 1024).ShouldBe(UpscalePlanner.Tile(512));
        tight.ChooseTile(1024, 1024).Size.ShouldBeLessThan(512);
        new UpscalePlanner(profile).Predict(new UpscaleShape(1024, 1024, 2), tight.ChooseTile(1024, 1024)).PeakBytes.ShouldBeLessThanOrEqualTo(160L << 20);
        none.ChooseTile(1024, 1024).ShouldBe(Upscaler.DefaultTile);
    }

    [Fact]
    public void A_budget_below_the_smallest_tile_is_refused_with_the_reason()
    {
        var profile = Profile();
        var plan = new UpscalePlanner(profile).Plan(new UpscaleShape(64, 48, 2), profile.BaseBytes);
        plan.Fits.ShouldBeFalse();
        plan.Reason.ShouldContain("nothing fits");

        using var upscaler = new Upscaler(WithProfile(UpscalerFolder.Open(models.X2), profile), new ExecutionOptions { MemoryBudgetBytes = profile.BaseBytes });
        Should.Throw<MemoryBudgetExceededException>(() => upscaler.ChooseTile(64, 48)).Message.ShouldContain("nothing fits");
    }

    [Fact]
    public void A_folder_without_its_config_or_with_a_bad_scale_is_refused()
    {
        var dir = Directory.CreateDirectory(Path.Combine(models.Scratch, "bad-" + Guid.NewGuid().ToString("N"))).FullName;
        Should.Throw<ModelFormatException>(() => UpscalerFolder.Open(dir)).Message.ShouldContain(UpscalerFolder.ConfigFile);
        File.Copy(Path.Combine(models.X2, "model.onnx"), Path.Combine(dir, "model.onnx"));
        File.WriteAllText(Path.Combine(dir, UpscalerFolder.ConfigFile), "{\"scale\": 3}");
        using (var wrong = new Upscaler(UpscalerFolder.Open(dir)))
        {
            // The config says 3 but the model doubles: the mismatch is named, not an out-of-range crash.
            Should.Throw<ModelFormatException>(() => wrong.Upscale(Picture(8, 8), null, CancellationToken.None)).Message.ShouldContain("scale 3");
        }

        File.WriteAllText(Path.Combine(dir, UpscalerFolder.ConfigFile), "{\"scale\": 1}");
        Should.Throw<ModelFormatException>(() => UpscalerFolder.Open(dir)).Message.ShouldContain("scale");
    }

    [Theory]
    [InlineData(2, 64, 48, 128, 96)]   // base × 2 is the target: the model's own pixels
    [InlineData(2, 64, 48, 96, 72)]    // ×1.5: model ×2, then Mitchell down to the target
    [InlineData(4, 32, 24, 160, 120)]  // ×5: model ×4, then Mitchell up
    public void The_hires_region_of_the_model_upscaler_is_the_closed_form_resampled_to_the_target(int scale, int bw, int bh, int tw, int th)
    {
        using var upscaler = new Upscaler(UpscalerFolder.Open(scale == 2 ? models.X2 : models.X4));
        var baseImage = Picture(bw, bh, seed: 11);
        var reference = TinyUpscalerReference.Upscale(baseImage, scale);
        var whole = reference.Width == tw && reference.Height == th ? reference : RegionUpscaler.Upscale(reference, tw, th);
        var hires = new ModelBaseUpscaler(upscaler, new TileSize(16, 4));
        hires.Name.ShouldBe(Path.GetFileName(scale == 2 ? models.X2 : models.X4));
        foreach (var region in new[] { new PixelRect(0, 0, 40, 32), new PixelRect(tw - 48, th - 40, 48, 40), new PixelRect(24, 16, 40, 40) })
        {
            hires.UpscaleRegion(baseImage, tw, th, region, CancellationToken.None).Pixels.ShouldBe(Crop(whole, region).Pixels, $"region {region}");
        }
    }

    /// <summary>A made-up CPU profile (the planner's arithmetic is what is under test here, not the numbers).</summary>
    private static UpscalerMemoryProfile Profile() => new()
    {
        Kind = MemoryProfile.Measured,
        Device = MemoryProfile.CpuDevice,
        BaseBytes = 100L << 20,
        Model = new ComponentProfile
        {
            WeightBytes = 1 << 20,
            ActivationBytes = new Scaling(1 << 20, 4000, 0),
            Seconds = new Scaling(0.001, 1e-6, 0),
        },
    };

    private UpscalerFolder WithProfile(UpscalerFolder folder, UpscalerMemoryProfile profile)
    {
        var dir = Directory.CreateDirectory(Path.Combine(models.Scratch, "profiled-" + Guid.NewGuid().ToString("N"))).FullName;
        File.Copy(folder.ModelPath, Path.Combine(dir, "model.onnx"));
        File.WriteAllText(Path.Combine(dir, UpscalerFolder.ConfigFile), System.Text.Json.JsonSerializer.Serialize(
            new { scale = folder.Scale, memory = profile }, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web)));
        return UpscalerFolder.Open(dir);
    }
}
