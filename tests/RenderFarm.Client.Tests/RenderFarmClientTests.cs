using System.Net;

namespace RenderFarm.Client.Tests;

public sealed class RenderFarmClientTests(CoordinatorOnSqlite farm) : IClassFixture<CoordinatorOnSqlite>
{
    private static readonly SubmitJobRequest Small = new(Prompt: "a red fox", Width: 64, Height: 64, Steps: 2, GuidanceScale: 7.5, Sampler: "euler_a", Count: 3, Seed: 100);

    private static CancellationToken Timeout => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    [Fact]
    public async Task Submitting_a_job_returns_it_queued_with_its_items_and_get_reads_it_back()
    {
        var client = farm.CreateFarmClient();

        var (job, replayed) = await client.SubmitJobAsync(Small, cancellationToken: Timeout);
        var read = await client.GetJobAsync(job.Id, cancellationToken: Timeout);

        replayed.ShouldBeFalse();
        job.State.ShouldBe(JobState.Queued);
        job.Items.ShouldBe(3);
        job.Seed.ShouldBe(100);
        job.Model.ShouldBe("tiny-sd");
        read.ShouldNotBeNull();
        read.Id.ShouldBe(job.Id);
        read.Progress.Total.ShouldBe(3);
        read.IsFinal.ShouldBeFalse();
    }

    [Fact]
    public async Task A_repeated_idempotency_key_returns_the_same_job_marked_as_replayed()
    {
        var client = farm.CreateFarmClient();
        var key = Guid.NewGuid().ToString();

        var first = await client.SubmitJobAsync(Small, key, Timeout);
        var second = await client.SubmitJobAsync(Small, key, Timeout);

        second.Job.Id.ShouldBe(first.Job.Id);
        second.Replayed.ShouldBeTrue();
    }

    [Fact]
    public async Task An_invalid_job_becomes_an_api_exception_with_status_title_and_field_errors()
    {
        var client = farm.CreateFarmClient();

        var ex = await Should.ThrowAsync<RenderFarmApiException>(() =>
            client.SubmitJobAsync(Small with { Width = 65, Steps = 0, Sampler = "nope" }, cancellationToken: Timeout));

        ex.Status.ShouldBe(400);
        ex.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        ex.Title.ShouldNotBeNullOrWhiteSpace();
        ex.Errors.Keys.ShouldBe(["sampler", "steps", "width"], ignoreOrder: true);
        ex.Errors["width"].ShouldHaveSingleItem().ShouldContain("multiple of 8");
        ex.Message.ShouldContain("width:");
    }

    [Fact]
    public async Task An_unknown_job_reads_as_null_and_its_image_as_a_404_problem()
    {
        var client = farm.CreateFarmClient();

        (await client.GetJobAsync(Guid.NewGuid(), cancellationToken: Timeout)).ShouldBeNull();
        var ex = await Should.ThrowAsync<RenderFarmApiException>(() => client.DownloadImageAsync(Guid.NewGuid(), 0, Timeout));
        ex.Status.ShouldBe(404);
        ex.Detail.ShouldNotBeNull();
    }

    [Fact]
    public async Task Cancel_makes_the_job_canceled_its_stream_ends_and_a_second_cancel_is_a_conflict()
    {
        var client = farm.CreateFarmClient();
        var (job, _) = await client.SubmitJobAsync(Small, cancellationToken: Timeout);

        var canceled = await client.CancelJobAsync(job.Id, "changed my mind", Timeout);
        var events = new List<JobEvent>();
        await foreach (var e in client.FollowEventsAsync(job.Id, Timeout))
        {
            events.Add(e);
        }

        canceled.State.ShouldBe(JobState.Canceled);
        canceled.CancelReason.ShouldBe("changed my mind");
        canceled.Progress.Canceled.ShouldBe(3);
        events.Select(e => e.Type).ShouldBe([JobEventTypes.Snapshot, JobEventTypes.JobDone]);
        events[0].Total.ShouldBe(3);
        events[1].State.ShouldBe(nameof(JobState.Canceled));
        var again = await Should.ThrowAsync<RenderFarmApiException>(() => client.CancelJobAsync(job.Id, cancellationToken: Timeout));
        again.Status.ShouldBe(409);
    }

    [Fact]
    public async Task The_manifest_reads_as_entries_in_index_order_and_an_unknown_jobs_as_a_404_problem()
    {
        var client = farm.CreateFarmClient();
        var (job, _) = await client.SubmitJobAsync(Small, cancellationToken: Timeout);

        var entries = new List<ManifestEntry>();
        await foreach (var entry in client.GetManifestAsync(job.Id, Timeout))
        {
            entries.Add(entry);
        }

        var ex = await Should.ThrowAsync<RenderFarmApiException>(() => client.OpenManifestAsync(Guid.NewGuid(), ManifestFormat.Parquet, Timeout));

        entries.Select(e => (e.Key, e.Index, e.Seed, e.Status)).ShouldBe(
            [("000000000", 0L, 100L, ManifestStatuses.Queued), ("000000001", 1L, 101L, ManifestStatuses.Queued), ("000000002", 2L, 102L, ManifestStatuses.Queued)]);
        entries.ShouldAllBe(e => e.Prompt == "a red fox" && e.Sha256 == null && e.Url == null && !e.HasImage);
        ex.Status.ShouldBe(404);
    }

    [Fact]
    public async Task Listing_filters_by_state_and_pages()
    {
        var client = farm.CreateFarmClient();
        var (queued, _) = await client.SubmitJobAsync(Small, cancellationToken: Timeout);
        var (canceled, _) = await client.SubmitJobAsync(Small, cancellationToken: Timeout);
        await client.CancelJobAsync(canceled.Id, cancellationToken: Timeout);

        var canceledJobs = await client.ListJobsAsync(JobState.Canceled, pageSize: 500, cancellationToken: Timeout);
        var firstPage = await client.ListJobsAsync(pageSize: 1, cancellationToken: Timeout);

        canceledJobs.Items.ShouldContain(j => j.Id == canceled.Id);
        canceledJobs.Items.ShouldNotContain(j => j.Id == queued.Id);
        canceledJobs.Items.ShouldAllBe(j => j.State == JobState.Canceled);
        firstPage.Items.Count.ShouldBe(1);
        firstPage.Total.ShouldBeGreaterThanOrEqualTo(2);
    }

    [Fact]
    public async Task A_farm_without_workers_lists_none_and_says_why_a_job_waits()
    {
        var client = farm.CreateFarmClient();
        var (job, _) = await client.SubmitJobAsync(Small, cancellationToken: Timeout);

        var workers = await client.GetWorkersAsync(Timeout);
        var read = await client.GetJobAsync(job.Id, cancellationToken: Timeout);

        workers.ShouldBeEmpty();
        read!.EligibleWorkers.ShouldBe(0);
        read.WaitingReason.ShouldNotBeNullOrWhiteSpace();
    }

    [Fact]
    public async Task AddRenderFarmClient_resolves_a_client_for_the_base_address()
    {
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        services.AddRenderFarmClient(new Uri("http://127.0.0.1:5180"));
        await using var provider = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);

        var client = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<RenderFarmClient>(provider);

        client.BaseAddress.ShouldBe(new Uri("http://127.0.0.1:5180/"));
    }
}
