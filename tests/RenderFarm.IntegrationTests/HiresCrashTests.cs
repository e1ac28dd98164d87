using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.IntegrationTests.Infrastructure;
using RenderFarm.Storage;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

/// <summary>Distributed hires survives a worker that dies in the middle of a tile (issue 6).</summary>
public sealed class HiresCrashTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    private const int Side = 384;
    private const int TileCount = 4;
    private const long Seed = 90;
    private const string Prompt = "a tile that outlives its worker";

    // The items table stores ItemState as its number; Succeeded is 3 (RenderFarm.Domain.States, not referenced here).
    private const string SucceededInLedger = "3";

    [Fact]
    public async Task A_worker_killed_mid_tile_leaves_the_tile_to_the_survivor_and_the_image_is_still_stitched()
    {
        // Generous: the survivor renders three or four tiles alone, and under a loaded CI (every project in parallel on two
        // cores) that took two minutes; the bound only stops a hung farm.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var ct = timeout.Token;
        await using var farm = new Farm(environment, output, Farm.ShortLeases);
        await farm.StartCoordinatorAsync(ct);
        var victim = await farm.StartWorkerAsync("it-victim", ct);
        await farm.StartWorkerAsync("it-survivor", ct);

        // 384² in four 256² tiles (overlap 128) from a 64² base. The base denoises all 1000 steps (64² is quick); each
        // tile denoises steps × strength = 300 steps of 256², about 5 s unloaded and longer under load, so the kill
        // lands mid-tile, while the survivor's share (its own tiles and the killed one) stays well under a minute.
        var clock = Stopwatch.StartNew();
        var jobId = await farm.SubmitAsync(new JsonObject
        {
            ["prompt"] = Prompt,
            ["mode"] = "hires",
            ["width"] = Side,
            ["height"] = Side,
            ["tile"] = 256,
            ["overlap"] = 128,
            ["strength"] = 0.3,
            ["baseWidth"] = 64,
            ["baseHeight"] = 64,
            ["steps"] = 1000,
            ["guidanceScale"] = 7.5,
            ["sampler"] = "euler",
            ["seed"] = Seed,
            ["model"] = FarmEnvironment.ModelName,
        }, ct);
        var running = await farm.WaitForJobAsync(jobId, job => VictimTile(job) is not null, TimeSpan.FromMinutes(2), ct);
        var (killedIndex, killedStep, tileSteps) = VictimTile(running)!.Value;

        victim.Kill();
        var killedAt = clock.Elapsed;

        var done = await farm.WaitForJobAsync(jobId, Farm.IsFinal, TimeSpan.FromMinutes(4), ct);
        Farm.State(done).ShouldBe("Succeeded", done.ToString());
        var tiles = done.GetProperty("tiles").EnumerateArray()
            .Select(t => (Index: t.GetProperty("index").GetInt32(), WorkerId: t.GetProperty("workerId").GetString(), State: t.GetProperty("state").GetString()))
            .ToList();
        tiles.Select(t => t.Index).ShouldBe(Enumerable.Range(0, TileCount));
        tiles.ShouldAllBe(t => t.State == "Succeeded");
        tiles.Single(t => t.Index + 1 == killedIndex).WorkerId.ShouldBe("it-survivor", "the killed tile must have been rendered again by the survivor");

        // The ledger: base, every tile and the stitch succeeded once, each with its image; the killed tile was handed
        // on (its attempt moved when the rescuer re-placed it, or the broker redelivered it as is) and finished by the survivor.
        var ledger = await environment.ItemsAsync(jobId, ct);
        ledger.Select(row => row.Index).ShouldBe(Enumerable.Range(0, TileCount + 2).Select(i => (long)i));
        ledger.ShouldAllBe(row => row.State == SucceededInLedger && row.ArtifactKey != null);
        var killed = ledger.Single(row => row.Index == killedIndex);
        killed.WorkerId.ShouldBe("it-survivor");
        output.WriteLine($"killed tile item {killedIndex} at {killedAt.TotalSeconds:0.0} s (step {killedStep} of {tileSteps}), job done at {clock.Elapsed.TotalSeconds:0.0} s; " +
            $"the killed tile's attempt {killed.Attempt}; ledger: {string.Join("; ", ledger)}");

        // The final image in the bucket: the stitch's key, the target size, the job's parameters.
        using var store = environment.CreateStore();
        await using var stream = await store.OpenReadAsync(ArtifactKeys.Image(jobId, TileCount + 1), ct);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, ct);
        var png = buffer.ToArray();
        var image = PngCodec.Decode(png);
        (image.Width, image.Height).ShouldBe((Side, Side));
        var parameters = PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword];
        parameters.ShouldStartWith(Prompt);
        parameters.ShouldContain($"Seed: {Seed}, Size: {Side}x{Side}");
        parameters.ShouldContain($"Hires tiles: {TileCount}");
        farm.Passed();
    }

    // A tile the victim is rendering and has reported a step of, as (item index, step, of steps); tiles are items 1..TileCount.
    private static (long Index, int Step, int Of)? VictimTile(JsonElement job) =>
        job.GetProperty("runningItems").EnumerateArray()
            .Where(i => i.GetProperty("workerId").GetString() == "it-victim" && i.GetProperty("step").GetInt32() > 0)
            .Select(i => (Index: i.GetProperty("index").GetInt64(), Step: i.GetProperty("step").GetInt32(), Of: i.GetProperty("totalSteps").GetInt32()))
            .Where(i => i.Index is >= 1 and <= TileCount)
            .Select(i => ((long, int, int)?)i)
            .FirstOrDefault();
}
