using RenderFarm.Contracts;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Upscaling;
using RenderFarm.ModelGenerator;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// Hires items on the engine (the tiny model): a farm tile and a farm hires image against the single-machine
/// <see cref="HiresPipeline"/>, byte for byte.
/// </summary>
public sealed class HiresTileTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_tile_item_renders_the_bytes_of_the_single_machine_pipelines_tile()
    {
        await using var worker = await WorkerHarness.StartAsync();
        var job = new HiresTestJob(256, 256, 128, 32, 64, 64);
        using var pipeline = StableDiffusionPipeline.Open(Path.Combine(SharedModels.Root, TestItems.Model));
        var basePng = (await pipeline.GenerateAsync(new GenerationRequest
        {
            Images = [new ImageSpec(HiresTestJob.Prompt, HiresTestJob.NegativePrompt, (ulong)job.Seed)],
            Width = job.BaseWidth,
            Height = job.BaseHeight,
            Steps = job.Steps,
        }, null, CancellationToken.None)).Images[0].ToPng();
        await HiresImages.PutAsync(worker.Store, job.BaseKey, basePng);
        // The middle tile of the 3×3 grid: overlapped on every side, at an offset that is not a multiple of the tile.
        var tile = job.TileItem(4);

        await worker.SendAsync(TestItems.Unit(tile));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 1 || p.All<ItemFailed>().Count > 0, Patience, "the tile");

        worker.Published.All<ItemFailed>().ShouldBeEmpty();
        var farmTile = await HiresImages.ReadAsync(worker.Store, tile.OutputKey);
        var expected = await new HiresPipeline(pipeline).RefineTileAsync(job.Request(), PngCodec.Decode(basePng), 4, null, CancellationToken.None);
        farmTile.ShouldBe(expected.ToPng());
        var decoded = PngCodec.Decode(farmTile);
        (decoded.Width, decoded.Height).ShouldBe((tile.Width, tile.Height));
        PngCodec.ReadTextChunks(farmTile)[PngCodec.ParametersKeyword].ShouldContain($"Seed: {tile.Seed}");
        // img2img at strength 0.5 of 4 steps runs the last 2, reported per step.
        worker.Published.All<ItemProgressed>().Where(p => p.ItemId == tile.ItemId).ShouldContain(p => p.Step == p.TotalSteps);
    }

    [Fact]
    public async Task An_upscale_tile_runs_its_upscaler_alone_and_never_opens_the_stable_diffusion_model_it_names()
    {
        const string UpscalerName = "tiny-upscaler-x2";
        var upscalerFolder = TestModels.EnsureTinyUpscaler(Path.Combine(SharedModels.Root, UpscalerName));
        await using var worker = await WorkerHarness.StartAsync();
        // A 128² image enlarged to 256² (the upscaler's own scale) in 128-px tiles.
        var job = new HiresTestJob(256, 256, 128, 32, 128, 128);
        var baseImage = HiresImages.Picture(128, 128, 5);
        await HiresImages.PutAsync(worker.Store, job.BaseKey, PngCodec.Encode(baseImage, parameters: null));
        var refine = job.TileItem(4);
        // Strength 0 is an upscale job's tile. The Stable Diffusion model it names is on no disk and in no store, so
        // opening it (or fetching it) would fail the item.
        var tile = refine with
        {
            Strength = 0,
            Model = "absent-sd-" + Guid.NewGuid().ToString("N")[..8],
            Hires = refine.Hires! with { Upscaler = UpscalerName },
        };

        await worker.SendAsync(TestItems.Unit(tile));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 1 || p.All<ItemFailed>().Count > 0, Patience, "the upscale tile");

        worker.Published.All<ItemFailed>().ShouldBeEmpty();
        var farmTile = PngCodec.Decode(await HiresImages.ReadAsync(worker.Store, tile.OutputKey));
        using var upscaler = new Upscaler(UpscalerFolder.Open(upscalerFolder));
        var bounds = job.Grid.Tiles[4];
        var expected = new ModelBaseUpscaler(upscaler).UpscaleRegion(baseImage, 256, 256, new PixelRect(bounds.X, bounds.Y, bounds.Width, bounds.Height), CancellationToken.None);
        (farmTile.Width, farmTile.Height).ShouldBe((bounds.Width, bounds.Height));
        farmTile.Pixels.ShouldBe(expected.Pixels);
    }

    [Fact]
    public async Task Base_tiles_and_stitch_through_the_worker_make_the_single_machine_hires_png_byte_for_byte()
    {
        await using var worker = await WorkerHarness.StartAsync();
        var job = new HiresTestJob(256, 192, 128, 32, 64, 48, Seed: 1234);
        var tiles = Enumerable.Range(0, job.Grid.Tiles.Count).Select(job.TileItem).ToArray();

        await worker.SendAsync(TestItems.Unit(job.Base));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 1 || p.All<ItemFailed>().Count > 0, Patience, "the base");
        await worker.SendAsync(TestItems.Unit(tiles));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 1 + tiles.Length || p.All<ItemFailed>().Count > 0, Patience, "the tiles");
        await worker.SendAsync(TestItems.Unit(job.Stitch));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 2 + tiles.Length || p.All<ItemFailed>().Count > 0, Patience, "the stitch");

        worker.Published.All<ItemFailed>().ShouldBeEmpty();
        var farm = await HiresImages.ReadAsync(worker.Store, job.FinalKey);
        using var pipeline = StableDiffusionPipeline.Open(Path.Combine(SharedModels.Root, TestItems.Model));
        using var single = new MemoryStream();
        await new HiresPipeline(pipeline).RenderAsync(job.Request(), single, null, CancellationToken.None);
        farm.ShouldBe(single.ToArray());
        PngCodec.ReadTextChunks(farm)[PngCodec.ParametersKeyword].ShouldContain($"Hires base: 64x48, Hires tile: 128, Hires overlap: 32, Hires tiles: {tiles.Length}");
    }
}
