using RenderFarm.Client;
using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Cli.Tests;

/// <summary>The farm's API behaviour against embedded <c>renderfarm serve</c> (SQLite, in-memory bus, local folder, two in-process workers).</summary>
public sealed class EmbeddedFarmTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    private static readonly SubmitJobRequest Small = new(Prompt: "a lighthouse at dusk", NegativePrompt: "blurry", Width: 64, Height: 64, Steps: 2, GuidanceScale: 7.5, Sampler: "euler_a", Count: 3, Seed: 1234);

    private static CancellationToken Timeout(int seconds = 120) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [Fact]
    public async Task A_job_of_three_items_completes_with_three_pngs_carrying_their_parameters_rendered_by_listed_workers()
    {
        var client = farm.Serve.CreateClient();

        var (submitted, _) = await client.SubmitJobAsync(Small, cancellationToken: Timeout());
        var job = await WaitFinalAsync(client, submitted.Id);
        var workers = await client.GetWorkersAsync(Timeout());

        job.State.ShouldBe(JobState.Succeeded);
        job.Images.Count.ShouldBe(3);
        workers.Count(w => w.Live).ShouldBe(2);
        foreach (var image in job.Images)
        {
            workers.Select(w => w.Id).ShouldContain(image.WorkerId);
            await using var png = await client.DownloadImageAsync(job.Id, image.Index, Timeout());
            using var bytes = new MemoryStream();
            await png.CopyToAsync(bytes);
            var parameters = GenerationParameters.Parse(PngCodec.ReadTextChunks(bytes.ToArray())["parameters"]);
            parameters.Prompt.ShouldBe(Small.Prompt);
            parameters.NegativePrompt.ShouldBe(Small.NegativePrompt);
            parameters.Seed.ShouldBe((ulong)(1234 + image.Index));
            parameters.Steps.ShouldBe(2);
            parameters.Sampler.ShouldBe("euler_a");
            (parameters.Width, parameters.Height).ShouldBe((64, 64));
            parameters.Model.ShouldBe("tiny-sd");
        }
    }

    [Fact]
    public async Task A_repeated_idempotency_key_returns_the_same_job()
    {
        var client = farm.Serve.CreateClient();
        var key = Guid.NewGuid().ToString();

        var first = await client.SubmitJobAsync(Small with { Count = 1 }, key, Timeout());
        var second = await client.SubmitJobAsync(Small with { Count = 1 }, key, Timeout());

        second.Job.Id.ShouldBe(first.Job.Id);
        second.Replayed.ShouldBeTrue();
    }

    [Fact]
    public async Task A_bad_request_gets_400_with_field_errors()
    {
        var client = farm.Serve.CreateClient();

        var ex = await Should.ThrowAsync<RenderFarmApiException>(() =>
            client.SubmitJobAsync(Small with { Width = 100, Model = "no-such-model", GuidanceScale = double.NaN }, cancellationToken: Timeout()));

        ex.Status.ShouldBe(400);
        ex.Errors.Keys.ShouldBe(["guidanceScale", "model", "width"], ignoreOrder: true);
    }

    [Fact]
    public async Task Cancel_stops_a_running_job_and_keeps_what_finished()
    {
        var client = farm.Serve.CreateClient();
        var (job, _) = await client.SubmitJobAsync(Small with { Count = 40, Steps = 30 }, cancellationToken: Timeout());
        await foreach (var e in client.FollowEventsAsync(job.Id, Timeout()))
        {
            if (e.Type == JobEventTypes.ItemStarted)
            {
                break;
            }
        }

        var canceled = await client.CancelJobAsync(job.Id, "test", Timeout());
        var final = await WaitFinalAsync(client, job.Id);

        canceled.State.ShouldBe(JobState.Canceled);
        final.State.ShouldBe(JobState.Canceled);
        final.Progress.Canceled.ShouldBeGreaterThan(0);
        (final.Progress.Succeeded + final.Progress.Canceled + final.Progress.Failed).ShouldBe(40);
        final.Images.Count.ShouldBe((int)final.Progress.Succeeded);
    }

    [Fact]
    public async Task Submit_status_and_fetch_round_trip_through_the_cli()
    {
        var farmUrl = farm.Serve.Address.ToString();
        var output = Path.Combine(farm.Scratch, "fetched-" + Guid.NewGuid().ToString("N"));

        var submit = await Cli.RunAsync("submit", "a red fox", "--width", "64", "--height", "64", "--steps", "2", "--count", "2", "--seed", "5", "--farm", farmUrl);
        var id = submit.Output.Trim();
        var status = await Cli.RunAsync("status", id, "--watch", "--farm", farmUrl);
        var fetch = await Cli.RunAsync("fetch", id, "-o", output, "--farm", farmUrl);
        var jobs = await Cli.RunAsync("jobs", "--state", "succeeded", "--farm", farmUrl);
        var workers = await Cli.RunAsync("workers", "--farm", farmUrl);

        submit.ExitCode.ShouldBe(0, submit.Error);
        Guid.TryParse(id, out _).ShouldBeTrue(submit.Output);
        status.ExitCode.ShouldBe(0, status.Error);
        status.Output.ShouldContain($"job {id}: Succeeded, 2/2 items done");
        fetch.ExitCode.ShouldBe(0, fetch.Error);
        fetch.Output.ShouldContain("fetched 2 image(s)");
        Directory.GetFiles(output).Select(Path.GetFileName).Order().ShouldBe(["000000.png", "000001.png"]);
        var parameters = GenerationParameters.Parse(PngCodec.ReadTextChunks(await File.ReadAllBytesAsync(Path.Combine(output, "000001.png")))["parameters"]);
        parameters.Seed.ShouldBe(6UL);
        jobs.ExitCode.ShouldBe(0, jobs.Error);
        jobs.Output.ShouldContain(id);
        workers.ExitCode.ShouldBe(0, workers.Error);
        workers.Output.ShouldContain("2 live of");
    }

    [Fact]
    public async Task Submit_with_invalid_fields_exits_2_with_each_field_error_on_its_own_line()
    {
        var (exitCode, _, error) = await Cli.RunAsync("submit", "a red fox", "--width", "65", "--steps", "0", "--sampler", "nope", "--farm", farm.Serve.Address.ToString());

        exitCode.ShouldBe(2);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lines[0].ShouldStartWith("error: ");
        lines.ShouldContain(l => l.StartsWith("width: ", StringComparison.Ordinal));
        lines.ShouldContain(l => l.StartsWith("steps: ", StringComparison.Ordinal));
        lines.ShouldContain(l => l.StartsWith("sampler: ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_sweep_over_sizes_renders_each_image_at_its_size()
    {
        var farmUrl = farm.Serve.Address.ToString();
        var output = Path.Combine(farm.Scratch, "sizes-" + Guid.NewGuid().ToString("N"));

        var submit = await Cli.RunAsync("submit", "a red fox", "--sweep-sizes", "64x64, 96x64", "--steps", "2", "--seed", "5", "--wait", "--farm", farmUrl);
        var fetch = await Cli.RunAsync("fetch", submit.Output.Trim().Split('\n')[0].Trim(), "-o", output, "--farm", farmUrl);

        submit.ExitCode.ShouldBe(0, submit.Error);
        fetch.ExitCode.ShouldBe(0, fetch.Error);
        // The IHDR chunk follows the 8-byte signature and the chunk's length and type: width, then height, big-endian.
        var sizes = Directory.GetFiles(output).Order().Select(File.ReadAllBytes)
            .Select(png => (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20))));
        sizes.ShouldBe([(64, 64), (96, 64)]);
    }

    [Theory]
    [InlineData("64x", "--sweep-sizes: '64x' is not a valid value; give a comma-separated list such as 512x512,768x512.")]
    [InlineData("64*64", "--sweep-sizes: '64*64' is not a valid value")]
    public async Task A_bad_size_in_the_sweep_exits_2_naming_it(string sizes, string message)
    {
        var (exitCode, _, error) = await Cli.RunAsync("submit", "a red fox", "--sweep-sizes", sizes, "--farm", farm.Serve.Address.ToString());

        exitCode.ShouldBe(2);
        error.ShouldContain(message);
    }

    [Fact]
    public async Task Sweep_sizes_with_width_exits_2()
    {
        var (exitCode, _, error) = await Cli.RunAsync("submit", "a red fox", "--sweep-sizes", "64x64", "--width", "64", "--farm", farm.Serve.Address.ToString());

        exitCode.ShouldBe(2);
        error.ShouldContain("--sweep-sizes replaces --width and --height");
    }

    /// <summary>Polls the job until it is final; fails after <paramref name="timeout"/> (3 minutes by default).</summary>
    internal static async Task<Job> WaitFinalAsync(RenderFarmClient client, Guid id, TimeSpan? timeout = null)
    {
        var cancellation = Timeout((int)(timeout ?? TimeSpan.FromMinutes(3)).TotalSeconds);
        while (true)
        {
            var job = await client.GetJobAsync(id, cancellationToken: cancellation);
            job.ShouldNotBeNull();
            if (job.IsFinal)
            {
                return job;
            }

            await Task.Delay(200, cancellation);
        }
    }
}

/// <summary>The embedded farm's data outlives serve.</summary>
public sealed class EmbeddedFarmRestartTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("rf-serve-restart-").FullName;

    [Fact]
    public async Task After_a_restart_on_the_same_data_the_finished_job_and_its_images_are_still_there()
    {
        var data = Path.Combine(_root, "data");
        Guid jobId;
        byte[] before;
        await using (var first = await EmbeddedServe.StartAsync(data))
        {
            var client = first.CreateClient();
            var (job, _) = await client.SubmitJobAsync(new SubmitJobRequest("a quiet harbour", Width: 64, Height: 64, Steps: 2, GuidanceScale: 7.5, Sampler: "euler", Count: 2, Seed: 9));
            jobId = job.Id;
            (await EmbeddedFarmTests.WaitFinalAsync(client, jobId)).State.ShouldBe(JobState.Succeeded);
            before = await ReadImageAsync(client, jobId, 1);
            (await first.StopAsync()).ShouldBe(0, first.Output);
        }

        await using var second = await EmbeddedServe.StartAsync(data);
        var again = second.CreateClient();
        var restored = await again.GetJobAsync(jobId);

        restored.ShouldNotBeNull();
        restored.State.ShouldBe(JobState.Succeeded);
        restored.Images.Select(i => i.Index).ShouldBe([0L, 1L]);
        (await ReadImageAsync(again, jobId, 1)).ShouldBe(before);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static async Task<byte[]> ReadImageAsync(RenderFarmClient client, Guid jobId, long index)
    {
        await using var png = await client.DownloadImageAsync(jobId, index);
        using var bytes = new MemoryStream();
        await png.CopyToAsync(bytes);
        return bytes.ToArray();
    }
}

/// <summary>The client verbs when no farm answers.</summary>
public sealed class UnreachableFarmTests
{
    [Fact]
    public async Task A_farm_that_does_not_answer_exits_1_naming_the_url_and_asking_for_serve()
    {
        // A port that was free a moment ago and has nothing listening: the connection is refused.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var url = $"http://127.0.0.1:{port}";

        var (exitCode, _, error) = await Cli.RunAsync("jobs", "--farm", url);

        exitCode.ShouldBe(1);
        error.ShouldContain(url);
        error.ShouldContain("is `renderfarm serve` running?");
    }

    [Fact]
    public async Task A_job_id_that_is_not_a_uuid_exits_2()
    {
        var (exitCode, _, error) = await Cli.RunAsync("status", "not-a-job", "--farm", "http://127.0.0.1:9");

        exitCode.ShouldBe(2);
        error.ShouldContain("not a job id");
    }

    [Fact]
    public async Task Submit_without_a_prompt_exits_2_before_calling_the_farm()
    {
        var (exitCode, _, error) = await Cli.RunAsync("submit", "--farm", "http://127.0.0.1:9");

        exitCode.ShouldBe(2);
        error.ShouldContain("give a prompt");
    }
}
