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
/// Upscale jobs through the coordinator: the client's image enlarged by a named upscaler, run as a hires job whose
/// base is the image and whose tiles are only upscaled (strength 0), with the bus probe standing in for workers.
/// </summary>
public abstract class UpscaleJobTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    /// <summary>Field errors an upscale mistake must produce (rule, JSON merge patch onto a valid txt2img job, field).</summary>
    public static TheoryData<string, string, string> BadUpscale => new()
    {
        { "no initImage", """{"mode":"upscale","width":128,"height":128,"upscaler":"no-such-upscaler"}""", "initImage" },
        { "no upscaler", $$"""{"mode":"upscale","width":128,"height":128,"initImage":"{{TestPng.Base64}}"}""", "upscaler" },
        { "strength given", $$"""{"mode":"upscale","width":128,"height":128,"initImage":"{{TestPng.Base64}}","strength":0.5}""", "strength" },
        { "upscaler the farm does not have", $$"""{"mode":"upscale","width":128,"height":128,"initImage":"{{TestPng.Base64}}","upscaler":"no-such-upscaler"}""", "upscaler" },
        { "count", $$"""{"mode":"upscale","width":128,"height":128,"initImage":"{{TestPng.Base64}}","count":2}""", "count" },
        { "base size", $$"""{"mode":"upscale","width":128,"height":128,"initImage":"{{TestPng.Base64}}","baseWidth":64,"baseHeight":64}""", "baseWidth" },
        { "tile off the latent grid", $$"""{"mode":"upscale","width":128,"height":128,"initImage":"{{TestPng.Base64}}","tile":60}""", "tile" },
        { "no width", $$"""{"mode":"upscale","width":null,"initImage":"{{TestPng.Base64}}"}""", "width" },
    };

    [Theory]
    [MemberData(nameof(BadUpscale))]
    public async Task Upscale_validation_answers_400_naming_the_field(string rule, string patch, string field)
    {
        using var response = await Client.PostRawAsync(JobsClient.Patched(patch));

        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, $"{rule}: {body}");
        JsonDocument.Parse(body).RootElement.GetProperty("errors").TryGetProperty(field, out _).ShouldBeTrue($"{rule}: expected errors[{field}] in {body}");
    }

    [Fact]
    public async Task An_upscale_job_needs_no_prompt_or_denoising_settings_and_expands_into_upscale_only_tiles_and_a_stitch()
    {
        var name = await PushUpscalerAsync();
        // Only what an upscale needs: no prompt, steps, guidance or sampler.
        var job = new JsonObject
        {
            ["mode"] = "upscale",
            ["initImage"] = TestPng.Base64,
            ["upscaler"] = name,
            ["width"] = 128,
            ["height"] = 128,
            ["tile"] = 64,
            ["overlap"] = 16,
        };

        var id = (await Client.SubmitAsync(job)).Id();

        var grid = TileGrid.Create(128, 128, 64, 16);
        var items = await QueryAsync(db => db.Items.AsNoTracking().Where(i => i.JobId == id).OrderBy(i => i.Index).ToListAsync());
        items.Count.ShouldBe(grid.Tiles.Count + 2);
        // The base is the client's image, already there: nothing renders it.
        var baseKey = ArtifactKeys.JobPrefix(id) + "init.png";
        (items[0].State, items[0].ArtifactKey).ShouldBe((ItemState.Succeeded, baseKey));
        foreach (var tile in grid.Tiles)
        {
            var item = items[tile.Index + 1];
            item.Mode.ShouldBe(RenderModes.HiresTile);
            item.Strength.ShouldBe(HiresExpansion.UpscaleOnlyStrength);
            (item.Width, item.Height).ShouldBe((tile.Width, tile.Height));
            var part = Part(item);
            (part.Role, part.TileIndex, part.Upscaler, part.BaseImageKey).ShouldBe((HiresRoles.Tile, tile.Index, name, baseKey));
        }

        var stitch = items[^1];
        (stitch.Mode, stitch.Strength, Part(stitch).Upscaler).ShouldBe((RenderModes.HiresStitch, HiresExpansion.UpscaleOnlyStrength, name));
        // Its items name the upscaler, the only model they run, so placement prefers workers that hold it.
        items.Skip(1).ShouldAllBe(i => i.Model == name);

        // Every tile is sent at once; the stitch waits for them.
        var units = await Probe.UnitsAsync(id, grid.Tiles.Count);
        units.Select(u => u.Items.Single().Index).Order().ShouldBe([.. Enumerable.Range(1, grid.Tiles.Count).Select(i => (long)i)]);
        units.ShouldAllBe(u => u.Items.Single().Mode == RenderModes.HiresTile);

        var view = await Client.GetJobAsync(id);
        view.GetProperty("mode").GetString().ShouldBe(RenderModes.Upscale);
        view.GetProperty("tiles").GetArrayLength().ShouldBe(grid.Tiles.Count);
        // The client's image is the job's first image; no steps, guidance or sampler made it (or any image of the job).
        var image = view.GetProperty("images").EnumerateArray().Single();
        image.GetProperty("index").GetInt64().ShouldBe(0);
        foreach (var field in new[] { "steps", "guidanceScale", "sampler" })
        {
            image.GetProperty(field).ValueKind.ShouldBe(JsonValueKind.Null, field);
        }

        var stored = JsonDocument.Parse((await QueryAsync(db => db.Jobs.AsNoTracking().SingleAsync(j => j.Id == id))).Request).RootElement;
        (stored.TryGetProperty("strength", out var strength) && strength.ValueKind == JsonValueKind.Number).ShouldBeFalse("an upscale job has no refinement strength");
    }

    private async Task<string> PushUpscalerAsync()
    {
        var name = "upscaler-" + Guid.NewGuid().ToString("N")[..8];
        var folder = Directory.CreateTempSubdirectory("rf-upscale-job-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(folder, "renderfarm-upscaler.json"), """{"scale": 2}""");
            var store = fixture.Factory.Services.GetRequiredService<IArtifactStore>();
            await new Storage.Models.ModelRepository(store).PushAsync(name, folder, replace: false, progress: null, CancellationToken.None);
            return name;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static HiresPart Part(ItemRow row) => JsonSerializer.Deserialize<HiresPart>(row.Hires!, HiresJobs.PartJson)!;

    private Task<T> QueryAsync<T>(Func<CoordinatorDbContext, Task<T>> query) => fixture.QueryAsync(query);
}

/// <summary>Upscale jobs on the real PostgreSQL.</summary>
public sealed class PostgresUpscaleJobTests(PostgresCoordinatorFixture fixture)
    : UpscaleJobTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>Upscale jobs on embedded SQLite.</summary>
public sealed class SqliteUpscaleJobTests(SqliteCoordinatorFixture fixture)
    : UpscaleJobTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
