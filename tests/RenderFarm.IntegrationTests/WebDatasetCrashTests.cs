using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using RenderFarm.IntegrationTests.Infrastructure;
using RenderFarm.Storage;
using RenderFarm.Storage.Datasets;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

/// <summary>WebDataset output on the real PostgreSQL, RabbitMQ and S3, with worker processes, one of them SIGKILLed mid-shard.</summary>
public sealed class WebDatasetCrashTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    private const int Items = 8;
    private const int ShardSize = 4;

    [Fact]
    public async Task A_worker_killed_mid_shard_still_yields_every_sample_once_with_the_manifests_hashes()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        var settings = new Dictionary<string, string>(Farm.ShortLeases, StringComparer.Ordinal)
        {
            // A unit is one shard: the victim holds finished images of its shard, packed only when the unit ends.
            ["Coordinator__WorkUnitSize"] = ShardSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Coordinator__Datasets__Interval"] = "00:00:00.500",
        };
        await using var farm = new Farm(environment, output, settings);
        await farm.StartCoordinatorAsync(ct);
        var victim = await farm.StartWorkerAsync("wds-victim", ct);
        await farm.StartWorkerAsync("wds-survivor", ct);

        // 1000 steps (the most a job may ask) keep each item running long enough that the ledger shows a later item of the
        // victim's unit running with steps recorded before it finishes, on a fast machine too (200 were not, once).
        var job = Farm.Job(count: Items, steps: 1000, seed: 300, prompt: "a dataset that survives");
        job["output"] = new JsonObject { ["format"] = "webdataset", ["shardSize"] = ShardSize };
        var jobId = await farm.SubmitAsync(job, ct);
        // Killed while rendering a later item of its unit: the earlier ones are finished, in its memory, not yet stored.
        await farm.WaitForJobAsync(jobId, j => VictimItem(j) is not null, TimeSpan.FromSeconds(90), ct);

        victim.Kill();

        var done = await farm.WaitForJobAsync(jobId, Farm.IsFinal, TimeSpan.FromSeconds(120), ct);
        Farm.State(done).ShouldBe("Succeeded", done.ToString());
        JobAssertions.ImagesExactlyOnce(done, Items);
        JsonElement shards = default;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        do
        {
            await Task.Delay(250, ct);
            shards = JsonDocument.Parse(await farm.Client.GetStringAsync($"v1/jobs/{jobId}/shards", ct)).RootElement.Clone();
        }
        while (!shards.GetProperty("complete").GetBoolean() && DateTime.UtcNow < deadline);
        shards.GetProperty("complete").GetBoolean().ShouldBeTrue(shards.ToString());

        var manifest = (await farm.Client.GetStringAsync($"v1/jobs/{jobId}/manifest", ct)).TrimEnd('\n').Split('\n')
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        manifest.Count.ShouldBe(Items);
        var samples = new List<string>();
        for (var shard = 0; shard < Items / ShardSize; shard++)
        {
            // Through the coordinator, which redirects to a presigned URL of the S3 store.
            await using var tar = await farm.Client.GetStreamAsync($"v1/jobs/{jobId}/shards/{shard}", ct);
            using var local = new MemoryStream();
            await tar.CopyToAsync(local, ct);
            local.Position = 0;
            await foreach (var (name, png) in DatasetTar.ReadMembersAsync(local, n => n.EndsWith(".png", StringComparison.Ordinal), ct))
            {
                var key = Path.GetFileNameWithoutExtension(name);
                samples.Add(key);
                var entry = manifest.Single(e => e.GetProperty("key").GetString() == key);
                entry.GetProperty("shard").GetInt32().ShouldBe(shard);
                Convert.ToHexStringLower(SHA256.HashData(png)).ShouldBe(entry.GetProperty("sha256").GetString());
            }
        }

        samples.ShouldBe(Enumerable.Range(0, Items).Select(i => i.ToString("D9", System.Globalization.CultureInfo.InvariantCulture)), ignoreOrder: true);
        // The ledger points every item at its published shard (its part was read into it and removed).
        var ledger = await environment.ItemsAsync(jobId, ct);
        ledger.ShouldAllBe(row => row.ArtifactKey == ArtifactKeys.DatasetShard(jobId, (int)(row.Index / ShardSize)));
        output.WriteLine($"ledger: {string.Join("; ", ledger)}");
        farm.Passed();
    }

    // An item the victim renders after the first of its unit, with a step reported.
    private static long? VictimItem(JsonElement job) =>
        job.GetProperty("runningItems").EnumerateArray()
            .Where(i => i.GetProperty("workerId").GetString() == "wds-victim" && i.GetProperty("step").GetInt32() > 0 && i.GetProperty("index").GetInt64() % ShardSize > 0)
            .Select(i => (long?)i.GetProperty("index").GetInt64())
            .FirstOrDefault();
}
