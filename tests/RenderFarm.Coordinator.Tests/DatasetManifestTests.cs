using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Parquet;
using Parquet.Serialization;
using Parquet.Serialization.Attributes;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Datasets;
using RenderFarm.Coordinator.Tests.Infrastructure;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// A job as a dataset: the manifest (<c>GET /v1/jobs/{id}/manifest</c>, JSONL and Parquet) and the parameters and
/// hashes of <c>images[]</c>, on PostgreSQL and on SQLite.
/// </summary>
public abstract class DatasetManifestTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private static readonly string HashA = new('a', 64);
    private static readonly string HashB = new('b', 64);

    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    [Fact]
    public async Task The_manifest_lists_every_item_with_its_parameters_status_hash_url_and_first_duplicate()
    {
        var (id, items) = await SubmitSweepAsync(4);
        // 0 and 2 are the same image; 1 failed for good; 3 is still queued. An uppercase hash is stored lowercase.
        await Probe.Bus.Publish(new ItemRendered(items[0].ItemId, id, 1, items[0].OutputKey, "worker-a", TimeSpan.Zero, HashA.ToUpperInvariant()));
        await Probe.Bus.Publish(new ItemFailed(items[1].ItemId, id, 1, "worker-a", "model file is corrupt", Retryable: false));
        await Probe.Bus.Publish(new ItemRendered(items[2].ItemId, id, 1, items[2].OutputKey, "worker-b", TimeSpan.Zero, HashA));
        await Client.WaitForJobAsync(id, j => j.GetProperty("progress").GetProperty("done").GetInt64() == 3);

        using var response = await Client.GetAsync($"/v1/jobs/{id}/manifest");
        var text = await response.Content.ReadAsStringAsync();

        response.StatusCode.ShouldBe(HttpStatusCode.OK, text);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/x-ndjson");
        text.ShouldEndWith("\n");
        var lines = text.TrimEnd('\n').Split('\n').Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        lines.Select(l => l["index"]!.GetValue<long>()).ShouldBe([0, 1, 2, 3]);
        lines.Select(l => l["key"]!.GetValue<string>()).ShouldBe(["000000000", "000000001", "000000002", "000000003"]);
        lines.ShouldAllBe(l => l.Select(p => p.Key).SequenceEqual(Columns));
        for (var i = 0; i < 4; i++)
        {
            var line = lines[i];
            line["prompt"]!.GetValue<string>().ShouldBe(items[i].Prompt);
            line["negativePrompt"]!.GetValue<string>().ShouldBe("blurry");
            line["seed"]!.GetValue<long>().ShouldBe(items[i].Seed);
            line["steps"]!.GetValue<int>().ShouldBe(4);
            line["guidanceScale"]!.GetValue<double>().ShouldBe(7.5);
            line["sampler"]!.GetValue<string>().ShouldBe("euler");
            line["model"]!.GetValue<string>().ShouldBe(items[i].Model);
            (line["width"]!.GetValue<int>(), line["height"]!.GetValue<int>()).ShouldBe((64, 64));
        }

        Summary(lines[0]).ShouldBe(("succeeded", HashA, null, $"/v1/images/{id}/0", null));
        Summary(lines[1]).ShouldBe(("failed", null, "model file is corrupt", null, null));
        Summary(lines[2]).ShouldBe(("succeeded", HashA, null, $"/v1/images/{id}/2", "000000000"));
        Summary(lines[3]).ShouldBe(("queued", null, null, null, null));
    }

    [Fact]
    public async Task The_job_view_carries_each_images_parameters_and_hash()
    {
        var (id, items) = await SubmitSweepAsync(2);
        await Probe.Bus.Publish(new ItemRendered(items[0].ItemId, id, 1, items[0].OutputKey, "worker-a", TimeSpan.Zero, HashB));
        await Probe.Bus.Publish(new ItemRendered(items[1].ItemId, id, 1, items[1].OutputKey, "worker-a", TimeSpan.Zero, "not-a-hash"));

        var job = await Client.WaitForStateAsync(id, "Succeeded");

        var images = job.GetProperty("images").EnumerateArray().ToList();
        images.Count.ShouldBe(2);
        for (var i = 0; i < 2; i++)
        {
            images[i].GetProperty("prompt").GetString().ShouldBe(items[i].Prompt);
            images[i].GetProperty("negativePrompt").GetString().ShouldBe("blurry");
            images[i].GetProperty("seed").GetInt64().ShouldBe(items[i].Seed);
            images[i].GetProperty("steps").GetInt32().ShouldBe(4);
            images[i].GetProperty("guidanceScale").GetDouble().ShouldBe(7.5);
            images[i].GetProperty("sampler").GetString().ShouldBe("euler");
            images[i].GetProperty("model").GetString().ShouldBe(items[i].Model);
        }

        images[0].GetProperty("sha256").GetString().ShouldBe(HashB);
        // A report that is not a SHA-256 is not kept as one: the image counts, unverifiable.
        images[1].GetProperty("sha256").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task The_parquet_manifest_reads_back_equal_to_the_jsonl()
    {
        var (id, items) = await SubmitSweepAsync(3);
        await Probe.Bus.Publish(new ItemRendered(items[0].ItemId, id, 1, items[0].OutputKey, "worker-a", TimeSpan.Zero, HashA, ModelHash: HashB.ToUpperInvariant()));
        await Probe.Bus.Publish(new ItemRendered(items[1].ItemId, id, 1, items[1].OutputKey, "worker-a", TimeSpan.Zero, HashA, ModelHash: "not-a-hash"));
        await Probe.Bus.Publish(new ItemFailed(items[2].ItemId, id, 1, "worker-a", "bad input", Retryable: false));
        await Client.WaitForStateAsync(id, "CompletedWithErrors");

        var jsonl = (await Client.GetStringAsync($"/v1/jobs/{id}/manifest?format=jsonl"))
            .TrimEnd('\n').Split('\n').Select(l => JsonSerializer.Deserialize<ManifestEntry>(l, JsonSerializerOptions.Web)!).ToList();
        using var response = await Client.GetAsync($"/v1/jobs/{id}/manifest?format=PARQUET");
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/vnd.apache.parquet");
        using var parquet = new MemoryStream(await response.Content.ReadAsByteArrayAsync());
        var read = await ParquetSerializer.DeserializeAsync<ParquetRow>(parquet, new ParquetOptions { PropertyNameCaseInsensitive = true });

        jsonl.Count.ShouldBe(3);
        read.Schema.DataFields.Select(f => f.Name).ShouldBe(Columns);
        read.Data.Select(r => r.ToEntry()).ToList().ShouldBe(jsonl);
        // The model's content hash as the worker reported it, in the ledger's one spelling; a malformed one is dropped.
        jsonl.Select(e => e.ModelHash).ShouldBe([HashB, null, null]);
        jsonl[1].DuplicateOf.ShouldBe("000000000");
    }

    [Fact]
    public async Task Pages_cover_every_item_once_and_a_duplicate_on_a_later_page_names_the_first()
    {
        var (id, items) = await SubmitSweepAsync(5);
        await Probe.Bus.Publish(new ItemRendered(items[1].ItemId, id, 1, items[1].OutputKey, "worker-a", TimeSpan.Zero, HashB));
        await Probe.Bus.Publish(new ItemRendered(items[2].ItemId, id, 1, items[2].OutputKey, "worker-a", TimeSpan.Zero, HashA));
        await Probe.Bus.Publish(new ItemRendered(items[4].ItemId, id, 1, items[4].OutputKey, "worker-a", TimeSpan.Zero, HashB));
        await Client.WaitForJobAsync(id, j => j.GetProperty("progress").GetProperty("succeeded").GetInt64() == 3);

        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var manifest = scope.ServiceProvider.GetRequiredService<JobManifest>();
        var pages = new List<IReadOnlyList<ManifestEntry>>();
        await foreach (var page in manifest.ReadPagesAsync(id, pageSize: 2))
        {
            pages.Add(page);
        }

        pages.Select(p => p.Count).ShouldBe([2, 2, 1]);
        var entries = pages.SelectMany(p => p).ToList();
        entries.Select(e => e.Index).ShouldBe([0, 1, 2, 3, 4]);
        entries.Select(e => e.DuplicateOf).ShouldBe([null, null, null, null, "000000001"]);
    }

    [Fact]
    public async Task A_sweep_over_negative_prompts_gives_each_item_its_own_in_the_manifest()
    {
        var job = JobsClient.ValidJob();
        job.Remove("prompt");
        job["seed"] = 7;
        job["sweep"] = new JsonObject
        {
            ["prompts"] = new JsonArray("a red fox", "a blue fox"),
            ["negativePrompts"] = new JsonArray("", "blurry"),
        };
        var id = (await Client.SubmitAsync(job)).Id();

        var lines = (await Client.GetStringAsync($"/v1/jobs/{id}/manifest")).TrimEnd('\n').Split('\n')
            .Select(l => JsonSerializer.Deserialize<ManifestEntry>(l, JsonSerializerOptions.Web)!).ToList();

        // Negative prompts vary slower than prompts.
        lines.Select(e => (e.NegativePrompt, e.Prompt)).ShouldBe([("", "a red fox"), ("", "a blue fox"), ("blurry", "a red fox"), ("blurry", "a blue fox")]);
        var units = (await Probe.UnitsAsync(id, 4)).SelectMany(u => u.Items).OrderBy(i => i.Index);
        units.Select(i => i.NegativePrompt).ShouldBe(["", "", "blurry", "blurry"]);
    }

    [Fact]
    public async Task A_sweep_over_sizes_renders_each_size_in_units_of_one_size_and_lists_them_in_the_manifest()
    {
        var job = JobsClient.ValidJob();
        job.Remove("width");
        job.Remove("height");
        job["count"] = 2;
        job["sweep"] = new JsonObject
        {
            ["sizes"] = new JsonArray(new JsonObject { ["width"] = 512, ["height"] = 512 }, new JsonObject { ["width"] = 640, ["height"] = 384 }),
        };
        var id = (await Client.SubmitAsync(job)).Id();

        var units = await Probe.UnitsAsync(id, 4);
        units.Select(u => u.Items.Select(i => i.Width * 100_000 + i.Height).Distinct().Count()).ShouldAllBe(sizes => sizes == 1);
        units.SelectMany(u => u.Items).OrderBy(i => i.Index).Select(i => (i.Width, i.Height)).ShouldBe([(512, 512), (512, 512), (640, 384), (640, 384)]);
        var lines = (await Client.GetStringAsync($"/v1/jobs/{id}/manifest")).TrimEnd('\n').Split('\n')
            .Select(l => JsonSerializer.Deserialize<ManifestEntry>(l, JsonSerializerOptions.Web)!).ToList();
        lines.Select(e => (e.Width, e.Height)).ShouldBe([(512, 512), (512, 512), (640, 384), (640, 384)]);
        // The job's own size is the largest item's (what placement must fit).
        var view = await Client.GetJobAsync(id);
        (view.GetProperty("width").GetInt32() * view.GetProperty("height").GetInt32()).ShouldBe(512 * 512);
    }

    [Fact]
    public async Task A_size_entry_missing_a_side_is_a_400_naming_it()
    {
        var job = JobsClient.ValidJob();
        job["sweep"] = new JsonObject { ["sizes"] = new JsonArray(new JsonObject { ["width"] = 512 }) };

        using var response = await Client.PostRawAsync(job.ToJsonString());

        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(System.Net.HttpStatusCode.BadRequest, text);
        JsonDocument.Parse(text).RootElement.GetProperty("errors").TryGetProperty("sweep.sizes[0].height", out _).ShouldBeTrue(text);
    }

    [Fact]
    public async Task A_sweep_over_strengths_sends_each_item_with_its_own_and_the_init_image()
    {
        var job = JobsClient.ValidJob();
        job["mode"] = "img2img";
        job["initImage"] = "data:image/png;base64," + TestPng.Base64;
        job["sweep"] = new JsonObject { ["strengths"] = new JsonArray(0.3, 0.6, 0.9) };

        var id = (await Client.SubmitAsync(job)).Id();
        var items = (await Probe.UnitsAsync(id, 3)).SelectMany(u => u.Items).OrderBy(i => i.Index).ToList();

        items.Select(i => i.Strength).ShouldBe([0.3, 0.6, 0.9]);
        items.ShouldAllBe(i => i.InitImageKey == $"jobs/{id}/init.png");
    }

    [Fact]
    public async Task An_unknown_job_is_404_and_an_unknown_format_is_400_both_as_problems()
    {
        var (id, _) = await SubmitSweepAsync(1);

        using var unknown = await Client.GetAsync($"/v1/jobs/{Guid.NewGuid()}/manifest");
        using var badFormat = await Client.GetAsync($"/v1/jobs/{id}/manifest?format=csv");

        unknown.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        var missing = JsonDocument.Parse(await unknown.Content.ReadAsStringAsync()).RootElement;
        missing.GetProperty("title").GetString().ShouldBe("No such job.");
        missing.GetProperty("status").GetInt32().ShouldBe(404);
        badFormat.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        badFormat.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        var problem = JsonDocument.Parse(await badFormat.Content.ReadAsStringAsync()).RootElement;
        problem.GetProperty("errors").GetProperty("format")[0].GetString().ShouldBe("format 'csv' is not a manifest format; use one of: jsonl, parquet.");
    }

    internal static readonly string[] Columns =
        ["key", "index", "prompt", "negativePrompt", "seed", "steps", "guidanceScale", "sampler", "model", "modelHash", "width", "height", "sha256", "status", "error", "shard", "url", "duplicateOf", "safety"];

    private static (string?, string?, string?, string?, string?) Summary(JsonObject line) => (
        line["status"]?.GetValue<string>(), line["sha256"]?.GetValue<string>(), line["error"]?.GetValue<string>(),
        line["url"]?.GetValue<string>(), line["duplicateOf"]?.GetValue<string>());

    /// <summary>A sweep over prompts (one item each), its work units received; items in index order.</summary>
    private async Task<(Guid Id, List<RenderItem> Items)> SubmitSweepAsync(int items)
    {
        var job = JobsClient.ValidJob();
        job.Remove("prompt");
        job["negativePrompt"] = "blurry";
        job["seed"] = 100;
        job["sweep"] = new JsonObject { ["prompts"] = new JsonArray([.. Enumerable.Range(0, items).Select(i => (JsonNode)$"prompt number {i}")]) };
        var id = (await Client.SubmitAsync(job)).Id();
        var received = (await Probe.UnitsAsync(id, items)).SelectMany(u => u.Items).OrderBy(i => i.Index).ToList();
        received.Select(i => i.Index).ShouldBe(Enumerable.Range(0, items).Select(i => (long)i));
        return (id, received);
    }

    /// <summary>A Parquet row as Parquet.Net's serializer fills it (settable properties named as the columns, but for case).</summary>
    public sealed class ParquetRow
    {
        [ParquetRequired]
        public string Key { get; set; } = "";
        public long Index { get; set; }
        [ParquetRequired]
        public string Prompt { get; set; } = "";
        [ParquetRequired]
        public string NegativePrompt { get; set; } = "";
        public long Seed { get; set; }
        public int Steps { get; set; }
        public double GuidanceScale { get; set; }
        [ParquetRequired]
        public string Sampler { get; set; } = "";
        [ParquetRequired]
        public string Model { get; set; } = "";
        public string? ModelHash { get; set; }
        public int Width { get; set; }
        public int Height { get; set; }
        public string? Sha256 { get; set; }
        [ParquetRequired]
        public string Status { get; set; } = "";
        public string? Error { get; set; }
        public int? Shard { get; set; }
        public string? Url { get; set; }
        public string? DuplicateOf { get; set; }
        public string? Safety { get; set; }

        public ManifestEntry ToEntry() => new(Key, Index, Prompt, NegativePrompt, Seed, Steps, GuidanceScale, Sampler, Model, ModelHash, Width, Height, Sha256, Status, Error, Shard, Url, DuplicateOf, Safety);
    }
}

/// <summary>The manifest on the real PostgreSQL.</summary>
public sealed class PostgresDatasetManifestTests(PostgresCoordinatorFixture fixture)
    : DatasetManifestTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>The manifest on SQLite, as the embedded farm runs it.</summary>
public sealed class SqliteDatasetManifestTests(SqliteCoordinatorFixture fixture)
    : DatasetManifestTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
