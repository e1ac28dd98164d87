using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using static RenderFarm.Diffusion.Tests.Hires.HiresTestKit;

namespace RenderFarm.Diffusion.Tests.Hires;

public sealed class RegionUpscalerTests
{
    [Theory]
    [InlineData(64, 48, 256, 192)]
    [InlineData(96, 96, 520, 264)]   // non-integer scales, different per axis
    [InlineData(128, 128, 128, 128)] // scale 1
    public void Every_region_is_bit_identical_to_the_same_pixels_of_the_whole_upscale(int baseWidth, int baseHeight, int width, int height)
    {
        var source = Noise(baseWidth, baseHeight, seed: 3);
        var whole = RegionUpscaler.Upscale(source, width, height);

        foreach (var region in new[] { new PixelRect(0, 0, 64, 64), new PixelRect(width - 64, height - 64, 64, 64), new PixelRect(8, 16, width / 2, height / 2) })
        {
            RegionUpscaler.Upscale(source, width, height, region).Pixels.ShouldBe(Crop(whole, region).Pixels);
        }
    }

    [Fact]
    public void A_flat_image_stays_flat()
    {
        var flat = new RgbImage(32, 32, [.. Enumerable.Repeat<byte>(77, 32 * 32 * 3)]);
        RegionUpscaler.Upscale(flat, 200, 120).Pixels.ShouldAllBe(p => p == 77);
    }

    [Fact]
    public void It_agrees_with_Skias_Mitchell_resize_to_within_rounding()
    {
        // Same kernel, independent implementations: they may differ by a grey level where rounding falls differently.
        var source = Picture(64, 64);
        var ours = RegionUpscaler.Upscale(source, 256, 256);
        var skia = ImageOps.Resize(source, 256, 256);

        var mean = ours.Pixels.Zip(skia.Pixels, (a, b) => Math.Abs(a - b)).Average();
        mean.ShouldBeLessThan(1.0);
    }

    [Fact]
    public void A_region_outside_the_target_is_refused() =>
        Should.Throw<ArgumentOutOfRangeException>(() => RegionUpscaler.Upscale(Picture(8, 8), 64, 64, new PixelRect(32, 32, 64, 64)));
}
