using System.Security.Cryptography;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Worker.Tests;

/// <summary>Hires stitch items and the failures of hires inputs, on a worker with the Null renderer (no model needed).</summary>
public sealed class HiresStitchTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_stitch_item_stores_exactly_the_png_TileStitcher_makes_in_memory_with_the_hires_parameters()
    {
        await using var worker = await NullWorkerAsync();
        var job = new HiresTestJob(320, 192, 128, 32, 80, 48, Seed: 99);
        var layout = job.Layout();
        var tiles = layout.Tiles.Select(t => HiresImages.Picture(t.Bounds.Width, t.Bounds.Height, seed: t.Index + 1)).ToArray();
        foreach (var t in layout.Tiles)
        {
            await HiresImages.PutAsync(worker.Store, job.TileKey(t.Index), PngCodec.Encode(tiles[t.Index], "tile"));
        }

        await HiresImages.PutAsync(worker.Store, job.BaseKey, PngCodec.Encode(HiresImages.Picture(job.BaseWidth, job.BaseHeight, seed: 0), null));
        var stitch = job.Stitch;

        await worker.SendAsync(TestItems.Unit(stitch));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 1 || p.All<ItemFailed>().Count > 0, Patience, "the stitch");

        worker.Published.All<ItemFailed>().ShouldBeEmpty();
        worker.Published.All<ItemStarted>().ShouldHaveSingleItem().ItemId.ShouldBe(stitch.ItemId);
        worker.Published.ArtifactExistedWhenReported(stitch.ItemId).ShouldBeTrue("ItemRendered went out before the upload finished");
        var stored = await HiresImages.ReadAsync(worker.Store, job.FinalKey);
        var parameters = HiresPipeline.Parameters(job.Request(), TestItems.Model, job.BaseWidth, job.BaseHeight);
        using var expected = new MemoryStream();
        await TileStitcher.StitchAsync(layout, new ListTileSource(tiles), expected, parameters, null, CancellationToken.None);
        stored.ShouldBe(expected.ToArray());
        // Hashed as it streamed to the store, the reported hash is the stored object's.
        worker.Published.All<ItemRendered>().Single().Sha256.ShouldBe(Convert.ToHexStringLower(SHA256.HashData(stored)));

        var text = PngCodec.ReadTextChunks(stored)[PngCodec.ParametersKeyword];
        text.ShouldStartWith(HiresTestJob.Prompt);
        text.ShouldContain($"Seed: {job.Seed}, Size: 320x192, Model: {TestItems.Model}");
        text.ShouldContain("Hires base: 80x48, Hires tile: 128, Hires overlap: 32, Hires tiles: 6");
        // Progress counts rows, ending at the image's height before the completion.
        var rows = worker.Published.All<ItemProgressed>().Where(p => p.ItemId == stitch.ItemId).ToList();
        rows.ShouldNotBeEmpty();
        rows.ShouldAllBe(p => p.TotalSteps == job.Height);
        rows[^1].Step.ShouldBe(job.Height);
    }

    [Fact]
    public async Task A_stitch_with_a_missing_tile_fails_retryable_naming_the_key_and_stores_nothing()
    {
        await using var worker = await NullWorkerAsync();
        var job = new HiresTestJob(256, 256, 128, 32, 64, 64);
        var layout = job.Layout();
        const int Missing = 5;
        foreach (var t in layout.Tiles.Where(t => t.Index != Missing))
        {
            await HiresImages.PutAsync(worker.Store, job.TileKey(t.Index), PngCodec.Encode(HiresImages.Picture(t.Bounds.Width, t.Bounds.Height, t.Index), null));
        }

        await HiresImages.PutAsync(worker.Store, job.BaseKey, PngCodec.Encode(HiresImages.Picture(64, 64, 0), null));

        await worker.SendAsync(TestItems.Unit(job.Stitch));
        await worker.Published.WaitUntilAsync(p => p.All<ItemFailed>().Count == 1 || p.All<ItemRendered>().Count > 0, Patience, "the stitch to fail");

        worker.Published.All<ItemRendered>().ShouldBeEmpty();
        var failed = worker.Published.All<ItemFailed>().Single();
        failed.Retryable.ShouldBeTrue();
        failed.Reason.ShouldContain(job.TileKey(Missing));
        (await worker.Store.ExistsAsync(job.FinalKey, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task A_tile_whose_base_is_missing_fails_retryable_naming_the_key()
    {
        await using var worker = await NullWorkerAsync();
        var job = new HiresTestJob(256, 256, 128, 32, 64, 64);

        await worker.SendAsync(TestItems.Unit(job.TileItem(0)));
        await worker.Published.WaitUntilAsync(p => p.All<ItemFailed>().Count == 1 || p.All<ItemRendered>().Count > 0, Patience, "the tile to fail");

        var failed = worker.Published.All<ItemFailed>().Single();
        failed.Retryable.ShouldBeTrue();
        failed.Reason.ShouldContain(job.BaseKey);
    }

    [Fact]
    public async Task A_stitch_whose_hires_part_does_not_match_its_grid_fails_for_good()
    {
        await using var worker = await NullWorkerAsync();
        var job = new HiresTestJob(256, 256, 128, 32, 64, 64);
        var wrongCount = job.Stitch with { Hires = job.Stitch.Hires! with { TileCount = 4 } };

        await worker.SendAsync(TestItems.Unit(wrongCount));
        await worker.Published.WaitUntilAsync(p => p.All<ItemFailed>().Count == 1, Patience, "the stitch to fail");

        var failed = worker.Published.All<ItemFailed>().Single();
        failed.Retryable.ShouldBeFalse();
        failed.Reason.ShouldContain("has 9 tiles, but the item says 4");
    }

    [Fact]
    public void A_tile_item_that_does_not_fit_its_grid_is_refused_before_any_model_loads()
    {
        var job = new HiresTestJob(256, 256, 128, 32, 64, 64);
        var basePng = PngCodec.Encode(HiresImages.Picture(64, 64, 0), null);
        RenderBatch Batch(RenderItem item) => new([item], basePng);

        Should.Throw<ArgumentException>(() => HiresTileRenderer.Prepare(Batch(job.TileItem(1) with { Width = 64 })))
            .Message.ShouldContain("Tile 1 is 128x128 in its grid, but the item asks for 64x128");
        Should.Throw<ArgumentException>(() => HiresTileRenderer.Prepare(Batch(job.TileItem(1) with { Hires = job.TileItem(1).Hires! with { TileIndex = 9 } })))
            .Message.ShouldContain("outside the grid's 9 tiles");
        Should.Throw<ArgumentException>(() => HiresTileRenderer.Prepare(Batch(job.TileItem(1) with { Strength = null })))
            .Message.ShouldContain("strength");
        Should.Throw<ArgumentException>(() => HiresTileRenderer.Prepare(Batch(job.TileItem(1) with { Hires = job.TileItem(1).Hires! with { Overlap = 100 } })))
            .Message.ShouldContain("does not describe a tile grid");
        Should.Throw<ArgumentException>(() => HiresTileRenderer.Prepare(new RenderBatch([job.TileItem(1)], new byte[] { 1, 2, 3 })))
            .Message.ShouldContain("cannot be decoded");
    }

    [Fact]
    public async Task The_null_renderer_answers_a_tile_with_a_png_of_the_tiles_size()
    {
        using var renderer = new NullItemRenderer();
        var job = new HiresTestJob(256, 256, 128, 32, 64, 64);
        var tile = job.TileItem(2);

        var images = await renderer.RenderAsync(new RenderBatch([tile]), null, CancellationToken.None);

        var decoded = PngCodec.Decode(images.Single().Png);
        (decoded.Width, decoded.Height).ShouldBe((tile.Width, tile.Height));
        await Should.ThrowAsync<ArgumentException>(() => renderer.RenderAsync(new RenderBatch([job.Stitch]), null, CancellationToken.None));
    }

    [Fact]
    public void Hires_tiles_of_one_unit_are_planned_one_per_batch()
    {
        var job = new HiresTestJob(256, 256, 128, 32, 64, 64);
        var tiles = Enumerable.Range(0, 4).Select(job.TileItem).ToArray();

        RenderBatch.Plan(tiles, maxBatchSize: 8).Select(b => b.Count).ShouldBe([1, 1, 1, 1]);
    }

    private static Task<WorkerHarness> NullWorkerAsync() =>
        WorkerHarness.StartAsync(o => o.Renderer = ItemRendererKind.Null);

    private sealed class ListTileSource(IReadOnlyList<RgbImage> tiles) : ITileSource
    {
        public ValueTask<RgbImage> GetTileAsync(int tileIndex, CancellationToken cancellationToken) => ValueTask.FromResult(tiles[tileIndex]);
    }
}
