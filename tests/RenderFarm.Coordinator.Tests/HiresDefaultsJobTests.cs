using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Domain.Tiling;
using RenderFarm.ModelGenerator;
using RenderFarm.Storage;
using RenderFarm.Storage.Models;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// A hires job's tile, overlap and base default to its model's native side, which the coordinator reads from the
/// model's files in the store: generated tiny models of the three families pushed as a client would push them.
/// </summary>
public abstract class HiresDefaultsJobTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private static readonly string ModelsRoot = Path.Combine(Path.GetTempPath(), "rf-coordinator-tests-models");

    private HttpClient Client => fixture.Client;

    /// <summary>Family → the defaults a 2048×1536 hires job gets: tile, overlap, base width and height.</summary>
    public static TheoryData<string, int, int, int, int> Families => new()
    {
        // SD 1.x: 512 tiles, 64 overlap, ~512² base at 4:3.
        { "tiny", 512, 64, 592, 440 },
        // SD 2.x 768-v (v-prediction): 768 tiles, 96 overlap, ~768² base.
        { "tiny-sd2", 768, 96, 888, 664 },
        // SDXL: 1024 tiles, 128 overlap, ~1024² base.
        { "tiny-sdxl", 1024, 128, 1184, 888 },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public async Task A_hires_job_on_a_pushed_model_gets_the_tile_overlap_and_base_of_the_models_family(string kind, int tile, int overlap, int baseWidth, int baseHeight)
    {
        var model = await PushAsync(kind);

        var id = (await Client.SubmitAsync(Hires(model))).Id();

        var (stored, items) = await JobAsync(id);
        (stored.GetProperty("tile").GetInt32(), stored.GetProperty("overlap").GetInt32()).ShouldBe((tile, overlap));
        (stored.GetProperty("baseWidth").GetInt32(), stored.GetProperty("baseHeight").GetInt32()).ShouldBe((baseWidth, baseHeight));
        (items[0].Width, items[0].Height).ShouldBe((baseWidth, baseHeight));
        var grid = TileGrid.Create(2048, 1536, tile, overlap);
        items.Count.ShouldBe(grid.Tiles.Count + 2);
        items.Skip(1).Take(grid.Tiles.Count).Select(i => (i.Width, i.Height)).ShouldBe(grid.Tiles.Select(t => (t.Width, t.Height)));
        items.ShouldAllBe(i => i.Model == model);
    }

    [Fact]
    public async Task Explicit_tile_overlap_and_base_win_over_an_sdxl_models_defaults()
    {
        var model = await PushAsync("tiny-sdxl");
        var job = Hires(model);
        job["tile"] = 512;
        job["overlap"] = 32;
        job["baseWidth"] = 512;
        job["baseHeight"] = 384;

        var id = (await Client.SubmitAsync(job)).Id();

        var (stored, items) = await JobAsync(id);
        (stored.GetProperty("tile").GetInt32(), stored.GetProperty("overlap").GetInt32()).ShouldBe((512, 32));
        (items[0].Width, items[0].Height).ShouldBe((512, 384));
        items.Count.ShouldBe(TileGrid.Create(2048, 1536, 512, 32).Tiles.Count + 2);
    }

    [Fact]
    public async Task An_explicit_tile_alone_keeps_the_models_overlap_and_base()
    {
        var model = await PushAsync("tiny-sdxl");
        var job = Hires(model);
        job["tile"] = 640;

        var id = (await Client.SubmitAsync(job)).Id();

        var (stored, items) = await JobAsync(id);
        (stored.GetProperty("tile").GetInt32(), stored.GetProperty("overlap").GetInt32()).ShouldBe((640, 128));
        (items[0].Width, items[0].Height).ShouldBe((1184, 888));
    }

    [Fact]
    public async Task A_model_the_store_does_not_hold_gets_sd_1_x_defaults()
    {
        // tiny-sd is configured on the coordinator by name only (the workers have it): nothing to read its family from.
        var id = (await Client.SubmitAsync(Hires("tiny-sd"))).Id();

        var (stored, items) = await JobAsync(id);
        (stored.GetProperty("tile").GetInt32(), stored.GetProperty("overlap").GetInt32()).ShouldBe((HiresLimits.DefaultTile, HiresLimits.DefaultOverlap));
        (items[0].Width, items[0].Height).ShouldBe((592, 440));
    }

    private static JsonObject Hires(string model)
    {
        var job = JobsClient.ValidJob("a harbour at dawn");
        job["mode"] = "hires";
        job["model"] = model;
        job["width"] = 2048;
        job["height"] = 1536;
        job["seed"] = 7;
        return job;
    }

    // The generated model, pushed under a fresh name (the store outlives the test run).
    private async Task<string> PushAsync(string kind)
    {
        var options = kind switch
        {
            "tiny" => new TinyModelOptions(),
            "tiny-sd2" => new TinyModelOptions(Family: TinyFamily.StableDiffusion2),
            "tiny-sdxl" => new TinyModelOptions(Family: TinyFamily.StableDiffusionXL),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
        var folder = TestModels.EnsureTiny(Path.Combine(ModelsRoot, kind), options);
        var name = kind + "-" + Guid.NewGuid().ToString("N")[..8];
        var store = fixture.Factory.Services.GetRequiredService<IArtifactStore>();
        await new ModelRepository(store).PushAsync(name, folder, replace: false, progress: null, CancellationToken.None);
        return name;
    }

    private async Task<(JsonElement Request, List<ItemRow> Items)> JobAsync(Guid id)
    {
        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var job = await db.Jobs.AsNoTracking().SingleAsync(j => j.Id == id);
        var items = await db.Items.AsNoTracking().Where(i => i.JobId == id).OrderBy(i => i.Index).ToListAsync();
        return (JsonDocument.Parse(job.Request).RootElement.Clone(), items);
    }
}

/// <summary>Per-family hires defaults on the real PostgreSQL.</summary>
public sealed class PostgresHiresDefaultsJobTests(PostgresCoordinatorFixture fixture)
    : HiresDefaultsJobTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>Per-family hires defaults on embedded SQLite.</summary>
public sealed class SqliteHiresDefaultsJobTests(SqliteCoordinatorFixture fixture)
    : HiresDefaultsJobTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
