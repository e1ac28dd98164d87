using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Domain.States;
using RenderFarm.Domain.Tiling;
using RenderFarm.Storage;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// Hires jobs through the coordinator: validation, expansion into base, tiles and stitch, and the gates between them,
/// with the bus probe standing in for workers. Runs on PostgreSQL and SQLite like the other behaviour tests.
/// </summary>
public abstract class HiresJobTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    /// <summary>Field errors a hires-related mistake must produce (rule, JSON merge patch onto a valid txt2img job, field).</summary>
    public static TheoryData<string, string, string> BadHires => new()
    {
        { "count with hires", """{"mode":"hires","width":1024,"height":1024,"count":2}""", "count" },
        { "sweep with hires", """{"mode":"hires","width":1024,"height":1024,"sweep":{"seeds":[1,2]}}""", "sweep" },
        { "tile without hires", """{"tile":512}""", "tile" },
        { "overlap without hires", """{"overlap":64}""", "overlap" },
        { "baseWidth without hires", """{"baseWidth":512,"baseHeight":512}""", "baseWidth" },
        { "hires over the pixel limit", """{"mode":"hires","width":16384,"height":16392}""", "width" },
        { "hires side not a multiple of 8", """{"mode":"hires","width":1025,"height":1024}""", "width" },
        { "tile off the latent grid", """{"mode":"hires","width":1024,"height":1024,"tile":500}""", "tile" },
        { "overlap over half the tile", """{"mode":"hires","width":1024,"height":1024,"tile":512,"overlap":264}""", "overlap" },
        { "baseWidth alone", """{"mode":"hires","width":1024,"height":1024,"baseWidth":512}""", "baseHeight" },
        { "base larger than the target", """{"mode":"hires","width":1024,"height":1024,"baseWidth":1032,"baseHeight":512}""", "baseWidth" },
        { "strength zero", """{"mode":"hires","width":1024,"height":1024,"strength":0}""", "strength" },
        { "mask with hires", """{"mode":"hires","width":1024,"height":1024,"mask":"abc"}""", "mask" },
        { "upscaler without hires", """{"upscaler":"tiny-upscaler-x2"}""", "upscaler" },
        { "upscaler the farm does not have", """{"mode":"hires","width":1024,"height":1024,"upscaler":"no-such-upscaler"}""", "upscaler" },
    };

    [Theory]
    [MemberData(nameof(BadHires))]
    public async Task Hires_validation_answers_400_naming_the_field(string rule, string patch, string field)
    {
        using var response = await Client.PostRawAsync(JobsClient.Patched(patch));

        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, $"{rule}: {body}");
        JsonDocument.Parse(body).RootElement.GetProperty("errors").TryGetProperty(field, out _).ShouldBeTrue($"{rule}: expected errors[{field}] in {body}");
    }

    [Fact]
    public async Task A_hires_job_expands_into_base_tiles_and_stitch_derived_like_the_single_machine_render()
    {
        // 1024×768 in 512 tiles with 64 overlap: 3 columns × 2 rows; past the txt2img limit is fine for hires at 4096².
        var id = (await Client.SubmitAsync(Hires(1024, 768, seed: 42))).Id();

        var items = await QueryAsync(db => db.Items.AsNoTracking().Where(i => i.JobId == id).OrderBy(i => i.Index).ToListAsync());
        var grid = TileGrid.Create(1024, 768, 512, 64);
        grid.Tiles.Count.ShouldBe(6);
        items.Count.ShouldBe(grid.Tiles.Count + 2);

        var (baseWidth, baseHeight) = HiresRequestRules.DefaultBaseSize(1024, 768);
        items[0].ShouldSatisfyAllConditions(
            b => b.Mode.ShouldBe(RenderModes.Txt2Img),
            b => b.Seed.ShouldBe(42),
            b => (b.Width, b.Height).ShouldBe((baseWidth, baseHeight)),
            b => Part(b).Role.ShouldBe(HiresRoles.Base));
        foreach (var tile in grid.Tiles)
        {
            var item = items[tile.Index + 1];
            item.Mode.ShouldBe(RenderModes.HiresTile);
            item.Seed.ShouldBe(TileDerivation.Seed(42, tile.Index));
            item.Prompt.ShouldBe(TileDerivation.Prompt("a castle at dusk", tile.Index));
            (item.Width, item.Height).ShouldBe((tile.Width, tile.Height));
            item.Strength.ShouldBe(HiresLimits.DefaultStrength);
            var part = Part(item);
            (part.Role, part.TileIndex, part.TileCount, part.TileSize, part.Overlap).ShouldBe((HiresRoles.Tile, tile.Index, 6, 512, 64));
            part.BaseImageKey.ShouldBe(ArtifactKeys.Image(id, 0));
        }

        var stitch = items[^1];
        stitch.Mode.ShouldBe(RenderModes.HiresStitch);
        (stitch.Width, stitch.Height, stitch.Seed).ShouldBe((1024, 768, 42L));
        Part(stitch).TileKeys.ShouldBe([.. Enumerable.Range(1, 6).Select(i => ArtifactKeys.Image(id, i))]);

        var view = await Client.GetJobAsync(id);
        view.GetProperty("mode").GetString().ShouldBe("hires");
        view.GetProperty("items").GetInt64().ShouldBe(8);
        view.GetProperty("resultImage").ValueKind.ShouldBe(JsonValueKind.Null);
        var tiles = view.GetProperty("tiles").EnumerateArray().ToList();
        tiles.Select(t => (t.GetProperty("index").GetInt32(), t.GetProperty("x").GetInt32(), t.GetProperty("y").GetInt32(), t.GetProperty("width").GetInt32(), t.GetProperty("height").GetInt32()))
            .ShouldBe([.. grid.Tiles.Select(t => (t.Index, t.X, t.Y, t.Width, t.Height))]);
        tiles.ShouldAllBe(t => t.GetProperty("state").GetString() == "Queued");
    }

    [Fact]
    public async Task An_upscaler_pushed_to_the_store_is_accepted_and_named_on_the_tiles_and_the_stitch()
    {
        var name = "upscaler-" + Guid.NewGuid().ToString("N")[..8];
        var folder = Directory.CreateTempSubdirectory("rf-pushed-upscaler-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(folder, "renderfarm-upscaler.json"), """{"scale": 2}""");
            var store = fixture.Factory.Services.GetRequiredService<IArtifactStore>();
            await new Storage.Models.ModelRepository(store).PushAsync(name, folder, replace: false, progress: null, CancellationToken.None);
            var job = Hires(1024, 768, seed: 42);
            job["upscaler"] = name;

            var id = (await Client.SubmitAsync(job)).Id();

            var items = await QueryAsync(db => db.Items.AsNoTracking().Where(i => i.JobId == id).OrderBy(i => i.Index).ToListAsync());
            Part(items[0]).Upscaler.ShouldBeNull();
            items.Skip(1).ShouldAllBe(i => Part(i).Upscaler == name);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Tiles_wait_for_the_base_and_the_stitch_for_every_tile_and_duplicates_release_nothing_twice()
    {
        var id = (await Client.SubmitAsync(Hires(1024, 768, seed: 7))).Id();

        // Only the base is sent at first.
        var baseUnit = await Probe.NextUnitAsync(id);
        var baseItem = baseUnit.Items.ShouldHaveSingleItem();
        baseItem.Index.ShouldBe(0);
        baseItem.Hires.ShouldNotBeNull().Role.ShouldBe(HiresRoles.Base);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(300))).ShouldBeFalse("tiles must wait for the base image");
        // Read after the wait: the unit can arrive before the dispatcher's transaction (which deletes its row) commits.
        (await CountAsync(db => db.Outbox.CountAsync(o => o.JobId == id))).ShouldBe(0);

        await RenderAsync(id, baseItem, "worker-base");
        await RenderAsync(id, baseItem, "worker-base");
        var tileUnits = await Probe.UnitsAsync(id, 6);
        tileUnits.ShouldAllBe(u => u.Items.Count == 1, "one tile per unit, so tiles spread over workers");
        var tiles = tileUnits.Select(u => u.Items[0]).OrderBy(i => i.Index).ToList();
        tiles.Select(t => t.Index).ShouldBe([1, 2, 3, 4, 5, 6]);
        tiles.ShouldAllBe(t => t.Mode == RenderModes.HiresTile && t.Hires!.BaseImageKey == ArtifactKeys.Image(id, 0));
        tiles.Select(t => t.Hires!.TileIndex).ShouldBe([0, 1, 2, 3, 4, 5]);

        for (var i = 0; i < tiles.Count - 1; i++)
        {
            await RenderAsync(id, tiles[i], $"worker-{i % 2}");
        }

        await Client.WaitForJobAsync(id, j => j.GetProperty("progress").GetProperty("succeeded").GetInt64() == 6);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(300))).ShouldBeFalse("the stitch must wait for the last tile (and the base must not release the tiles twice)");
        var running = await Client.GetJobAsync(id);
        running.GetProperty("state").GetString().ShouldBe("Running");
        running.GetProperty("tiles").EnumerateArray().Count(t => t.GetProperty("state").GetString() == "Succeeded").ShouldBe(5);

        await RenderAsync(id, tiles[^1], "worker-1");
        await RenderAsync(id, tiles[^1], "worker-1");
        var stitch = (await Probe.NextUnitAsync(id)).Items.ShouldHaveSingleItem();
        stitch.Index.ShouldBe(7);
        stitch.Mode.ShouldBe(RenderModes.HiresStitch);
        stitch.Hires!.TileKeys.ShouldBe([.. tiles.Select(t => t.OutputKey)]);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(300))).ShouldBeFalse("a duplicate last tile must not release the stitch twice");

        await RenderAsync(id, stitch, "worker-0");
        var done = await Client.WaitForStateAsync(id, "Succeeded");
        done.GetProperty("resultImage").GetString().ShouldBe($"/v1/images/{id}/7");
        var views = done.GetProperty("tiles").EnumerateArray().ToList();
        views.ShouldAllBe(t => t.GetProperty("state").GetString() == "Succeeded");
        views.Select(t => t.GetProperty("workerId").GetString()).ShouldBe(["worker-0", "worker-1", "worker-0", "worker-1", "worker-0", "worker-1"]);
    }

    [Fact]
    public async Task The_last_tiles_reported_in_one_batch_release_the_stitch_once()
    {
        var id = (await Client.SubmitAsync(Hires(1024, 768, seed: 11))).Id();
        await RenderAsync(id, (await Probe.NextUnitAsync(id)).Items.Single(), "worker-base");
        var tiles = (await Probe.UnitsAsync(id, 6)).Select(u => u.Items[0]).OrderBy(i => i.Index).ToList();
        foreach (var tile in tiles.Take(4))
        {
            await RenderAsync(id, tile, "worker-0");
        }

        await Client.WaitForJobAsync(id, j => j.GetProperty("progress").GetProperty("succeeded").GetInt64() == 5);
        await using (var scope = fixture.Factory.Services.CreateAsyncScope())
        {
            // Both last tiles in one batch (and one of them twice): each success must see the counters as of itself.
            var ledger = scope.ServiceProvider.GetRequiredService<ItemLedger>();
            ItemRendered Rendered(RenderItem tile) => new(tile.ItemId, id, tile.Attempt, tile.OutputKey, "worker-1", TimeSpan.FromSeconds(1));
            await ledger.RenderedAsync([Rendered(tiles[5]), Rendered(tiles[4]), Rendered(tiles[5])], CancellationToken.None);
        }

        var stitch = (await Probe.NextUnitAsync(id)).Items.ShouldHaveSingleItem();
        stitch.Mode.ShouldBe(RenderModes.HiresStitch);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(300))).ShouldBeFalse("the stitch must be released once");
        (await CountAsync(db => db.Outbox.CountAsync(o => o.JobId == id))).ShouldBe(0);
    }

    [Fact]
    public async Task A_tile_that_fails_for_good_fails_the_stitch_and_the_job()
    {
        // 640×512 in 512 tiles: two tiles side by side.
        var id = (await Client.SubmitAsync(Hires(640, 512, seed: 3))).Id();
        await RenderAsync(id, (await Probe.NextUnitAsync(id)).Items.Single(), "worker-a");
        var tiles = (await Probe.UnitsAsync(id, 2)).Select(u => u.Items[0]).OrderBy(i => i.Index).ToList();

        await Probe.Bus.Publish(new ItemStarted(tiles[0].ItemId, id, 1, "worker-a", DateTimeOffset.UtcNow));
        await Probe.Bus.Publish(new ItemFailed(tiles[0].ItemId, id, 1, "worker-a", "the tile's model file is corrupt", Retryable: false));
        await RenderAsync(id, tiles[1], "worker-b");

        var failed = await Client.WaitForStateAsync(id, "Failed");
        var errors = failed.GetProperty("errors").EnumerateArray().ToList();
        errors.ShouldContain(e => e.GetProperty("index").GetInt64() == 1 && e.GetProperty("error").GetString() == "the tile's model file is corrupt");
        errors.ShouldContain(e => e.GetProperty("index").GetInt64() == 3 && e.GetProperty("error").GetString() == HiresJobs.TileFailedError);
        failed.GetProperty("resultImage").ValueKind.ShouldBe(JsonValueKind.Null);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(300))).ShouldBeFalse("the stitch of a failed tile is never sent");
    }

    [Fact]
    public async Task A_base_that_fails_for_good_fails_the_waiting_tiles_and_ends_the_job()
    {
        var id = (await Client.SubmitAsync(Hires(1024, 768, seed: 5))).Id();
        var baseItem = (await Probe.NextUnitAsync(id)).Items.Single();

        await Probe.Bus.Publish(new ItemStarted(baseItem.ItemId, id, 1, "worker-a", DateTimeOffset.UtcNow));
        await Probe.Bus.Publish(new ItemFailed(baseItem.ItemId, id, 1, "worker-a", "prompt rejected by the safety checker", Retryable: false));

        var failed = await Client.WaitForStateAsync(id, "Failed");
        failed.GetProperty("progress").GetProperty("failed").GetInt64().ShouldBe(8);
        failed.GetProperty("tiles").EnumerateArray().ShouldAllBe(t => t.GetProperty("state").GetString() == "Failed");
        (await CountAsync(db => db.Items.CountAsync(i => i.JobId == id && i.Error == HiresJobs.BaseFailedError))).ShouldBe(7);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(300))).ShouldBeFalse("tiles of a failed base are never sent");
    }

    [Fact]
    public async Task An_init_image_is_the_base_so_the_tiles_are_released_at_once()
    {
        var job = Hires(640, 512, seed: 9);
        job["initImage"] = TestPng.Base64;

        var id = (await Client.SubmitAsync(job)).Id();

        var tiles = (await Probe.UnitsAsync(id, 2)).Select(u => u.Items.Single()).OrderBy(i => i.Index).ToList();
        tiles.Select(t => t.Index).ShouldBe([1, 2]);
        var baseKey = ArtifactKeys.JobPrefix(id) + "init.png";
        tiles.ShouldAllBe(t => t.Hires!.BaseImageKey == baseKey);
        var baseRow = await QueryAsync(db => db.Items.AsNoTracking().SingleAsync(i => i.JobId == id && i.Index == 0));
        (baseRow.State, baseRow.ArtifactKey, baseRow.Width, baseRow.Height).ShouldBe((ItemState.Succeeded, baseKey, 2, 2));
        var view = await Client.GetJobAsync(id);
        view.GetProperty("state").GetString().ShouldBe("Queued");
        view.GetProperty("progress").GetProperty("succeeded").GetInt64().ShouldBe(1);
    }

    private static JsonObject Hires(int width, int height, long seed)
    {
        var job = JobsClient.ValidJob("a castle at dusk");
        job["mode"] = "hires";
        job["width"] = width;
        job["height"] = height;
        job["seed"] = seed;
        job["tile"] = 512;
        job["overlap"] = 64;
        return job;
    }

    private static HiresPart Part(ItemRow row) => JsonSerializer.Deserialize<HiresPart>(row.Hires!, HiresJobs.PartJson)!;

    private async Task RenderAsync(Guid jobId, RenderItem item, string worker)
    {
        await Probe.Bus.Publish(new ItemStarted(item.ItemId, jobId, item.Attempt, worker, DateTimeOffset.UtcNow));
        await Probe.Bus.Publish(new ItemRendered(item.ItemId, jobId, item.Attempt, item.OutputKey, worker, TimeSpan.FromSeconds(1)));
    }

    private Task<T> QueryAsync<T>(Func<CoordinatorDbContext, Task<T>> query) => fixture.QueryAsync(query);

    private Task<int> CountAsync(Func<CoordinatorDbContext, Task<int>> query) => QueryAsync(query);
}

/// <summary>Hires behaviour on the real PostgreSQL.</summary>
public sealed class PostgresHiresJobTests(PostgresCoordinatorFixture fixture)
    : HiresJobTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>Hires behaviour on embedded SQLite.</summary>
public sealed class SqliteHiresJobTests(SqliteCoordinatorFixture fixture)
    : HiresJobTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
