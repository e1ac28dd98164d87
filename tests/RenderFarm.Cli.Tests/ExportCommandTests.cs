using System.Security.Cryptography;
using System.Text.Json;
using RenderFarm.Client;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm export</c> against embedded <c>renderfarm serve</c>: both layouts, hashes, resume, errors.</summary>
public sealed class ExportCommandTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    private static readonly SubmitJobRequest Sweep = new(
        NegativePrompt: "blurry", Width: 64, Height: 64, Steps: 2, GuidanceScale: 7.5, Sampler: "euler_a", Count: 2, Seed: 40,
        Sweep: new SweepRequest(Prompts: ["a lighthouse at dusk", "a red fox in the snow"]));

    private static readonly string[] Keys = ["000000000", "000000001", "000000002", "000000003"];

    private string FarmUrl => farm.Serve.Address.ToString();

    [Fact]
    public async Task Each_reported_sha256_is_the_hash_of_the_stored_png()
    {
        var client = farm.Serve.CreateClient();
        var job = await SubmitAndWaitAsync(client);

        job.Images.Count.ShouldBe(4);
        foreach (var image in job.Images)
        {
            await using var png = await client.DownloadImageAsync(job.Id, image.Index);
            image.Sha256.ShouldBe(Convert.ToHexStringLower(await SHA256.HashDataAsync(png)));
            image.Prompt.ShouldBeOneOf(Sweep.Sweep!.Prompts!.ToArray());
            (image.NegativePrompt, image.Steps, image.GuidanceScale, image.Sampler, image.Model).ShouldBe(("blurry", 2, 7.5, "euler_a", "tiny-sd"));
        }
    }

    [Fact]
    public async Task Export_as_files_writes_each_verified_image_with_its_sidecars_and_both_manifests()
    {
        var job = await SubmitAndWaitAsync(farm.Serve.CreateClient());
        var folder = NewFolder();

        var (exitCode, output, error) = await Cli.RunAsync("export", job.Id.ToString(), "-o", folder, "--parallel", "3", "--farm", FarmUrl);

        exitCode.ShouldBe(0, error);
        output.ShouldContain("exported 4 of 4 image(s)");
        output.ShouldContain("4 downloaded (0 replacing damaged files), 0 already there and verified");
        var manifest = await ReadManifestAsync(folder);
        manifest.Select(e => e.Key).ShouldBe(Keys);
        foreach (var entry in manifest)
        {
            var png = Path.Combine(folder, entry.Key + ".png");
            Hash(png).ShouldBe(entry.Sha256);
            entry.Sha256.ShouldBe(job.Images.Single(i => i.Index == entry.Index).Sha256);
            File.ReadAllText(Path.Combine(folder, entry.Key + ".txt")).ShouldBe(entry.Prompt);
            JsonSerializer.Deserialize<ManifestEntry>(File.ReadAllText(Path.Combine(folder, entry.Key + ".json")), RenderFarmClient.Json).ShouldBe(entry);
        }

        (await File.ReadAllBytesAsync(Path.Combine(folder, "manifest.parquet")))[..4].ShouldBe("PAR1"u8.ToArray());
        Directory.GetFiles(folder, "*.part").ShouldBeEmpty();
    }

    [Fact]
    public async Task Export_as_imagefolder_writes_images_and_a_metadata_line_per_image_naming_its_file()
    {
        var job = await SubmitAndWaitAsync(farm.Serve.CreateClient());
        var folder = NewFolder();

        var (exitCode, output, error) = await Cli.RunAsync("export", job.Id.ToString(), "-o", folder, "--format", "imagefolder", "--farm", FarmUrl);

        exitCode.ShouldBe(0, error);
        output.ShouldContain("exported 4 of 4 image(s)");
        var manifest = await ReadManifestAsync(folder);
        var metadata = File.ReadAllLines(Path.Combine(folder, "metadata.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        metadata.Count.ShouldBe(4);
        for (var i = 0; i < 4; i++)
        {
            var line = metadata[i];
            var columns = line.EnumerateObject().Select(p => p.Name).ToList();
            columns[0].ShouldBe("file_name");
            columns.Skip(1).ShouldBe(["key", "index", "prompt", "negativePrompt", "seed", "steps", "guidanceScale", "sampler", "model", "modelHash", "width", "height", "sha256", "status", "error", "url", "duplicateOf", "safety"]);
            var fileName = line.GetProperty("file_name").GetString()!;
            fileName.ShouldBe($"images/{Keys[i]}.png");
            Hash(Path.Combine(folder, fileName)).ShouldBe(manifest[i].Sha256);
            line.GetProperty("prompt").GetString().ShouldBe(manifest[i].Prompt);
            line.GetProperty("seed").GetInt64().ShouldBe(manifest[i].Seed);
            // No nulls: ImageFolder types each column from the first rows.
            line.EnumerateObject().ShouldAllBe(p => p.Value.ValueKind != JsonValueKind.Null);
            line.GetProperty("duplicateOf").GetString().ShouldBe("");
            line.GetProperty("error").GetString().ShouldBe("");
        }

        Directory.GetFiles(folder, "*.png").ShouldBeEmpty();
        File.Exists(Path.Combine(folder, "manifest.jsonl")).ShouldBeTrue();
        File.Exists(Path.Combine(folder, "manifest.parquet")).ShouldBeTrue();
    }

    [Theory]
    [InlineData("files", "")]
    [InlineData("imagefolder", "images")]
    public async Task A_second_export_fetches_only_the_deleted_and_damaged_images(string layout, string subfolder)
    {
        var job = await SubmitAndWaitAsync(farm.Serve.CreateClient());
        var folder = NewFolder();
        var first = await Cli.RunAsync("export", job.Id.ToString(), "-o", folder, "--format", layout, "--farm", FarmUrl);
        first.ExitCode.ShouldBe(0, first.Error);
        string Png(int i) => Path.Combine(folder, subfolder, Keys[i] + ".png");
        var hashes = Enumerable.Range(0, 4).Select(i => Hash(Png(i))).ToList();
        var untouched = new[] { 0, 3 }.ToDictionary(i => i, i => File.GetLastWriteTimeUtc(Png(i)));
        File.Delete(Png(1));
        var damaged = await File.ReadAllBytesAsync(Png(2));
        damaged[^20] ^= 0xFF;
        await File.WriteAllBytesAsync(Png(2), damaged);
        await Task.Delay(50);

        var second = await Cli.RunAsync("export", job.Id.ToString(), "-o", folder, "--format", layout, "--farm", FarmUrl);

        second.ExitCode.ShouldBe(0, second.Error);
        second.Output.ShouldContain("exported 4 of 4 image(s)");
        second.Output.ShouldContain("2 downloaded (1 replacing damaged files), 2 already there and verified");
        Enumerable.Range(0, 4).Select(i => Hash(Png(i))).ShouldBe(hashes);
        foreach (var (i, written) in untouched)
        {
            File.GetLastWriteTimeUtc(Png(i)).ShouldBe(written);
        }
    }

    [Fact]
    public async Task Export_as_webdataset_verifies_every_shard_and_a_second_run_fetches_only_the_deleted_and_damaged_ones()
    {
        var client = farm.Serve.CreateClient();
        // Six items in shards of two: 000000.tar, 000001.tar, 000002.tar.
        var (submitted, _) = await client.SubmitJobAsync(Sweep with { Count = 3, Output = new JobOutput(JobOutput.WebDataset, ShardSize: 2) });
        var job = await EmbeddedFarmTests.WaitFinalAsync(client, submitted.Id);
        job.State.ShouldBe(JobState.Succeeded);
        var shards = await WaitForShardsAsync(client, job.Id);
        shards.ShardCount.ShouldBe(3);
        var folder = NewFolder();

        var first = await Cli.RunAsync("export", job.Id.ToString(), "-o", folder, "--format", "webdataset", "--farm", FarmUrl);

        first.ExitCode.ShouldBe(0, first.Error);
        first.Output.ShouldContain("exported 6 of 6 image(s)");
        first.Output.ShouldContain("6 downloaded (0 replacing damaged files), 0 already there and verified");
        var manifest = await ReadManifestAsync(folder);
        manifest.Select(e => e.Shard).ShouldBe([0, 0, 1, 1, 2, 2]);
        string Tar(int shard) => Path.Combine(folder, $"{shard:D6}.tar");
        var samples = new List<string>();
        for (var shard = 0; shard < 3; shard++)
        {
            await using var tar = File.OpenRead(Tar(shard));
            await foreach (var (name, content) in RenderFarm.Storage.Datasets.DatasetTar.ReadMembersAsync(tar, _ => true, CancellationToken.None))
            {
                var key = Path.GetFileNameWithoutExtension(name);
                var entry = manifest.Single(e => e.Key == key);
                entry.Shard.ShouldBe(shard);
                if (name.EndsWith(".png", StringComparison.Ordinal))
                {
                    samples.Add(key);
                    Convert.ToHexStringLower(SHA256.HashData(content)).ShouldBe(entry.Sha256);
                    entry.Sha256.ShouldBe(job.Images.Single(i => i.Index == entry.Index).Sha256);
                }
                else if (name.EndsWith(".txt", StringComparison.Ordinal))
                {
                    System.Text.Encoding.UTF8.GetString(content).ShouldBe(entry.Prompt);
                }
                else
                {
                    var json = JsonDocument.Parse(content).RootElement;
                    (json.GetProperty("sha256").GetString(), json.GetProperty("seed").GetInt64(), json.GetProperty("modelHash").GetString()).ShouldBe((entry.Sha256, entry.Seed, entry.ModelHash));
                    json.GetProperty("worker").GetString().ShouldNotBeNullOrEmpty();
                    json.GetProperty("renderSeconds").GetDouble().ShouldBeGreaterThan(0);
                }
            }
        }

        samples.ShouldBe(manifest.Select(e => e.Key), ignoreOrder: true);
        var untouched = File.GetLastWriteTimeUtc(Tar(0));
        File.Delete(Tar(1));
        var damaged = await File.ReadAllBytesAsync(Tar(2));
        damaged[1024] ^= 0xFF;
        await File.WriteAllBytesAsync(Tar(2), damaged);
        await Task.Delay(50);

        var second = await Cli.RunAsync("export", job.Id.ToString(), "-o", folder, "--format", "webdataset", "--farm", FarmUrl);

        second.ExitCode.ShouldBe(0, second.Error);
        second.Output.ShouldContain("exported 6 of 6 image(s)");
        second.Output.ShouldContain("4 downloaded (2 replacing damaged files), 2 already there and verified");
        File.GetLastWriteTimeUtc(Tar(0)).ShouldBe(untouched);
        Directory.GetFiles(folder, "*.part").ShouldBeEmpty();
    }

    [Fact]
    public async Task Export_as_webdataset_of_a_files_job_exits_2_naming_the_output()
    {
        var job = await SubmitAndWaitAsync(farm.Serve.CreateClient());

        var (exitCode, _, error) = await Cli.RunAsync("export", job.Id.ToString(), "-o", NewFolder(), "--format", "webdataset", "--farm", FarmUrl);

        exitCode.ShouldBe(2);
        error.ShouldContain("output.format webdataset");
    }

    private static async Task<DatasetShardList> WaitForShardsAsync(RenderFarmClient client, Guid jobId)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var shards = await client.GetShardsAsync(jobId);
            if (shards.Complete)
            {
                return shards;
            }

            DateTime.UtcNow.ShouldBeLessThan(deadline, $"shards of {jobId} not complete: {shards}");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task An_unknown_job_exits_2_an_unreachable_farm_exits_1_and_bad_arguments_exit_2()
    {
        var folder = NewFolder();
        var id = Guid.NewGuid().ToString();

        var unknown = await Cli.RunAsync("export", id, "-o", folder, "--farm", FarmUrl);
        var unreachable = await Cli.RunAsync("export", id, "-o", folder, "--farm", "http://127.0.0.1:9");
        var zeroParallel = await Cli.RunAsync("export", id, "-o", folder, "--parallel", "0", "--farm", FarmUrl);
        var badFormat = await Cli.RunAsync("export", id, "-o", folder, "--format", "tfrecord", "--farm", FarmUrl);
        var noOutput = await Cli.RunAsync("export", id, "--farm", FarmUrl);
        var badId = await Cli.RunAsync("export", "job-7", "-o", folder, "--farm", FarmUrl);

        unknown.ExitCode.ShouldBe(2);
        unknown.Error.ShouldContain($"the farm has no job {id}");
        unreachable.ExitCode.ShouldBe(1);
        unreachable.Error.ShouldContain("cannot reach the farm");
        zeroParallel.ExitCode.ShouldBe(2);
        zeroParallel.Error.ShouldContain("--parallel must be between 1 and 64");
        badFormat.ExitCode.ShouldBe(2);
        badFormat.Error.ShouldContain("tfrecord");
        noOutput.ExitCode.ShouldBe(2);
        noOutput.Error.ShouldContain("--output");
        badId.ExitCode.ShouldBe(2);
        badId.Error.ShouldContain("not a job id");
        Directory.Exists(folder).ShouldBeFalse();
    }

    [Fact]
    public async Task A_folder_that_cannot_be_created_exits_2_before_anything_is_fetched()
    {
        var (job, _) = await farm.Serve.CreateClient().SubmitJobAsync(Sweep with { Count = 1 });
        var blocker = Path.Combine(farm.Scratch, "a-file-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(blocker, "not a folder");

        var (exitCode, _, error) = await Cli.RunAsync("export", job.Id.ToString(), "-o", Path.Combine(blocker, "ds"), "--farm", FarmUrl);

        exitCode.ShouldBe(2);
        error.ShouldContain("cannot create");
    }

    [Fact]
    public async Task Submit_file_sweeps_negative_prompts_and_the_manifest_lists_each_items_own()
    {
        var file = Path.Combine(farm.Scratch, "negatives-" + Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllTextAsync(file, """
            {"width": 64, "height": 64, "steps": 2, "guidanceScale": 7.5, "sampler": "euler", "sweep": {"prompts": ["a red fox"], "negativePrompts": ["", "blurry", "dark"]}}
            """);

        var submit = await Cli.RunAsync("submit", "--file", file, "--farm", FarmUrl);

        submit.ExitCode.ShouldBe(0, submit.Error);
        var entries = new List<ManifestEntry>();
        await foreach (var entry in farm.Serve.CreateClient().GetManifestAsync(Guid.Parse(submit.Output.Trim())))
        {
            entries.Add(entry);
        }

        entries.Select(e => (e.Prompt, e.NegativePrompt)).ShouldBe([("a red fox", ""), ("a red fox", "blurry"), ("a red fox", "dark")]);
    }

    private static async Task<Job> SubmitAndWaitAsync(RenderFarmClient client)
    {
        var (submitted, _) = await client.SubmitJobAsync(Sweep);
        var job = await EmbeddedFarmTests.WaitFinalAsync(client, submitted.Id);
        job.State.ShouldBe(JobState.Succeeded);
        return job;
    }

    private string NewFolder() => Path.Combine(farm.Scratch, "export-" + Guid.NewGuid().ToString("N"));

    private static async Task<List<ManifestEntry>> ReadManifestAsync(string folder)
    {
        await using var file = File.OpenRead(Path.Combine(folder, "manifest.jsonl"));
        var entries = new List<ManifestEntry>();
        await foreach (var entry in RenderFarmClient.ReadManifestAsync(file))
        {
            entries.Add(entry);
        }

        return entries;
    }

    private static string Hash(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
}
