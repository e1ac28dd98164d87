using RenderFarm.Client;
using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Cli.Tests;

/// <summary>An embedded farm whose workers send a preview every 200 ms, for tests that watch previews arrive.</summary>
public sealed class FrequentPreviewFarmFixture : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("rf-previews-").FullName;

    public EmbeddedServe Serve { get; private set; } = null!;

    public string Scratch => _root;

    public async Task InitializeAsync() =>
        Serve = await EmbeddedServe.StartAsync(Path.Combine(_root, "data"), workers: 2, "--preview-interval", "0.2");

    public async Task DisposeAsync()
    {
        if (Serve is not null)
        {
            await Serve.DisposeAsync();
        }

        Directory.Delete(_root, recursive: true);
    }
}

/// <summary>
/// Previews of real renders on the tiny model through <c>renderfarm serve</c>: worker → bus → coordinator → the preview
/// endpoint and the job's event stream, and <c>renderfarm status --watch</c> and <c>renderfarm top</c> on top of them.
/// </summary>
public sealed class PreviewFarmTests(FrequentPreviewFarmFixture farm) : IClassFixture<FrequentPreviewFarmFixture>
{
    // 128² at 150 steps takes seconds per item on the tiny model: long enough to see it running.
    private static readonly SubmitJobRequest Slow = new(Prompt: "a lighthouse at dusk", Width: 128, Height: 128, Steps: 150, GuidanceScale: 7.5, Sampler: "euler_a", Count: 1, Seed: 7);

    private static CancellationToken Timeout(int seconds = 180) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [Fact]
    public async Task A_running_items_preview_reaches_the_event_stream_and_the_endpoint_and_is_dropped_when_it_finishes()
    {
        var client = farm.Serve.CreateClient();
        var (job, _) = await client.SubmitJobAsync(Slow, cancellationToken: Timeout());

        var previewEvents = new List<JobEvent>();
        var served = new List<ItemPreview>();
        await foreach (var e in client.FollowEventsAsync(job.Id, Timeout()))
        {
            if (e.Type == JobEventTypes.Preview)
            {
                previewEvents.Add(e);
                // Fetched at once, while the item runs; the item may finish in between, so not every fetch must succeed.
                if (await client.GetItemPreviewAsync(job.Id, e.Index!.Value, Timeout()) is { } preview)
                {
                    served.Add(preview);
                }
            }
        }

        previewEvents.ShouldNotBeEmpty();
        previewEvents.ShouldAllBe(e => e.Index == 0 && e.Step >= 1 && e.Step < 150 && e.TotalSteps == 150);
        previewEvents[0].Url.ShouldBe($"/v1/jobs/{job.Id}/items/0/preview?step={previewEvents[0].Step}");
        served.ShouldNotBeEmpty("no preview could be fetched while the item ran");
        var first = served[0];
        first.ContentType.ShouldBe("image/jpeg");
        var image = PngCodec.Decode(first.Image);
        (image.Width, image.Height).ShouldBe((16, 16));
        first.Step.ShouldBeInRange(1, 149);

        (await EmbeddedFarmTests.WaitFinalAsync(client, job.Id)).State.ShouldBe(JobState.Succeeded);
        (await client.GetItemPreviewAsync(job.Id, 0, Timeout())).ShouldBeNull();
    }

    [Fact]
    public async Task Status_watch_saves_each_items_latest_preview_to_the_folder_it_is_given()
    {
        var client = farm.Serve.CreateClient();
        var (job, _) = await client.SubmitJobAsync(Slow with { Count = 2, Seed = 8 }, cancellationToken: Timeout());
        var folder = Path.Combine(farm.Scratch, "previews-" + job.Id.ToString("N"));

        var (exit, output, error) = await Cli.RunAsync("status", job.Id.ToString(), "--watch", "--preview-dir", folder, "--farm", farm.Serve.Address.ToString());

        exit.ShouldBe(0, error);
        output.ShouldContain("preview at step");
        output.ShouldContain(Path.Combine(folder, "00000"));
        var files = Directory.GetFiles(folder, "*.preview.jpg");
        files.ShouldNotBeEmpty();
        files.ShouldAllBe(f => Path.GetFileName(f) == "000000.preview.jpg" || Path.GetFileName(f) == "000001.preview.jpg");
        foreach (var file in files)
        {
            var image = PngCodec.Decode(await File.ReadAllBytesAsync(file));
            (image.Width, image.Height).ShouldBe((16, 16));
        }
    }

    [Fact]
    public async Task Preview_options_without_watch_are_refused_with_exit_code_2()
    {
        var (exit, _, error) = await Cli.RunAsync("status", Guid.NewGuid().ToString(), "--preview-dir", farm.Scratch, "--farm", farm.Serve.Address.ToString());

        exit.ShouldBe(2);
        error.ShouldContain("--watch");
    }

    [Fact]
    public async Task Top_with_output_redirected_prints_one_snapshot_listing_the_workers_and_a_running_job()
    {
        var client = farm.Serve.CreateClient();
        // Six items over two workers: still running when top, a fresh process, takes its snapshot on a fast machine.
        var (job, _) = await client.SubmitJobAsync(Slow with { Seed = 9, Count = 6 }, cancellationToken: Timeout());
        await foreach (var e in client.FollowEventsAsync(job.Id, Timeout()))
        {
            if (e.Type is JobEventTypes.ItemStarted or JobEventTypes.JobDone)
            {
                break;
            }
        }

        var (exit, output, error) = await Cli.RunAsync("top", "--farm", farm.Serve.Address.ToString());

        exit.ShouldBe(0, error);
        var workers = await client.GetWorkersAsync(Timeout());
        workers.Count.ShouldBe(2);
        foreach (var worker in workers)
        {
            output.ShouldContain(worker.Id);
        }

        output.ShouldContain(job.Id.ToString());
        output.ShouldContain("workers 2 live");
        output.ShouldNotContain("q or Ctrl+C quits");

        // Cleanup only: the job may have finished while top ran.
        try
        {
            await client.CancelJobAsync(job.Id, "test done", Timeout());
        }
        catch (RenderFarmApiException ex) when (ex.StatusCode == System.Net.HttpStatusCode.Conflict)
        {
        }
    }

    [Theory]
    [InlineData("--interval", "0")]
    [InlineData("--interval", "-1")]
    [InlineData("--jobs", "0")]
    public async Task Top_refuses_a_bad_option_with_exit_code_2(string option, string value)
    {
        var (exit, _, error) = await Cli.RunAsync("top", option, value, "--farm", farm.Serve.Address.ToString());

        exit.ShouldBe(2);
        error.ShouldContain(option);
    }
}

/// <summary>An embedded farm started with previews off.</summary>
public sealed class PreviewsOffFarmTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("rf-previews-off-").FullName;
    private EmbeddedServe _serve = null!;

    public async Task InitializeAsync() =>
        _serve = await EmbeddedServe.StartAsync(Path.Combine(_root, "data"), workers: 1, "--preview-interval", "0");

    public async Task DisposeAsync()
    {
        await _serve.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task With_previews_off_a_job_streams_no_preview_and_the_endpoint_has_none()
    {
        var client = _serve.CreateClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(180));
        // The one worker is kept busy by a long render until the stream of the job under test is open, so that job's
        // items run while it is followed however fast the machine renders (jobs of a few fast items were done before
        // the stream opened on CI).
        var (blocker, _) = await client.SubmitJobAsync(new SubmitJobRequest(Prompt: "a long wait", Width: 256, Height: 256, Steps: 1000, GuidanceScale: 7.5, Sampler: "euler", Count: 1, Seed: 1), cancellationToken: timeout.Token);
        while ((await client.GetJobAsync(blocker.Id, cancellationToken: timeout.Token))!.State != JobState.Running)
        {
            await Task.Delay(50, timeout.Token);
        }

        var (job, _) = await client.SubmitJobAsync(new SubmitJobRequest(Prompt: "a red fox", Width: 128, Height: 128, Steps: 60, GuidanceScale: 7.5, Sampler: "euler_a", Count: 2, Seed: 3), cancellationToken: timeout.Token);

        var types = new List<string>();
        var runningPreviews = 0;
        await foreach (var e in client.FollowEventsAsync(job.Id, timeout.Token))
        {
            if (e.Type == JobEventTypes.Snapshot)
            {
                using var http = new HttpClient { BaseAddress = _serve.Address };
                using var cancel = await http.PostAsync($"v1/jobs/{blocker.Id}/cancel", null, timeout.Token);
                cancel.EnsureSuccessStatusCode();
            }

            types.Add(e.Type);
            if (e.Type != JobEventTypes.ItemProgress)
            {
                continue;
            }

            // A progress event names the item by id, not index: ask for every item's preview.
            for (var index = 0; index < 2; index++)
            {
                if (await client.GetItemPreviewAsync(job.Id, index, timeout.Token) is not null)
                {
                    runningPreviews++;
                }
            }
        }

        types.ShouldContain(JobEventTypes.ItemProgress);
        types.ShouldContain(JobEventTypes.JobDone);
        types.ShouldNotContain(JobEventTypes.Preview);
        runningPreviews.ShouldBe(0);
        _serve.Output.ShouldContain("previews: off");
    }
}
