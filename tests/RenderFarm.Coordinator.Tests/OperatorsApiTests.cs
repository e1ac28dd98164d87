using System.Net;
using System.Text.Json;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Tests.Infrastructure;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// The operators' API (retry, a job's item pages, why a job waits, fleet and queue statistics) through HTTP and the
/// bus, on PostgreSQL and on SQLite like the rest of the coordinator's behaviour.
/// </summary>
public abstract class OperatorsApiTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    [Fact]
    public async Task Retry_queues_a_new_attempt_of_only_the_failed_items_with_their_seeds()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 3;
        job["seed"] = 500;
        var id = (await Client.SubmitAsync(job)).Id();
        var items = (await Probe.UnitsAsync(id, 3)).SelectMany(u => u.Items).OrderBy(i => i.Index).ToList();
        await Probe.Bus.Publish(new ItemRendered(items[0].ItemId, id, 1, items[0].OutputKey, "worker-a", TimeSpan.Zero));
        await Probe.Bus.Publish(new ItemFailed(items[1].ItemId, id, 1, "worker-a", "model file is corrupt", Retryable: false));
        await Probe.Bus.Publish(new ItemRendered(items[2].ItemId, id, 1, items[2].OutputKey, "worker-a", TimeSpan.Zero));
        await Client.WaitForStateAsync(id, "CompletedWithErrors");

        using var response = await Client.PostAsync($"/v1/jobs/{id}/retry", null);

        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        response.StatusCode.ShouldBe(HttpStatusCode.OK, body.ToString());
        body.GetProperty("requeued").GetInt64().ShouldBe(1);
        body.GetProperty("state").GetString().ShouldBe("Running");
        var unit = await Probe.NextUnitAsync(id);
        var retried = unit.Items.ShouldHaveSingleItem();
        retried.ItemId.ShouldBe(items[1].ItemId);
        retried.Attempt.ShouldBe(2);
        retried.Seed.ShouldBe(items[1].Seed);
        unit.DispatchedAt.ShouldNotBeNull();
        var reopened = await Client.GetJobAsync(id);
        reopened.GetProperty("finishedAt").ValueKind.ShouldBe(JsonValueKind.Null);
        reopened.GetProperty("progress").GetProperty("failed").GetInt64().ShouldBe(0);
        reopened.GetProperty("progress").GetProperty("queued").GetInt64().ShouldBe(1);

        // The stale first attempt's report changes nothing; the new attempt's success finishes the job.
        await Probe.Bus.Publish(new ItemFailed(items[1].ItemId, id, 1, "worker-a", "stale", Retryable: false));
        await Probe.Bus.Publish(new ItemRendered(retried.ItemId, id, 2, retried.OutputKey, "worker-b", TimeSpan.Zero));
        var done = await Client.WaitForStateAsync(id, "Succeeded");
        done.GetProperty("progress").GetProperty("succeeded").GetInt64().ShouldBe(3);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(500))).ShouldBeFalse();
    }

    [Fact]
    public async Task A_running_item_whose_worker_cannot_reach_the_store_says_so_as_the_jobs_waiting_reason()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob("waits at its upload"))).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();
        var worker = "store-cut-" + Guid.NewGuid().ToString("N")[..6];
        await Probe.Bus.Publish(new ItemStarted(item.ItemId, id, item.Attempt, worker, DateTimeOffset.UtcNow));
        var since = DateTimeOffset.UtcNow - TimeSpan.FromSeconds(40);
        await Probe.Bus.Publish(Heartbeat(worker, [item.ItemId]) with { StoreUnreachableSince = since });

        // Until the start and the heartbeat are recorded the job is queued with no worker: a reason of its own.
        var waiting = await Client.WaitForJobAsync(id, j => j.GetProperty("waitingReason").GetString()?.Contains("object store", StringComparison.Ordinal) == true);
        var reason = waiting.GetProperty("waitingReason").GetString()!;
        reason.ShouldContain("cannot reach the object store");
        reason.ShouldContain(worker);
        reason.ShouldContain("1 running item(s)");

        // The store answers again: the next heartbeat clears it.
        await Probe.Bus.Publish(Heartbeat(worker, [item.ItemId]));
        await Client.WaitForJobAsync(id, j => j.GetProperty("waitingReason").ValueKind == JsonValueKind.Null);
    }

    [Fact]
    public async Task Retry_of_a_canceled_job_requeues_its_canceled_items_dispatched_after_the_cancel()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 2;
        var id = (await Client.SubmitAsync(job)).Id();
        var first = (await Probe.UnitsAsync(id, 2)).SelectMany(u => u.Items).OrderBy(i => i.Index).ToList();
        using (var cancel = await Client.PostAsync($"/v1/jobs/{id}/cancel", null))
        {
            cancel.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        await Eventually(() => Probe.WasCanceled(id));

        using var response = await Client.PostAsync($"/v1/jobs/{id}/retry", null);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        body.GetProperty("requeued").GetInt64().ShouldBe(2);
        body.GetProperty("state").GetString().ShouldBe("Queued");
        var units = await Probe.UnitsAsync(id, 2);
        units.SelectMany(u => u.Items).Select(i => (i.ItemId, i.Attempt, i.Seed)).OrderBy(i => i.Seed)
            .ShouldBe(first.Select(i => (i.ItemId, 2, i.Seed)).OrderBy(i => i.Seed));
        units.ShouldAllBe(u => u.DispatchedAt > Probe.CanceledEvent(id)!.CanceledAt);
        var reopened = await Client.GetJobAsync(id);
        reopened.GetProperty("state").GetString().ShouldBe("Queued");
        reopened.GetProperty("cancelReason").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task Retry_answers_409_when_nothing_failed_and_404_for_an_unknown_job()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();

        using var nothing = await Client.PostAsync($"/v1/jobs/{id}/retry", null);
        using var unknown = await Client.PostAsync($"/v1/jobs/{Guid.NewGuid()}/retry", null);

        nothing.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        nothing.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        unknown.StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_jobs_items_are_listed_in_keyset_pages_and_filtered_by_state()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 5;
        job["seed"] = 10;
        var id = (await Client.SubmitAsync(job)).Id();
        var items = (await Probe.UnitsAsync(id, 5)).SelectMany(u => u.Items).OrderBy(i => i.Index).ToList();
        await Probe.Bus.Publish(new ItemRendered(items[3].ItemId, id, 1, items[3].OutputKey, "worker-a", TimeSpan.Zero));
        await Client.WaitForJobAsync(id, j => j.GetProperty("progress").GetProperty("succeeded").GetInt64() == 1);

        var page1 = await GetAsync($"/v1/jobs/{id}/items?limit=2");
        var page2 = await GetAsync($"/v1/jobs/{id}/items?limit=2&after={page1.GetProperty("next").GetInt64()}");
        var page3 = await GetAsync($"/v1/jobs/{id}/items?limit=2&after={page2.GetProperty("next").GetInt64()}");
        var succeeded = await GetAsync($"/v1/jobs/{id}/items?state=succeeded");

        Indexes(page1).ShouldBe([0, 1]);
        Indexes(page2).ShouldBe([2, 3]);
        Indexes(page3).ShouldBe([4]);
        page3.GetProperty("next").ValueKind.ShouldBe(JsonValueKind.Null);
        page1.GetProperty("items")[1].GetProperty("seed").GetInt64().ShouldBe(11);
        page1.GetProperty("items")[1].GetProperty("state").GetString().ShouldBe("Queued");
        var image = succeeded.GetProperty("items").EnumerateArray().ShouldHaveSingleItem();
        image.GetProperty("index").GetInt64().ShouldBe(3);
        image.GetProperty("imageUrl").GetString().ShouldBe($"/v1/images/{id}/3");
        (await StatusOfAsync($"/v1/jobs/{id}/items?state=Lost")).ShouldBe(HttpStatusCode.BadRequest);
        (await StatusOfAsync($"/v1/jobs/{id}/items?limit=0")).ShouldBe(HttpStatusCode.BadRequest);
        (await StatusOfAsync($"/v1/jobs/{Guid.NewGuid()}/items")).ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_fleet_shows_each_workers_status_and_the_item_it_renders_with_its_step()
    {
        var worker = "fleet-" + Guid.NewGuid().ToString("N")[..8];
        var draining = "drain-" + Guid.NewGuid().ToString("N")[..8];
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();

        // The worker heartbeats throughout, as a real one does, so the item's short (test) lease never lapses
        // however loaded the machine is.
        using var stop = new CancellationTokenSource();
        var heartbeats = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Probe.Bus.Publish(Heartbeat(worker, [item.ItemId]));
                await Task.Delay(200);
            }
        });
        await Probe.Bus.Publish(new ItemStarted(item.ItemId, id, 1, worker, DateTimeOffset.UtcNow));
        await Client.WaitForStateAsync(id, "Running");
        await Probe.Bus.Publish(new ItemProgressed(item.ItemId, id, 1, 2, 4, null, DateTimeOffset.UtcNow));

        JsonElement mine = default, other = default, seen = default;
        await Eventually(() => seen.ToString(), async () =>
        {
            await Probe.Bus.Publish(Heartbeat(draining, [], WorkerState.Draining));
            var fleet = seen = await GetAsync("/v1/monitoring/fleet");
            mine = fleet.EnumerateArray().FirstOrDefault(w => w.GetProperty("worker").GetProperty("id").GetString() == worker);
            other = fleet.EnumerateArray().FirstOrDefault(w => w.GetProperty("worker").GetProperty("id").GetString() == draining);
            return mine.ValueKind == JsonValueKind.Object && other.ValueKind == JsonValueKind.Object
                && mine.GetProperty("current").GetArrayLength() == 1 && mine.GetProperty("current")[0].GetProperty("step").GetInt32() == 2;
        });

        mine.GetProperty("status").GetString().ShouldBe("live");
        mine.GetProperty("worker").GetProperty("memoryBudgetBytes").GetInt64().ShouldBe(16L << 30);
        var current = mine.GetProperty("current")[0];
        current.GetProperty("jobId").GetGuid().ShouldBe(id);
        current.GetProperty("index").GetInt64().ShouldBe(0);
        current.GetProperty("totalSteps").GetInt32().ShouldBe(4);
        other.GetProperty("status").GetString().ShouldBe("draining");
        await stop.CancelAsync();
        await heartbeats;

        // Once its heartbeat lapses, a worker is gone and shows no current item.
        await Eventually(async () =>
        {
            var fleet = await GetAsync("/v1/monitoring/fleet");
            var w = fleet.EnumerateArray().First(w => w.GetProperty("worker").GetProperty("id").GetString() == draining);
            return w.GetProperty("status").GetString() == "gone";
        });
    }

    [Fact]
    public async Task Queue_statistics_count_items_and_jobs_by_state_and_completions_per_minute()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();
        await Probe.Bus.Publish(new ItemStarted(item.ItemId, id, 1, "worker-a", DateTimeOffset.UtcNow));
        await Client.WaitForStateAsync(id, "Running");
        await Probe.Bus.Publish(new ItemRendered(item.ItemId, id, 1, item.OutputKey, "worker-a", TimeSpan.Zero));
        await Client.WaitForStateAsync(id, "Succeeded");

        var stats = await GetAsync("/v1/monitoring/queues?minutes=5");

        stats.GetProperty("items").GetProperty("Succeeded").GetInt64().ShouldBeGreaterThanOrEqualTo(1);
        stats.GetProperty("jobs").GetProperty("Succeeded").GetInt64().ShouldBeGreaterThanOrEqualTo(1);
        stats.GetProperty("jobs").TryGetProperty("Queued", out _).ShouldBeTrue();
        stats.GetProperty("outbox").GetProperty("oldestAgeSeconds").GetDouble().ShouldBeGreaterThanOrEqualTo(0);
        var minutes = stats.GetProperty("minutes").EnumerateArray().ToList();
        minutes.Count.ShouldBe(5);
        minutes.Sum(m => m.GetProperty("succeeded").GetInt64()).ShouldBeGreaterThanOrEqualTo(1);
        minutes.Sum(m => m.GetProperty("started").GetInt64()).ShouldBeGreaterThanOrEqualTo(1);
        minutes.Any(m => m.GetProperty("meanWaitSeconds").ValueKind == JsonValueKind.Number).ShouldBeTrue();
        (await StatusOfAsync("/v1/monitoring/queues?minutes=0")).ShouldBe(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task The_waiting_queue_is_in_dispatch_order_so_higher_priority_jobs_come_first_whatever_their_age()
    {
        var first = JobsClient.ValidJob("urgent, submitted first");
        first["priority"] = 100;
        var second = JobsClient.ValidJob("urgent, submitted second");
        second["priority"] = 100;
        var a = (await Client.SubmitAsync(first)).Id();
        var b = (await Client.SubmitAsync(second)).Id();
        try
        {
            (await GetAsync($"/v1/jobs/{a}/waiting")).GetProperty("position").GetInt32().ShouldBe(1);
            (await GetAsync($"/v1/jobs/{b}/waiting")).GetProperty("position").GetInt32().ShouldBe(2);
            var page = (await GetAsync("/v1/monitoring/waiting?page=1&pageSize=2")).GetProperty("items");
            page.EnumerateArray().Select(j => j.GetProperty("jobId").GetGuid()).ShouldBe([a, b]);
        }
        finally
        {
            // The probe starts nothing: left waiting, they would stand ahead of every later test's jobs.
            (await Client.PostAsync($"/v1/jobs/{a}/cancel", null)).Dispose();
            (await Client.PostAsync($"/v1/jobs/{b}/cancel", null)).Dispose();
        }
    }

    [Fact]
    public async Task Why_waiting_gives_the_position_and_each_workers_reason()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var small = "small-" + suffix;
        var busy = "busy-" + suffix;
        var draining = "draining-" + suffix;
        var bare = "bare-" + suffix;
        var running = Guid.NewGuid();
        await PublishWaitFleetAsync();
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();

        JsonElement waiting = default;
        await Eventually(async () =>
        {
            await PublishWaitFleetAsync();
            waiting = await GetAsync($"/v1/jobs/{id}/waiting");
            return Verdict(waiting, small) is { ValueKind: JsonValueKind.Object } s && s.GetProperty("reasons").GetArrayLength() > 0
                && Verdict(waiting, busy).ValueKind == JsonValueKind.Object
                && Verdict(waiting, draining) is { ValueKind: JsonValueKind.Object } d && d.GetProperty("reasons")[0].GetString() == "draining"
                && Verdict(waiting, bare).ValueKind == JsonValueKind.Object;
        });

        waiting.GetProperty("position").GetInt32().ShouldBeGreaterThanOrEqualTo(1);
        waiting.GetProperty("queuedItems").GetInt64().ShouldBe(1);
        waiting.GetProperty("summary").GetString().ShouldNotBeNullOrWhiteSpace();
        Reasons(waiting, small).ShouldBe(["too-small"]);
        Verdict(waiting, small).GetProperty("canTake").GetBoolean().ShouldBeFalse();
        Verdict(waiting, small).GetProperty("explanation").GetString()!.ShouldContain("64×64");
        Reasons(waiting, busy).ShouldBe(["busy"]);
        Reasons(waiting, bare).ShouldBe(["model-missing"], waiting.ToString());
        Verdict(waiting, bare).GetProperty("canTake").GetBoolean().ShouldBeTrue();

        var queue = await GetAsync("/v1/monitoring/waiting?pageSize=500");
        var listed = queue.GetProperty("items").EnumerateArray().Single(j => j.GetProperty("jobId").GetGuid() == id);
        listed.GetProperty("position").GetInt32().ShouldBeGreaterThanOrEqualTo(1);
        (await StatusOfAsync($"/v1/jobs/{Guid.NewGuid()}/waiting")).ShouldBe(HttpStatusCode.NotFound);
        (await StatusOfAsync("/v1/monitoring/waiting?page=0")).ShouldBe(HttpStatusCode.BadRequest);

        async Task PublishWaitFleetAsync()
        {
            await Probe.Bus.Publish(Heartbeat(small, []) with { MaxPixels = 32 * 32 });
            await Probe.Bus.Publish(Heartbeat(busy, [running]));
            await Probe.Bus.Publish(Heartbeat(draining, [], WorkerState.Draining));
            await Probe.Bus.Publish(Heartbeat(bare, []) with { LoadedModels = [] });
        }
    }

    [Fact]
    public async Task The_dashboard_is_served_at_slash_dashboard()
    {
        using var redirect = await fixture.Factory.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false }).GetAsync("/dashboard");
        using var page = await Client.GetAsync("/dashboard/");
        using var script = await Client.GetAsync("/dashboard/dashboard.js");

        ((int)redirect.StatusCode).ShouldBeInRange(301, 308);
        redirect.Headers.Location!.OriginalString.ShouldEndWith("/dashboard/");
        page.StatusCode.ShouldBe(HttpStatusCode.OK);
        page.Content.Headers.ContentType?.MediaType.ShouldBe("text/html");
        (await page.Content.ReadAsStringAsync()).ShouldContain("dashboard.js");
        script.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await script.Content.ReadAsStringAsync()).ShouldContain("/v1/monitoring/fleet");
    }

    private static JsonElement Verdict(JsonElement waiting, string worker) =>
        waiting.GetProperty("workers").EnumerateArray().FirstOrDefault(w => w.GetProperty("workerId").GetString() == worker);

    private static List<string?> Reasons(JsonElement waiting, string worker) =>
        [.. Verdict(waiting, worker).GetProperty("reasons").EnumerateArray().Select(r => r.GetString())];

    private static List<long> Indexes(JsonElement page) => [.. page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("index").GetInt64())];

    private static WorkerHeartbeat Heartbeat(string worker, IReadOnlyList<Guid> current, WorkerState? state = null) => new(
        worker, "test-host", "NVIDIA Test GPU", 24L << 30, 20L << 30, 16L << 30,
        ["CPUExecutionProvider"], ["tiny-sd"], current,
        state ?? (current.Count > 0 ? WorkerState.Busy : WorkerState.Idle), "full", PlacementProperties.DefaultPool, DateTimeOffset.UtcNow);

    private async Task<JsonElement> GetAsync(string url)
    {
        using var response = await Client.GetAsync(url);
        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private async Task<HttpStatusCode> StatusOfAsync(string url)
    {
        using var response = await Client.GetAsync(url);
        return response.StatusCode;
    }

    private static Task Eventually(Func<bool> condition) => Eventually(() => "", () => Task.FromResult(condition()));

    private static Task Eventually(Func<Task<bool>> condition) => Eventually(() => "", condition);

    private static async Task Eventually(Func<string> lastSeen, Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The condition did not become true in time; last seen: {lastSeen()}");
            }

            await Task.Delay(50);
        }
    }
}

/// <summary>The operators' API on the real PostgreSQL.</summary>
public sealed class PostgresOperatorsApiTests(PostgresCoordinatorFixture fixture)
    : OperatorsApiTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>The operators' API on embedded SQLite.</summary>
public sealed class SqliteOperatorsApiTests(SqliteCoordinatorFixture fixture)
    : OperatorsApiTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
