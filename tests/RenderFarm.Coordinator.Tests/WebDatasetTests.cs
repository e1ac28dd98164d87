using System.Formats.Tar;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Parquet;
using Parquet.Serialization;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Datasets;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Storage;
using RenderFarm.Storage.Datasets;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// WebDataset output on PostgreSQL and on SQLite: the bus probe plays the workers, writing one tar part per unit and
/// shard as the worker does, and the shard assembler turns the parts into shards.
/// </summary>
public abstract class WebDatasetTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private const int ShardSize = 4;

    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    private IArtifactStore Store => fixture.Factory.Services.GetRequiredService<IArtifactStore>();

    [Fact]
    public async Task Each_item_is_sent_to_be_packed_into_its_shards_part_under_its_key()
    {
        var (id, items) = await SubmitAsync(6);

        items.Select(i => i.Pack!.PartPrefix).ShouldBe([.. items.Select(i => $"datasets/{id}/parts/{i.Index / ShardSize:D6}/")]);
        items.Select(i => i.Pack!.MemberName).ShouldBe([.. items.Select(i => $"{i.Index:D9}.png")]);
    }

    [Fact]
    public async Task Shards_hold_every_sample_once_with_its_metadata_and_a_unit_delivered_twice_counts_once()
    {
        var (id, items) = await SubmitAsync(10);
        // Units of 3 cross shards of 4: unit [3,4,5] writes one part for shard 0 and one for shard 1.
        var first = await RenderAsync(id, items, "worker-a");
        // The whole job delivered again to another worker, whose images differ, while the first reports may still be
        // in flight: the ledger keeps whichever report of an item it records first, and only that image.
        var second = await RenderAsync(id, items, "worker-b");

        var shards = await WaitForCompleteAsync(id);

        shards.GetProperty("shardCount").GetInt32().ShouldBe(3);
        shards.GetProperty("shards").EnumerateArray().Select(s => (s.GetProperty("shard").GetInt32(), s.GetProperty("count").GetInt32(), s.GetProperty("successes").GetInt32()))
            .ShouldBe([(0, 4, 4), (1, 4, 4), (2, 2, 2)]);
        var manifest = await ManifestAsync(id);
        manifest.Select(e => e.Shard).ShouldBe([0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
        manifest.ShouldAllBe(e => e.Sha256 == Sha256(first[e.Index]) || e.Sha256 == Sha256(second[e.Index]));
        var samples = new List<string>();
        for (var shard = 0; shard < 3; shard++)
        {
            var members = await ReadTarAsync(ArtifactKeys.DatasetShard(id, shard));
            // WebDataset reads a sample as consecutive members sharing a key.
            members.Select(m => m.Name).Chunk(3).ShouldAllBe(sample => sample.Select(Path.GetFileNameWithoutExtension).Distinct().Count() == 1);
            foreach (var (name, content) in members.Where(m => m.Name.EndsWith(".png", StringComparison.Ordinal)))
            {
                var key = Path.GetFileNameWithoutExtension(name);
                samples.Add(key);
                var entry = manifest.Single(e => e.Key == key);
                entry.Shard.ShouldBe(shard);
                Sha256(content).ShouldBe(entry.Sha256);
                Encoding.UTF8.GetString(members.Single(m => m.Name == key + ".txt").Content).ShouldBe(entry.Prompt);
                var json = JsonDocument.Parse(members.Single(m => m.Name == key + ".json").Content).RootElement;
                (json.GetProperty("key").GetString(), json.GetProperty("index").GetInt64(), json.GetProperty("prompt").GetString(), json.GetProperty("seed").GetInt64())
                    .ShouldBe((entry.Key, entry.Index, entry.Prompt, entry.Seed));
                (json.GetProperty("steps").GetInt32(), json.GetProperty("guidanceScale").GetDouble(), json.GetProperty("sampler").GetString(), json.GetProperty("model").GetString())
                    .ShouldBe((4, 7.5, "euler", entry.Model));
                (json.GetProperty("sha256").GetString(), json.GetProperty("modelHash").GetString(), json.GetProperty("worker").GetString())
                    .ShouldBe((entry.Sha256, new string('c', 64), entry.Sha256 == Sha256(first[entry.Index]) ? "worker-a" : "worker-b"));
                json.GetProperty("renderSeconds").GetDouble().ShouldBeGreaterThanOrEqualTo(0);
                (json.GetProperty("safety").GetString(), entry.Safety).ShouldBe(("passed", "passed"));
            }

            var stats = JsonDocument.Parse(await ReadAllAsync(ArtifactKeys.DatasetShardStats(id, shard))).RootElement;
            (stats.GetProperty("count").GetInt32(), stats.GetProperty("successes").GetInt32(), stats.GetProperty("failures").GetInt32())
                .ShouldBe((shard == 2 ? 2 : 4, shard == 2 ? 2 : 4, 0));
            stats.GetProperty("duration").GetDouble().ShouldBeGreaterThanOrEqualTo(0);
            stats.GetProperty("start").GetDateTimeOffset().ShouldBeLessThanOrEqualTo(stats.GetProperty("end").GetDateTimeOffset());
        }

        samples.ShouldBe([.. items.Select(i => $"{i.Index:D9}")], ignoreOrder: true);
        // Parts an item names were read into the shards and removed; what stays (it goes with the job) is only parts
        // whose every sample lost to the other delivery's report.
        var won = manifest.ToDictionary(e => e.Index, e => e.Sha256 == Sha256(first[e.Index]) ? "worker-a" : "worker-b");
        foreach (var part in await KeysAsync($"datasets/{id}/parts/"))
        {
            var worker = part.Contains("/worker-a-", StringComparison.Ordinal) ? "worker-a" : "worker-b";
            foreach (var (name, _) in await ReadTarAsync(part))
            {
                won[long.Parse(Path.GetFileNameWithoutExtension(name), CultureInfo.InvariantCulture)].ShouldNotBe(worker, $"{part} holds a sample its delivery won, yet was kept");
            }
        }

        // An image of a WebDataset job is served out of its shard: the recorded delivery's.
        (await Client.GetByteArrayAsync($"/v1/images/{id}/5")).ShouldBe(won[5] == "worker-a" ? first[5] : second[5]);
    }

    [Fact]
    public async Task A_shard_is_published_when_its_own_items_are_final_and_counts_failures()
    {
        var (id, items) = await SubmitAsync(8);
        // Shard 0: three images and one failure for good; shard 1: not finished.
        var shard0 = items.Where(i => i.Index < ShardSize).ToList();
        await RenderAsync(id, shard0.Take(3).ToList(), "worker-a");
        await Probe.Bus.Publish(new ItemFailed(shard0[3].ItemId, id, 1, "worker-a", "bad input", Retryable: false));

        var shards = await WaitForShardsAsync(id, 1);

        shards.GetProperty("complete").GetBoolean().ShouldBeFalse();
        var stats = JsonDocument.Parse(await ReadAllAsync(ArtifactKeys.DatasetShardStats(id, 0))).RootElement;
        (stats.GetProperty("count").GetInt32(), stats.GetProperty("successes").GetInt32(), stats.GetProperty("failures").GetInt32()).ShouldBe((4, 3, 1));
        (await ReadTarAsync(ArtifactKeys.DatasetShard(id, 0))).Count.ShouldBe(9);
        (await Store.ExistsAsync(ArtifactKeys.DatasetShard(id, 1), CancellationToken.None)).ShouldBeFalse();
        using var unpublished = await Client.GetAsync($"/v1/jobs/{id}/shards/1");
        unpublished.StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_retried_failure_is_added_to_its_published_shard_and_the_other_samples_are_kept()
    {
        var (id, items) = await SubmitAsync(4);
        var first = await RenderAsync(id, items.Take(3).ToList(), "worker-a");
        await Probe.Bus.Publish(new ItemFailed(items[3].ItemId, id, 1, "worker-a", "bad input", Retryable: false));
        await WaitForCompleteAsync(id);
        (await ReadTarAsync(ArtifactKeys.DatasetShard(id, 0))).Count.ShouldBe(9);

        using var retry = await Client.PostAsync($"/v1/jobs/{id}/retry", content: null);
        retry.StatusCode.ShouldBe(HttpStatusCode.OK, await retry.Content.ReadAsStringAsync());
        var again = (await Probe.UnitsAsync(id, 1)).SelectMany(u => u.Items).Single();
        var retried = await RenderAsync(id, [again], "worker-b");

        await Client.WaitForStateAsync(id, "Succeeded");
        var shards = await WaitForCompleteAsync(id);
        shards.GetProperty("shards")[0].GetProperty("successes").GetInt32().ShouldBe(4);
        var pngs = (await ReadTarAsync(ArtifactKeys.DatasetShard(id, 0))).Where(m => m.Name.EndsWith(".png", StringComparison.Ordinal)).ToDictionary(m => m.Name, m => m.Content);
        pngs.Keys.Order().ShouldBe(["000000000.png", "000000001.png", "000000002.png", "000000003.png"]);
        pngs["000000001.png"].ShouldBe(first[1]);
        pngs["000000003.png"].ShouldBe(retried[3]);
    }

    [Fact]
    public async Task The_parquet_manifest_carries_the_same_shard_column_as_the_jsonl()
    {
        var (id, items) = await SubmitAsync(6);
        await RenderAsync(id, items, "worker-a");
        await WaitForCompleteAsync(id);

        var jsonl = await ManifestAsync(id);
        using var parquet = new MemoryStream(await Client.GetByteArrayAsync($"/v1/jobs/{id}/manifest?format=parquet"));
        var read = await ParquetSerializer.DeserializeAsync<DatasetManifestTests<TFixture>.ParquetRow>(parquet, new ParquetOptions { PropertyNameCaseInsensitive = true });

        read.Schema.DataFields.Select(f => f.Name).ShouldBe(DatasetManifestTests<TFixture>.Columns);
        read.Data.Select(r => r.ToEntry()).ToList().ShouldBe(jsonl);
        jsonl.Select(e => e.Shard).ShouldBe([0, 0, 0, 0, 1, 1]);
    }

    [Fact]
    public async Task Deleting_a_webdataset_job_removes_its_shards_stats_and_leftover_parts()
    {
        var (id, items) = await SubmitAsync(4);
        await RenderAsync(id, items, "worker-a");
        // A second delivery's parts, which no item names, are left beside the shard.
        await RenderAsync(id, items, "worker-b");
        await WaitForCompleteAsync(id);
        (await KeysAsync($"datasets/{id}/")).Count.ShouldBe(2 + 2);

        using var deleted = await Client.DeleteAsync($"/v1/jobs/{id}");

        deleted.StatusCode.ShouldBe(HttpStatusCode.NoContent, await deleted.Content.ReadAsStringAsync());
        (await KeysAsync($"datasets/{id}/")).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("""{"format": "zip"}""", "output.format")]
    [InlineData("""{"format": "webdataset", "shardSize": 0}""", "output.shardSize")]
    [InlineData("""{"format": "webdataset", "shardSize": 100001}""", "output.shardSize")]
    [InlineData("""{"format": "files", "shardSize": 10}""", "output.shardSize")]
    public async Task A_bad_output_is_a_400_naming_the_field(string output, string field)
    {
        var job = JobsClient.ValidJob();
        job["output"] = JsonNode.Parse(output);

        using var response = await Client.PostRawAsync(job.ToJsonString());

        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, text);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        JsonDocument.Parse(text).RootElement.GetProperty("errors").TryGetProperty(field, out _).ShouldBeTrue(text);
    }

    [Fact]
    public async Task A_files_job_has_no_shards_and_a_null_shard_column()
    {
        var job = JobsClient.ValidJob();
        job["output"] = new JsonObject { ["format"] = "files" };
        var id = (await Client.SubmitAsync(job)).Id();

        (await Probe.UnitsAsync(id, 1)).SelectMany(u => u.Items).ShouldAllBe(i => i.Pack == null);
        (await ManifestAsync(id)).ShouldAllBe(e => e.Shard == null);
        using var shards = await Client.GetAsync($"/v1/jobs/{id}/shards");
        shards.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        JsonDocument.Parse(await shards.Content.ReadAsStringAsync()).RootElement.GetProperty("title").GetString().ShouldBe("Not a WebDataset job.");
    }

    /// <summary>A webdataset sweep over prompts, its units received; items in index order.</summary>
    private async Task<(Guid Id, List<RenderItem> Items)> SubmitAsync(int count)
    {
        var job = JobsClient.ValidJob();
        job.Remove("prompt");
        job["seed"] = 500;
        job["sweep"] = new JsonObject { ["prompts"] = new JsonArray([.. Enumerable.Range(0, count).Select(i => (JsonNode)$"sample prompt {i}")]) };
        job["output"] = new JsonObject { ["format"] = "webdataset", ["shardSize"] = ShardSize };
        var id = (await Client.SubmitAsync(job)).Id();
        var items = (await Probe.UnitsAsync(id, count)).SelectMany(u => u.Items).OrderBy(i => i.Index).ToList();
        return (id, items);
    }

    /// <summary>
    /// What a worker does with a unit of a WebDataset job: one tar part per shard with the items' PNGs (bytes unique
    /// to this worker and item), stored, then one report per item naming the part.
    /// </summary>
    private async Task<Dictionary<long, byte[]>> RenderAsync(Guid jobId, List<RenderItem> items, string worker)
    {
        var pngs = items.ToDictionary(i => i.Index, i => Encoding.UTF8.GetBytes($"png of {i.Index} by {worker} {Guid.NewGuid()}"));
        foreach (var unit in items.Chunk(CoordinatorFactory.WorkUnitSize))
        {
            foreach (var part in unit.GroupBy(i => i.Pack!.PartPrefix))
            {
                var key = $"{part.Key}{worker}-{Guid.NewGuid():N}.tar";
                using var tar = new MemoryStream();
                await using (var writer = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
                {
                    foreach (var item in part)
                    {
                        await DatasetTar.WriteMemberAsync(writer, item.Pack!.MemberName, pngs[item.Index], DateTimeOffset.UtcNow, CancellationToken.None);
                    }
                }

                tar.Position = 0;
                await Store.PutAsync(key, tar, "application/x-tar", CancellationToken.None);
                foreach (var item in part)
                {
                    await Probe.Bus.Publish(new ItemRendered(item.ItemId, jobId, item.Attempt, key, worker, TimeSpan.FromSeconds(1), Sha256(pngs[item.Index]), new string('c', 64), Safety: "passed"));
                }
            }
        }

        return pngs;
    }

    private async Task<JsonElement> WaitForCompleteAsync(Guid id) =>
        await WaitForAsync(id, s => s.GetProperty("complete").GetBoolean());

    private async Task<JsonElement> WaitForShardsAsync(Guid id, int published) =>
        await WaitForAsync(id, s => s.GetProperty("shards").GetArrayLength() >= published);

    private async Task<JsonElement> WaitForAsync(Guid id, Func<JsonElement, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var shards = JsonDocument.Parse(await Client.GetStringAsync($"/v1/jobs/{id}/shards")).RootElement;
            if (done(shards))
            {
                return shards;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The shards of job {id} did not get there: {shards}");
            }

            await Task.Delay(100);
        }
    }

    private async Task<List<ManifestEntry>> ManifestAsync(Guid id) =>
        [.. (await Client.GetStringAsync($"/v1/jobs/{id}/manifest")).TrimEnd('\n').Split('\n').Select(l => JsonSerializer.Deserialize<ManifestEntry>(l, JsonSerializerOptions.Web)!)];

    private async Task<List<(string Name, byte[] Content)>> ReadTarAsync(string key)
    {
        await using var tar = await Store.OpenReadAsync(key, CancellationToken.None);
        var members = new List<(string, byte[])>();
        await foreach (var member in DatasetTar.ReadMembersAsync(tar, _ => true, CancellationToken.None))
        {
            members.Add(member);
        }

        return members;
    }

    private async Task<byte[]> ReadAllAsync(string key)
    {
        await using var stream = await Store.OpenReadAsync(key, CancellationToken.None);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    private async Task<List<string>> KeysAsync(string prefix)
    {
        var keys = new List<string>();
        await foreach (var info in Store.ListAsync(prefix, CancellationToken.None))
        {
            keys.Add(info.Key);
        }

        return keys;
    }

    private static string Sha256(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));
}

/// <summary>WebDataset output on the real PostgreSQL.</summary>
public sealed class PostgresWebDatasetTests(PostgresCoordinatorFixture fixture)
    : WebDatasetTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>WebDataset output on SQLite, as the embedded farm runs it.</summary>
public sealed class SqliteWebDatasetTests(SqliteCoordinatorFixture fixture)
    : WebDatasetTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
