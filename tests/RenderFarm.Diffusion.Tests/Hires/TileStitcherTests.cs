using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using static RenderFarm.Diffusion.Tests.Hires.HiresTestKit;

namespace RenderFarm.Diffusion.Tests.Hires;

public sealed class TileStitcherTests
{
    [Theory]
    [InlineData(256, 256, 128, 32)]
    [InlineData(520, 264, 128, 64)]
    [InlineData(232, 96, 128, 32)]
    public async Task Tiles_cut_from_one_picture_stitch_back_to_exactly_that_picture(int width, int height, int tile, int overlap)
    {
        // Weights sum to 1, so tiles that agree in their overlaps must reproduce the picture exactly, at the right place.
        var picture = Picture(width, height);
        var layout = Layout(width, height, tile, overlap);
        var tiles = layout.Tiles.Select(t => Crop(picture, t.Bounds)).ToArray();

        var stitched = await StitchAsync(layout, new ListTileSource(tiles), parameters: null);

        PngCodec.Decode(stitched).Pixels.ShouldBe(picture.Pixels);
    }

    [Fact]
    public async Task The_streamed_png_has_the_pixels_of_an_in_memory_stitch_and_its_parameters()
    {
        // Tiles that disagree everywhere (independent noise): the blend itself is what is compared.
        var layout = Layout(360, 248, 128, 32);
        var tiles = layout.Tiles.Select(t => Noise(t.Bounds.Width, t.Bounds.Height, seed: t.Index)).ToArray();

        var png = await StitchAsync(layout, new ListTileSource(tiles), "a lighthouse at dusk\nSteps: 20, Seed: 42");

        PngCodec.Decode(png).Pixels.ShouldBe(ReferenceStitch(layout, tiles).Pixels);
        PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword].ShouldBe("a lighthouse at dusk\nSteps: 20, Seed: 42");
    }

    [Fact]
    public async Task Tiles_are_requested_once_each_in_index_order_and_at_most_two_rows_are_held()
    {
        var layout = Layout(512, 512, 128, 32);
        var tiles = layout.Tiles.Select(t => Noise(t.Bounds.Width, t.Bounds.Height, t.Index)).ToArray();
        var source = new ListTileSource(tiles);
        var held = new List<int>();

        using var output = new MemoryStream();
        await TileStitcher.StitchAsync(layout, source, output, null, new Inline<StitchProgress>(p => held.Add(p.TilesHeld)), CancellationToken.None);

        source.Requests.ShouldBe(Enumerable.Range(0, layout.Tiles.Count));
        var columns = layout.Tiles.Count(t => t.Bounds.Y == 0);
        held.Max().ShouldBeLessThanOrEqualTo(2 * columns);
        held.Count.ShouldBe(512 / TileStitcher.BandHeight);
    }

    [Fact]
    public async Task A_tile_of_the_wrong_size_is_refused()
    {
        var layout = Layout(256, 256, 128, 32);
        var tiles = layout.Tiles.Select(t => Noise(64, 64, t.Index)).ToArray();

        await Should.ThrowAsync<InvalidDataException>(() => StitchAsync(layout, new ListTileSource(tiles), null));
    }

    [Fact]
    public async Task Cancellation_stops_the_stitch()
    {
        var layout = Layout(256, 256, 128, 32);
        var tiles = layout.Tiles.Select(t => Noise(t.Bounds.Width, t.Bounds.Height, t.Index)).ToArray();
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();

        using var output = new MemoryStream();
        await Should.ThrowAsync<OperationCanceledException>(() => TileStitcher.StitchAsync(layout, new ListTileSource(tiles), output, null, null, cancel.Token));
    }

    [Fact]
    public async Task Seams_of_a_good_stitch_measure_like_any_other_line_and_a_hard_edge_does_not()
    {
        var layout = Layout(256, 256, 128, 32);
        // A stationary texture: every line of it has about the same step, so the median line is a fair yardstick.
        var picture = Texture(256, 256, seed: 5);
        var good = PngCodec.Decode(await StitchAsync(layout, new ListTileSource([.. layout.Tiles.Select(t => Crop(picture, t.Bounds))]), null));

        SeamMetrics.Measure(good, layout).Ratio.ShouldBeLessThanOrEqualTo(1.2);

        // Brighten one tile without blending: its edge becomes a step much larger than the picture's typical line.
        var bad = (byte[])picture.Pixels.Clone();
        var b = layout.Tiles[4].Bounds;
        for (var y = b.Y; y < b.Bottom; y++)
        {
            for (var x = b.X; x < b.Right; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    var i = (y * 256 + x) * 3 + c;
                    bad[i] = (byte)Math.Min(255, bad[i] + 60);
                }
            }
        }

        SeamMetrics.Measure(new RgbImage(256, 256, bad), layout).Ratio.ShouldBeGreaterThan(1.2);
    }

    internal static async Task<byte[]> StitchAsync(HiresLayout layout, ITileSource source, string? parameters)
    {
        using var output = new MemoryStream();
        await TileStitcher.StitchAsync(layout, source, output, parameters, null, CancellationToken.None);
        return output.ToArray();
    }

    internal sealed class Inline<T>(Action<T> action) : IProgress<T>
    {
        public void Report(T value) => action(value);
    }
}
