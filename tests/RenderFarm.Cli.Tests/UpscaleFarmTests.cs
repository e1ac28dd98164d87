using System.Globalization;
using RenderFarm.Client;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Domain.Tiling;
using RenderFarm.ModelGenerator.Upscaler;

namespace RenderFarm.Cli.Tests;

/// <summary>
/// An upscale job on the embedded farm: <c>renderfarm submit --mode upscale --init IMG --upscaler NAME</c> with the
/// tiny upscaler pushed to the farm's store; the tiles are upscaled by the workers and stitched, and the fetched image
/// is the tiny upscaler's closed form of the input, pixel for pixel.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class UpscaleFarmTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    private const string Name = "tiny-upscaler-x2";
    private const int Side = 64;
    private const int Target = 128;
    private const int Tile = 64;
    private const int Overlap = 16;

    [Fact]
    public async Task An_upscale_job_enlarges_the_image_by_the_pushed_upscaler_in_tiles_and_stitches_its_closed_form()
    {
        var dir = Path.Combine(farm.Scratch, "upscale-" + Guid.NewGuid().ToString("N"));
        var upscaler = Path.Combine(dir, Name);
        (await Cli.RunAsync("models", "generate", "--kind", "tiny-upscaler", upscaler)).ExitCode.ShouldBe(0);
        var push = await Cli.RunAsync("models", "push", upscaler, "--name", Name, "--replace", "--store", "local", "--data", farm.Serve.DataRoot);
        push.ExitCode.ShouldBe(0, push.Error);
        // A gradient with a different value in every channel, so a misplaced tile or a swapped channel shows.
        var pixels = new byte[Side * Side * 3];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)((i * 7 + i / (Side * 3) * 13) % 256);
        }

        var input = Path.Combine(dir, "input.png");
        await File.WriteAllBytesAsync(input, PngCodec.Encode(new RgbImage(Side, Side, pixels), parameters: null));
        var farmUrl = farm.Serve.Address.ToString();

        var submit = await Cli.RunAsync("submit", "--mode", "upscale", "--init", input, "--upscaler", Name,
            "--width", $"{Target}", "--height", $"{Target}", "--tile", $"{Tile}", "--overlap", $"{Overlap}", "--farm", farmUrl);
        submit.ExitCode.ShouldBe(0, submit.Error);
        var id = Guid.Parse(submit.Output.Trim());
        var job = await EmbeddedFarmTests.WaitFinalAsync(farm.Serve.CreateClient(), id, TimeSpan.FromMinutes(5));

        job.State.ShouldBe(JobState.Succeeded, string.Join("; ", job.Errors.Select(e => e.Error)));
        job.Mode.ShouldBe(RenderModes.Upscale);
        var grid = TileGrid.Create(Target, Target, Tile, Overlap);
        grid.Tiles.Count.ShouldBeGreaterThan(1);
        var tiles = job.Tiles.ShouldNotBeNull();
        tiles.Count.ShouldBe(grid.Tiles.Count);
        // Every tile is released at once (the base is the input), so both of the farm's workers take some.
        tiles.Select(t => t.WorkerId.ShouldNotBeNull()).Distinct(StringComparer.Ordinal).Count().ShouldBe(2, "the tiles must be spread over both workers");
        var fetch = await Cli.RunAsync("fetch", id.ToString(), "-o", Path.Combine(dir, "final"), "--farm", farmUrl);
        fetch.ExitCode.ShouldBe(0, fetch.Error);
        var png = await File.ReadAllBytesAsync(Path.Combine(dir, "final", string.Create(CultureInfo.InvariantCulture, $"{job.Items - 1:D6}.png")));
        var image = PngCodec.Decode(png);
        (image.Width, image.Height).ShouldBe((Target, Target));
        image.Pixels.ShouldBe(TinyUpscaler.Reference(pixels, Side, Side, 2));
        PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword].ShouldBe($"Size: {Target}x{Target}, Upscaled from: {Side}x{Side}, Upscaler: {Name}");
    }

    [Fact]
    public async Task An_upscale_job_without_an_upscaler_is_refused_with_the_field()
    {
        var input = Path.Combine(farm.Scratch, "upscale-input-" + Guid.NewGuid().ToString("N") + ".png");
        await File.WriteAllBytesAsync(input, PngCodec.Encode(new RgbImage(8, 8, new byte[8 * 8 * 3]), parameters: null));

        var submit = await Cli.RunAsync("submit", "--mode", "upscale", "--init", input, "--width", "16", "--height", "16", "--farm", farm.Serve.Address.ToString());

        submit.ExitCode.ShouldBe(2);
        submit.Error.ShouldContain("upscaler is required for mode upscale");
    }
}
