using System.Text.Json;
using RenderFarm.Storage;
using RenderFarm.Testing;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm models push</c> and <c>models list</c> against the embedded farm's folder and the real S3.</summary>
[Collection(CliCollection.Name)]
public sealed class ModelsCommandTests(CliModels models) : IDisposable
{
    // Nothing listens on port 1: the listing must say it cannot tell which workers hold the models.
    private const string NoFarm = "http://127.0.0.1:1";

    private readonly string _data = Directory.CreateTempSubdirectory("rf-models-cli-").FullName;

    public void Dispose() => Directory.Delete(_data, recursive: true);

    [Fact]
    public async Task A_pushed_model_is_listed_with_its_size_files_and_unknown_workers_when_no_farm_answers()
    {
        var push = await Cli.RunAsync("models", "push", models.Tiny, "--name", "tiny-copy", "--store", "local", "--data", _data);

        push.ExitCode.ShouldBe(0, push.Error);
        push.Output.ShouldContain("unet/model.onnx");
        push.Output.ShouldContain("pushed 'tiny-copy'");
        File.Exists(Path.Combine(_data, "artifacts", "models", "tiny-copy", "manifest.json")).ShouldBeTrue();

        var list = await Cli.RunAsync("models", "list", "--store", "local", "--data", _data, "--farm", NoFarm);
        list.ExitCode.ShouldBe(0, list.Error);
        var row = list.Output.Split('\n').Single(l => l.StartsWith("tiny-copy", StringComparison.Ordinal));
        row.ShouldContain("unknown (no farm)");
        row.ShouldContain($" {Directory.EnumerateFiles(models.Tiny, "*", SearchOption.AllDirectories).Count()} ");

        var json = await Cli.RunAsync("models", "list", "--store", "local", "--data", _data, "--farm", NoFarm, "--json");
        json.ExitCode.ShouldBe(0, json.Error);
        using var document = JsonDocument.Parse(json.Output);
        document.RootElement.GetProperty("farm").ValueKind.ShouldBe(JsonValueKind.Null);
        var model = document.RootElement.GetProperty("models").EnumerateArray().ShouldHaveSingleItem();
        model.GetProperty("name").GetString().ShouldBe("tiny-copy");
        model.GetProperty("fileCount").GetInt32().ShouldBe(Directory.EnumerateFiles(models.Tiny, "*", SearchOption.AllDirectories).Count());
        model.GetProperty("totalBytes").GetInt64().ShouldBe(Directory.EnumerateFiles(models.Tiny, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length));
        model.GetProperty("workers").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task Pushing_a_missing_folder_or_one_that_is_not_a_model_or_under_a_bad_name_exits_2()
    {
        var missing = await Cli.RunAsync("models", "push", Path.Combine(_data, "missing"), "--store", "local", "--data", _data);
        missing.ExitCode.ShouldBe(2);
        missing.Error.ShouldContain("does not exist");

        var notModel = Directory.CreateDirectory(Path.Combine(_data, "not-a-model")).FullName;
        File.WriteAllText(Path.Combine(notModel, "readme.txt"), "no model here");
        var plain = await Cli.RunAsync("models", "push", notModel, "--store", "local", "--data", _data);
        plain.ExitCode.ShouldBe(2);
        plain.Error.ShouldContain("model_index.json");

        var badName = await Cli.RunAsync("models", "push", models.Tiny, "--name", "../escape", "--store", "local", "--data", _data);
        badName.ExitCode.ShouldBe(2);
        badName.Error.ShouldContain("not a valid model name");

        var badStore = await Cli.RunAsync("models", "push", models.Tiny, "--store", "ftp");
        badStore.ExitCode.ShouldBe(2);

        Directory.Exists(Path.Combine(_data, "artifacts", "models")).ShouldBeFalse("nothing was pushed");
    }

    [Fact]
    public async Task A_second_push_of_a_name_exits_2_unless_replace_is_given()
    {
        (await Cli.RunAsync("models", "push", models.Tiny, "--store", "local", "--data", _data)).ExitCode.ShouldBe(0);

        var again = await Cli.RunAsync("models", "push", models.Tiny, "--store", "local", "--data", _data);
        again.ExitCode.ShouldBe(2);
        again.Error.ShouldContain("--replace");

        var replaced = await Cli.RunAsync("models", "push", models.Tiny, "--store", "local", "--data", _data, "--replace");
        replaced.ExitCode.ShouldBe(0, replaced.Error);
        replaced.Output.ShouldContain("pushed 'tiny-sd'", customMessage: "the name defaults to the folder's");
    }

    [Fact]
    public async Task Push_and_list_work_against_the_farms_S3_store()
    {
        S3Settings.EnsureInEnvironment();
        var name = $"cli-{Guid.NewGuid():N}";
        try
        {
            var push = await Cli.RunAsync("models", "push", models.Oracle, "--name", name, "--store", "s3");
            push.ExitCode.ShouldBe(0, push.Error);
            push.Output.ShouldContain("S3 bucket");

            var list = await Cli.RunAsync("models", "list", "--store", "s3", "--farm", NoFarm, "--json");
            list.ExitCode.ShouldBe(0, list.Error);
            using var document = JsonDocument.Parse(list.Output);
            document.RootElement.GetProperty("models").EnumerateArray()
                .ShouldContain(m => m.GetProperty("name").GetString() == name);
        }
        finally
        {
            await S3Settings.DeleteModelAsync(name);
        }
    }

    /// <summary>The S3 settings of deploy/local/services, put in this process's environment where the CLI reads them.</summary>
    private static class S3Settings
    {
        private static readonly Lock Gate = new();

        private static readonly string[] Names =
            ["RENDERFARM_S3_ENDPOINT", "RENDERFARM_S3_ACCESS_KEY", "RENDERFARM_S3_SECRET_KEY", "RENDERFARM_S3_BUCKET", "RENDERFARM_S3_SECURE"];

        public static void EnsureInEnvironment()
        {
            lock (Gate)
            {
                LocalServiceSettings.Require("RENDERFARM_S3_ENDPOINT");

                // The same values the services export: setting them here only spares CI an `eval` of services.env.
                foreach (var name in Names)
                {
                    if (LocalServiceSettings.Get(name) is { } value)
                    {
                        Environment.SetEnvironmentVariable(name, value);
                    }
                }
            }
        }

        public static async Task DeleteModelAsync(string name)
        {
            using var store = new S3ArtifactStore(new StorageOptions
            {
                Endpoint = Environment.GetEnvironmentVariable("RENDERFARM_S3_ENDPOINT"),
                AccessKey = Environment.GetEnvironmentVariable("RENDERFARM_S3_ACCESS_KEY"),
                SecretKey = Environment.GetEnvironmentVariable("RENDERFARM_S3_SECRET_KEY"),
                Bucket = Environment.GetEnvironmentVariable("RENDERFARM_S3_BUCKET") ?? "renderfarm",
                Secure = bool.TryParse(Environment.GetEnvironmentVariable("RENDERFARM_S3_SECURE"), out var secure) && secure,
            });
            var keys = new List<string>();
            await foreach (var info in store.ListAsync(ArtifactKeys.ModelPrefix(name), CancellationToken.None))
            {
                keys.Add(info.Key);
            }

            foreach (var key in keys)
            {
                await store.DeleteAsync(key, CancellationToken.None);
            }
        }
    }
}

/// <summary><c>models list</c> asks a running farm which workers hold each model.</summary>
public sealed class ModelsListWithFarmTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    [Fact]
    public async Task The_listing_names_the_live_workers_that_have_the_model_on_disk()
    {
        var tiny = Path.Combine(farm.Scratch, "tiny-sd");
        RenderFarm.ModelGenerator.TestModels.EnsureTiny(tiny);
        var push = await Cli.RunAsync("models", "push", tiny, "--store", "local", "--data", farm.Serve.DataRoot);
        push.ExitCode.ShouldBe(0, push.Error);

        // The workers generate the tiny model at start; their heartbeats then list it as installed.
        var client = farm.Serve.CreateClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        IReadOnlyList<string> holders = [];
        while (holders.Count < 2)
        {
            await Task.Delay(200, timeout.Token);
            holders = [.. (await client.GetWorkersAsync(timeout.Token))
                .Where(w => w.Live && (w.InstalledModels ?? []).Contains("tiny-sd"))
                .Select(w => w.Id)
                .Order(StringComparer.Ordinal)];
        }

        var list = await Cli.RunAsync("models", "list", "--store", "local", "--data", farm.Serve.DataRoot, "--farm", farm.Serve.Address.ToString(), "--json");

        list.ExitCode.ShouldBe(0, list.Error);
        using var document = JsonDocument.Parse(list.Output);
        var model = document.RootElement.GetProperty("models").EnumerateArray().ShouldHaveSingleItem();
        model.GetProperty("name").GetString().ShouldBe("tiny-sd");
        model.GetProperty("workers").EnumerateArray().Select(w => w.GetString()).ShouldBe(holders);
    }
}
