using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Storage;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// The coordinator's behaviour through HTTP and the bus. The same tests run on PostgreSQL and on SQLite (the
/// derived classes), because the embedded farm must behave exactly like the distributed one.
/// </summary>
public abstract class CoordinatorBehaviourTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    [Theory]
    [MemberData(nameof(BadRequests.Cases), MemberType = typeof(BadRequests))]
    public async Task Every_validation_rule_answers_400_problem_naming_the_field(string rule, string patch, string field)
    {
        using var response = await Client.PostRawAsync(JobsClient.Patched(patch));

        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, $"{rule}: {body}");
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json", rule);
        var errors = JsonDocument.Parse(body).RootElement.GetProperty("errors");
        errors.TryGetProperty(field, out var messages).ShouldBeTrue($"{rule}: expected errors[{field}] in {body}");
        messages[0].GetString().ShouldNotBeNullOrWhiteSpace();
    }

    [Theory]
    [MemberData(nameof(BadRequests.MalformedBodies), MemberType = typeof(BadRequests))]
    public async Task Malformed_bodies_answer_400_problem(string what, string json)
    {
        using var response = await Client.PostRawAsync(json);

        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, $"{what}: {body}");
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        JsonDocument.Parse(body).RootElement.GetProperty("errors").TryGetProperty("body", out _).ShouldBeTrue(body);
    }

    [Fact]
    public async Task Submitting_answers_202_with_the_job_and_get_shows_it_waiting()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 4;
        job["seed"] = 1000;

        using var response = await Client.PostRawAsync(job.ToJsonString());

        response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var accepted = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var id = accepted.Id();
        response.Headers.Location!.OriginalString.ShouldBe($"/v1/jobs/{id}");
        accepted.GetProperty("state").GetString().ShouldBe("Queued");
        accepted.GetProperty("items").GetInt64().ShouldBe(4);

        var got = await Client.GetJobAsync(id);
        got.GetProperty("model").GetString().ShouldBe("tiny-sd");
        got.GetProperty("seed").GetInt64().ShouldBe(1000);
        got.GetProperty("progress").GetProperty("total").GetInt64().ShouldBe(4);
        got.GetProperty("images").GetArrayLength().ShouldBe(0);
        got.GetProperty("errors").GetArrayLength().ShouldBe(0);
        var eligible = got.GetProperty("eligibleWorkers").GetInt32();
        if (eligible == 0)
        {
            got.GetProperty("waitingReason").GetString().ShouldNotBeNullOrWhiteSpace();
        }
    }

    [Fact]
    public async Task Unknown_job_is_404()
    {
        using var response = await Client.GetAsync($"/v1/jobs/{Guid.NewGuid()}");
        response.StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_repeated_idempotency_key_returns_the_same_job()
    {
        var key = Guid.NewGuid().ToString();
        var job = JobsClient.ValidJob("idempotent fox");

        var first = await Client.SubmitAsync(job, key);
        using var again = await Client.PostRawAsync(job.ToJsonString(), key);

        again.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        again.Headers.GetValues("Idempotent-Replayed").ShouldContain("true");
        JsonDocument.Parse(await again.Content.ReadAsStringAsync()).RootElement.Id().ShouldBe(first.Id());
        (await CountAsync(db => db.Jobs.CountAsync(j => j.Id == first.Id()))).ShouldBe(1);
    }

    [Fact]
    public async Task An_idempotency_key_reused_with_a_different_body_is_refused()
    {
        var key = Guid.NewGuid().ToString();
        await Client.SubmitAsync(JobsClient.ValidJob("first body"), key);

        using var response = await Client.PostRawAsync(JobsClient.ValidJob("second body").ToJsonString(), key);

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
    }

    [Fact]
    public async Task A_sweep_expands_into_the_cross_product_with_listed_seeds()
    {
        var job = JobsClient.ValidJob();
        job["sweep"] = new System.Text.Json.Nodes.JsonObject
        {
            ["prompts"] = new System.Text.Json.Nodes.JsonArray("a cat", "a dog"),
            ["seeds"] = new System.Text.Json.Nodes.JsonArray(11, 22, 33),
        };

        var id = (await Client.SubmitAsync(job)).Id();

        var items = await QueryAsync(db => db.Items.Where(i => i.JobId == id).OrderBy(i => i.Index).ToListAsync());
        items.Count.ShouldBe(6);
        items.Select(i => i.Seed).ShouldBe([11, 22, 33, 11, 22, 33]);
        items.Select(i => i.Prompt).ShouldBe(["a cat", "a cat", "a cat", "a dog", "a dog", "a dog"]);
        items.Select(i => i.Index).ShouldBe([0, 1, 2, 3, 4, 5]);
    }

    [Fact]
    public async Task Without_listed_seeds_item_i_uses_seed_plus_i()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 5;
        job["seed"] = 100;

        var id = (await Client.SubmitAsync(job)).Id();

        var seeds = await QueryAsync(db => db.Items.Where(i => i.JobId == id).OrderBy(i => i.Index).Select(i => i.Seed).ToListAsync());
        seeds.ShouldBe([100, 101, 102, 103, 104]);
    }

    [Fact]
    public async Task A_sweep_at_the_item_limit_is_written_in_pages_and_dispatched_whole()
    {
        var job = JobsClient.ValidJob();
        job["count"] = CoordinatorFactory.MaxCount;
        job["sweep"] = new System.Text.Json.Nodes.JsonObject
        {
            ["prompts"] = new System.Text.Json.Nodes.JsonArray([.. Enumerable.Range(0, CoordinatorFactory.MaxSweepItems / CoordinatorFactory.MaxCount).Select(i => (System.Text.Json.Nodes.JsonNode)$"prompt {i}")]),
        };

        var id = (await Client.SubmitAsync(job)).Id();
        var units = await Probe.UnitsAsync(id, CoordinatorFactory.MaxSweepItems);

        (await CountAsync(db => db.Items.CountAsync(i => i.JobId == id))).ShouldBe(CoordinatorFactory.MaxSweepItems);
        units.SelectMany(u => u.Items).Select(i => i.Index).Distinct().Count().ShouldBe(CoordinatorFactory.MaxSweepItems);
        units.ShouldAllBe(u => u.Items.Select(i => i.Prompt).Distinct().Count() == 1 || u.Items.Count <= CoordinatorFactory.WorkUnitSize);
    }

    [Fact]
    public async Task Job_items_and_outbox_commit_together_or_not_at_all()
    {
        var marker = "atomic-" + Guid.NewGuid().ToString("N");
        await using var failing = fixture.Factory.WithWebHostBuilder(b => b.ConfigureTestServices(services =>
        {
            var real = services.Single(d => d.ServiceType == typeof(IDatabaseDialect));
            services.Remove(real);
            services.AddSingleton<IDatabaseDialect>(sp => new FailAfterOutboxDialect((IDatabaseDialect)ActivatorUtilities.CreateInstance(sp, real.ImplementationType!)));
        }));
        using var client = failing.CreateClient();
        var job = JobsClient.ValidJob(marker);
        job["count"] = 7;

        using var response = await client.PostRawAsync(job.ToJsonString());

        response.StatusCode.ShouldBe(HttpStatusCode.InternalServerError);
        (await CountAsync(db => db.Items.CountAsync(i => i.Prompt == marker))).ShouldBe(0);
        (await CountAsync(db => db.Jobs.CountAsync(j => j.Request.Contains(marker)))).ShouldBe(0);
        (await CountAsync(db => db.Outbox.CountAsync(o => !db.Jobs.Any(j => j.Id == o.JobId)))).ShouldBe(0);
    }

    [Fact]
    public async Task The_dispatcher_sends_every_item_once_in_units_of_at_most_the_unit_size()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 7;

        var id = (await Client.SubmitAsync(job)).Id();
        var units = await Probe.UnitsAsync(id, 7);

        units.ShouldAllBe(u => u.Items.Count <= CoordinatorFactory.WorkUnitSize && u.JobId == id);
        units.SelectMany(u => u.Items).Select(i => i.Index).Order().ShouldBe([0, 1, 2, 3, 4, 5, 6]);
        units.SelectMany(u => u.Items).ShouldAllBe(i => i.Attempt == 1 && i.OutputKey == ArtifactKeys.Image(id, (int)i.Index));
        // The units can arrive before the dispatcher's transaction (which deletes the rows) commits.
        await Eventually(async () => await CountAsync(db => db.Outbox.CountAsync(o => o.JobId == id)) == 0);
    }

    [Fact]
    public async Task A_duplicate_completion_records_one_image_and_the_job_succeeds_once()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();

        await Probe.Bus.Publish(new ItemStarted(item.ItemId, id, item.Attempt, "worker-a", DateTimeOffset.UtcNow));
        var rendered = new ItemRendered(item.ItemId, id, item.Attempt, item.OutputKey, "worker-a", TimeSpan.FromSeconds(1));
        await Probe.Bus.Publish(rendered);
        await Probe.Bus.Publish(rendered);
        var done = await Client.WaitForStateAsync(id, "Succeeded");
        await Probe.Bus.Publish(rendered);
        await Task.Delay(300);

        var job = await Client.GetJobAsync(id);
        job.GetProperty("state").GetString().ShouldBe("Succeeded");
        var images = job.GetProperty("images");
        images.GetArrayLength().ShouldBe(1);
        images[0].GetProperty("workerId").GetString().ShouldBe("worker-a");
        images[0].GetProperty("url").GetString().ShouldBe($"/v1/images/{id}/0");
        job.GetProperty("progress").GetProperty("succeeded").GetInt64().ShouldBe(1);
        job.GetProperty("progress").GetProperty("done").GetInt64().ShouldBe(1);
        done.GetProperty("finishedAt").GetString().ShouldNotBeNull();
    }

    [Fact]
    public async Task A_retryable_failure_is_retried_with_a_new_attempt_and_fails_the_job_after_the_limit()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var first = (await Probe.NextUnitAsync(id)).Items.Single();
        await Probe.Bus.Publish(new ItemStarted(first.ItemId, id, 1, "worker-a", DateTimeOffset.UtcNow));
        await Probe.Bus.Publish(new ItemFailed(first.ItemId, id, 1, "worker-a", "CUDA out of memory", Retryable: true));

        var second = (await Probe.NextUnitAsync(id)).Items.Single();
        second.ItemId.ShouldBe(first.ItemId);
        second.Attempt.ShouldBe(2);
        await Probe.Bus.Publish(new ItemFailed(first.ItemId, id, 1, "worker-a", "stale report of attempt 1", Retryable: true));
        await Probe.Bus.Publish(new ItemStarted(second.ItemId, id, 2, "worker-b", DateTimeOffset.UtcNow));
        await Probe.Bus.Publish(new ItemFailed(second.ItemId, id, 2, "worker-b", "CUDA out of memory again", Retryable: true));

        var job = await Client.WaitForStateAsync(id, "Failed");
        job.GetProperty("progress").GetProperty("failed").GetInt64().ShouldBe(1);
        var error = job.GetProperty("errors").EnumerateArray().Single();
        error.GetProperty("error").GetString().ShouldBe("CUDA out of memory again");
        error.GetProperty("final").GetBoolean().ShouldBeTrue();
        error.GetProperty("attempt").GetInt32().ShouldBe(CoordinatorFactory.MaxAttempts);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(500))).ShouldBeFalse();
    }

    [Fact]
    public async Task A_permanent_failure_fails_the_item_without_retrying()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();

        await Probe.Bus.Publish(new ItemFailed(item.ItemId, id, 1, "worker-a", "model file is corrupt", Retryable: false));

        var job = await Client.WaitForStateAsync(id, "Failed");
        job.GetProperty("errors")[0].GetProperty("error").GetString().ShouldBe("model file is corrupt");
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(500))).ShouldBeFalse();
    }

    [Fact]
    public async Task The_rescuer_returns_an_item_whose_lease_lapsed_to_the_queue()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();
        await Probe.Bus.Publish(new ItemStarted(item.ItemId, id, 1, "worker-that-dies", DateTimeOffset.UtcNow));
        await Client.WaitForJobAsync(id, j => j.GetProperty("progress").GetProperty("running").GetInt64() == 1);

        // No heartbeat renews the lease: after LeaseDuration the rescuer retries the item as attempt 2.
        var again = (await Probe.NextUnitAsync(id, TimeSpan.FromSeconds(10))).Items.Single();

        again.ItemId.ShouldBe(item.ItemId);
        again.Attempt.ShouldBe(2);
        var job = await Client.GetJobAsync(id);
        job.GetProperty("progress").GetProperty("queued").GetInt64().ShouldBe(1);
        job.GetProperty("errors")[0].GetProperty("error").GetString()!.ShouldContain("worker-that-dies");
    }

    [Fact]
    public async Task Heartbeats_renew_the_lease_of_the_current_items()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();
        var worker = "worker-alive-" + Guid.NewGuid().ToString("N")[..6];
        await Probe.Bus.Publish(new ItemStarted(item.ItemId, id, 1, worker, DateTimeOffset.UtcNow));

        var until = DateTime.UtcNow + CoordinatorFactory.LeaseDuration * 2;
        while (DateTime.UtcNow < until)
        {
            await Probe.Bus.Publish(Heartbeat(worker, [item.ItemId]));
            await Task.Delay(400);
        }

        (await Client.GetJobAsync(id)).GetProperty("progress").GetProperty("running").GetInt64().ShouldBe(1);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(200))).ShouldBeFalse();
    }

    [Fact]
    public async Task A_worker_that_falls_silent_holding_a_unit_has_the_units_queued_items_placed_again()
    {
        var job = JobsClient.ValidJob("held by a hung worker");
        job["count"] = CoordinatorFactory.WorkUnitSize;
        var id = (await Client.SubmitAsync(job)).Id();
        var unit = await Probe.NextUnitAsync(id);
        unit.Items.Count.ShouldBe(CoordinatorFactory.WorkUnitSize);
        var first = unit.Items[0];
        var rest = unit.Items.Skip(1).Select(i => i.ItemId).ToHashSet();
        var worker = "worker-hung-" + Guid.NewGuid().ToString("N")[..6];
        await Probe.Bus.Publish(new ItemStarted(first.ItemId, id, 1, worker, DateTimeOffset.UtcNow));

        // While it heartbeats naming the whole unit, its queued items are not placed again.
        var until = DateTime.UtcNow + CoordinatorFactory.LeaseDuration * 2;
        while (DateTime.UtcNow < until)
        {
            await Probe.Bus.Publish(Heartbeat(worker, [.. unit.Items.Select(i => i.ItemId)]));
            await Task.Delay(300);
        }

        while (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(300)))
        {
            // Only the running item can come back here, and only if a loaded machine delayed a heartbeat past its lease;
            // the queued ones would mean a live worker's unit was taken from it.
        }

        (await QueryAsync(db => db.Items.Where(i => rest.Contains(i.Id)).Select(i => i.Attempt).ToListAsync())).ShouldAllBe(a => a == 1);

        // Silent (its broker connection, here the probe's, stays open): the running item is retried after its lease,
        // and the unit's queued items are placed again as a new attempt, once.
        var again = new List<RenderItem>();
        while (!rest.IsSubsetOf(again.Select(i => i.ItemId)))
        {
            again.AddRange((await Probe.NextUnitAsync(id, TimeSpan.FromSeconds(15))).Items);
        }

        again.Where(i => rest.Contains(i.ItemId)).ShouldAllBe(i => i.Attempt == 2);
        again.Where(i => rest.Contains(i.ItemId)).Select(i => i.ItemId).ShouldBeUnique();
        (await Client.GetJobAsync(id)).GetProperty("progress").GetProperty("queued").GetInt64().ShouldBeGreaterThanOrEqualTo(rest.Count);
    }

    [Fact]
    public async Task Cancel_cancels_unfinished_items_and_tells_the_workers()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 5;
        var id = (await Client.SubmitAsync(job)).Id();
        var units = await Probe.UnitsAsync(id, 5);
        var done = units[0].Items[0];
        await Probe.Bus.Publish(new ItemRendered(done.ItemId, id, 1, done.OutputKey, "worker-a", TimeSpan.Zero));
        await Client.WaitForJobAsync(id, j => j.GetProperty("progress").GetProperty("succeeded").GetInt64() == 1);

        using var response = await Client.PostAsync($"/v1/jobs/{id}/cancel?reason=changed+my+mind", null);

        response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var canceled = await Client.GetJobAsync(id);
        canceled.GetProperty("state").GetString().ShouldBe("Canceled");
        canceled.GetProperty("progress").GetProperty("canceled").GetInt64().ShouldBe(4);
        canceled.GetProperty("progress").GetProperty("succeeded").GetInt64().ShouldBe(1);
        canceled.GetProperty("cancelReason").GetString().ShouldBe("changed my mind");
        await Eventually(() => Probe.WasCanceled(id));

        // Reports that arrive after the cancel change nothing.
        var late = units[1].Items[0];
        await Probe.Bus.Publish(new ItemRendered(late.ItemId, id, 1, late.OutputKey, "worker-a", TimeSpan.Zero));
        await Task.Delay(300);
        (await Client.GetJobAsync(id)).GetProperty("progress").GetProperty("succeeded").GetInt64().ShouldBe(1);

        using var again = await Client.PostAsync($"/v1/jobs/{id}/cancel", null);
        again.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        using var unknown = await Client.PostAsync($"/v1/jobs/{Guid.NewGuid()}/cancel", null);
        unknown.StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_event_stream_reports_items_and_the_end_of_the_job()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{id}/events");
        using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("text/event-stream");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        (await NextEventAsync(reader)).ShouldBe("snapshot");

        var seen = new List<string>();
        await Probe.Bus.Publish(new ItemStarted(item.ItemId, id, 1, "worker-a", DateTimeOffset.UtcNow));
        await ReadUntilAsync(reader, "item-started", seen);
        await Probe.Bus.Publish(new ItemProgressed(item.ItemId, id, 1, 2, 4, null, DateTimeOffset.UtcNow));
        await ReadUntilAsync(reader, "item-progress", seen);
        await Probe.Bus.Publish(new ItemRendered(item.ItemId, id, 1, item.OutputKey, "worker-a", TimeSpan.Zero));
        while (seen[^1] != "job-done")
        {
            seen.Add(await NextEventAsync(reader));
        }

        seen.ShouldContain("item-started");
        seen.ShouldContain("item-progress");
        seen.ShouldContain("item-done");
        seen[^1].ShouldBe("job-done");
    }

    [Fact]
    public async Task A_preview_is_served_and_announced_while_its_item_runs_and_dropped_when_the_item_finishes()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{id}/events");
        using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        (await NextEventAsync(reader)).ShouldBe("snapshot");
        await Probe.Bus.Publish(new ItemStarted(item.ItemId, id, 1, "worker-a", DateTimeOffset.UtcNow));
        using (var before = await Client.GetAsync($"/v1/jobs/{id}/items/{item.Index}/preview"))
        {
            before.StatusCode.ShouldBe(HttpStatusCode.NotFound);
            before.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        }

        byte[] jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
        await Probe.Bus.Publish(new ItemPreviewed(item.ItemId, id, 1, item.Index, 3, 8, "image/jpeg", jpeg, 8, 8, DateTimeOffset.UtcNow));
        var preview = await NextEventOfTypeAsync(reader, "preview");
        preview.GetProperty("index").GetInt64().ShouldBe(item.Index);
        preview.GetProperty("itemId").GetGuid().ShouldBe(item.ItemId);
        preview.GetProperty("step").GetInt32().ShouldBe(3);
        preview.GetProperty("totalSteps").GetInt32().ShouldBe(8);
        preview.GetProperty("url").GetString().ShouldBe($"/v1/jobs/{id}/items/{item.Index}/preview?step=3");

        using (var served = await Client.GetAsync(preview.GetProperty("url").GetString()))
        {
            served.StatusCode.ShouldBe(HttpStatusCode.OK);
            served.Content.Headers.ContentType?.MediaType.ShouldBe("image/jpeg");
            served.Headers.GetValues("X-Preview-Step").Single().ShouldBe("3");
            served.Headers.CacheControl?.NoStore.ShouldBeTrue();
            (await served.Content.ReadAsByteArrayAsync()).ShouldBe(jpeg);
        }

        // An older step arriving late (the bus does not order them) does not replace a newer preview.
        await Probe.Bus.Publish(new ItemPreviewed(item.ItemId, id, 1, item.Index, 5, 8, "image/jpeg", [.. jpeg, 5], 8, 8, DateTimeOffset.UtcNow));
        await Probe.Bus.Publish(new ItemPreviewed(item.ItemId, id, 1, item.Index, 4, 8, "image/jpeg", [.. jpeg, 4], 8, 8, DateTimeOffset.UtcNow));
        (await NextEventOfTypeAsync(reader, "preview")).GetProperty("step").GetInt32().ShouldBe(5);
        await Eventually(async () =>
        {
            using var latest = await Client.GetAsync($"/v1/jobs/{id}/items/{item.Index}/preview");
            return latest.Headers.TryGetValues("X-Preview-Step", out var step) && step.Single() == "5";
        });

        await Probe.Bus.Publish(new ItemRendered(item.ItemId, id, 1, item.OutputKey, "worker-a", TimeSpan.Zero));
        await NextEventOfTypeAsync(reader, "job-done");
        using (var after = await Client.GetAsync($"/v1/jobs/{id}/items/{item.Index}/preview"))
        {
            after.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        }

        // A preview of the finished attempt that trails its completion is refused, not shown again.
        await Probe.Bus.Publish(new ItemPreviewed(item.ItemId, id, 1, item.Index, 7, 8, "image/jpeg", jpeg, 8, 8, DateTimeOffset.UtcNow));
        // Absence can only be checked after a pause; a consumer slower than this would let the check pass vacuously, never fail it.
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        using (var late = await Client.GetAsync($"/v1/jobs/{id}/items/{item.Index}/preview"))
        {
            late.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        }
    }

    [Fact]
    public async Task A_running_item_shows_the_step_count_its_worker_reports_not_the_requested_steps()
    {
        // img2img and hires tiles run steps × strength of the schedule; the view must not say "step 3 of 20" for a
        // 6-step render.
        var job20 = JobsClient.ValidJob();
        job20["steps"] = 20;
        var id = (await Client.SubmitAsync(job20)).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();
        await Probe.Bus.Publish(new ItemStarted(item.ItemId, id, 1, "worker-a", DateTimeOffset.UtcNow));
        await Client.WaitForJobAsync(id, j => j.GetProperty("progress").GetProperty("running").GetInt64() == 1);

        await Probe.Bus.Publish(new ItemProgressed(item.ItemId, id, 1, 3, 6, null, DateTimeOffset.UtcNow));
        var job = await Client.WaitForJobAsync(id, j => j.GetProperty("runningItems").EnumerateArray().Any(r => r.GetProperty("step").GetInt32() == 3));
        var running = job.GetProperty("runningItems").EnumerateArray().Single();
        (running.GetProperty("step").GetInt32(), running.GetProperty("totalSteps").GetInt32()).ShouldBe((3, 6));
    }

    [Fact]
    public async Task Workers_appear_after_a_heartbeat_and_make_jobs_eligible()
    {
        var worker = "worker-" + Guid.NewGuid().ToString("N")[..8];

        await Probe.Bus.Publish(Heartbeat(worker, []));

        JsonElement found = default;
        await Eventually(async () =>
        {
            using var response = await Client.GetAsync("/v1/workers");
            var workers = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            found = workers.EnumerateArray().FirstOrDefault(w => w.GetProperty("id").GetString() == worker);
            return found.ValueKind == JsonValueKind.Object;
        });
        found.GetProperty("host").GetString().ShouldBe("test-host");
        found.GetProperty("device").GetString().ShouldBe("NVIDIA Test GPU");
        found.GetProperty("memoryTotalBytes").GetInt64().ShouldBe(24L << 30);
        found.GetProperty("providers")[0].GetString().ShouldBe("CUDAExecutionProvider");
        found.GetProperty("loadedModels")[0].GetString().ShouldBe("tiny-sd");
        found.GetProperty("state").GetString().ShouldBe("Idle");
        found.GetProperty("live").GetBoolean().ShouldBeTrue();

        // Liveness lasts one (short, in tests) lease, so keep the worker heartbeating while the job is read.
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        JsonElement job = default;
        await Eventually(async () =>
        {
            await Probe.Bus.Publish(Heartbeat(worker, []));
            job = await Client.GetJobAsync(id);
            return job.GetProperty("eligibleWorkers").ValueKind == JsonValueKind.Number && job.GetProperty("eligibleWorkers").GetInt32() >= 1;
        });
        job.GetProperty("waitingReason").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task A_rendered_image_is_served_from_the_store()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();
        var store = fixture.Factory.Services.GetRequiredService<IArtifactStore>();
        using (var png = new MemoryStream(TestPng.Bytes))
        {
            await store.PutAsync(item.OutputKey, png, "image/png", CancellationToken.None);
        }

        using var before = await Client.GetAsync($"/v1/images/{id}/0");
        before.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        await Probe.Bus.Publish(new ItemRendered(item.ItemId, id, 1, item.OutputKey, "worker-a", TimeSpan.Zero));
        await Client.WaitForStateAsync(id, "Succeeded");

        using var response = await Client.GetAsync($"/v1/images/{id}/0");
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("image/png");
        (await response.Content.ReadAsByteArrayAsync()).ShouldBe(TestPng.Bytes);
    }

    [Fact]
    public async Task An_init_image_is_stored_and_its_key_travels_with_the_items()
    {
        var job = JobsClient.ValidJob();
        job["mode"] = "img2img";
        job["initImage"] = "data:image/png;base64," + TestPng.Base64;
        job["strength"] = 0.6;

        var id = (await Client.SubmitAsync(job)).Id();
        var item = (await Probe.NextUnitAsync(id)).Items.Single();

        item.InitImageKey.ShouldBe($"jobs/{id}/init.png");
        item.Strength.ShouldBe(0.6);
        var store = fixture.Factory.Services.GetRequiredService<IArtifactStore>();
        await using var stored = await store.OpenReadAsync(item.InitImageKey!, CancellationToken.None);
        using var copy = new MemoryStream();
        await stored.CopyToAsync(copy);
        copy.ToArray().ShouldBe(TestPng.Bytes);
    }

    [Fact]
    public async Task Jobs_are_listed_in_pages_and_filtered_by_state()
    {
        var canceledId = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        (await Client.PostAsync($"/v1/jobs/{canceledId}/cancel", null)).Dispose();
        await Client.SubmitAsync(JobsClient.ValidJob());

        using var response = await Client.GetAsync("/v1/jobs?state=Canceled&page=1&pageSize=500");
        var page = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        page.GetProperty("items").EnumerateArray().ShouldAllBe(j => j.GetProperty("state").GetString() == "Canceled");
        page.GetProperty("items").EnumerateArray().ShouldContain(j => j.GetProperty("id").GetGuid() == canceledId);

        using var small = await Client.GetAsync("/v1/jobs?pageSize=1");
        JsonDocument.Parse(await small.Content.ReadAsStringAsync()).RootElement.GetProperty("items").GetArrayLength().ShouldBe(1);
        using var bad = await Client.GetAsync("/v1/jobs?state=Sleeping");
        bad.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task The_openapi_document_and_scalar_page_are_served()
    {
        using var document = await Client.GetAsync("/openapi/v1.json");
        document.StatusCode.ShouldBe(HttpStatusCode.OK);
        var text = await document.Content.ReadAsStringAsync();
        text.ShouldContain("CreateJob");
        text.ShouldContain("/v1/jobs/{id}/events");
        using var scalar = await Client.GetAsync("/scalar/");
        scalar.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    private static WorkerHeartbeat Heartbeat(string worker, IReadOnlyList<Guid> current) => new(
        worker, "test-host", "NVIDIA Test GPU", 24L << 30, 20L << 30, 16L << 30,
        ["CUDAExecutionProvider", "CPUExecutionProvider"], ["tiny-sd"], current,
        current.Count > 0 ? WorkerState.Busy : WorkerState.Idle, "full", PlacementProperties.DefaultPool, DateTimeOffset.UtcNow);

    private static async Task ReadUntilAsync(StreamReader reader, string eventType, List<string> seen)
    {
        do
        {
            seen.Add(await NextEventAsync(reader));
        }
        while (seen[^1] != eventType);
    }

    /// <summary>Reads events until one of <paramref name="eventType"/> and returns its data.</summary>
    private static async Task<JsonElement> NextEventOfTypeAsync(StreamReader reader, string eventType)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string? current = null;
        while (true)
        {
            var line = await reader.ReadLineAsync(cts.Token) ?? throw new EndOfStreamException("The event stream ended.");
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                current = line["event: ".Length..];
            }
            else if (current == eventType && line.StartsWith("data: ", StringComparison.Ordinal))
            {
                return JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone();
            }
        }
    }

    private static async Task<string> NextEventAsync(StreamReader reader)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            var line = await reader.ReadLineAsync(cts.Token) ?? throw new EndOfStreamException("The event stream ended.");
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                return line["event: ".Length..];
            }
        }
    }

    private static Task Eventually(Func<bool> condition) => Eventually(() => Task.FromResult(condition()));

    private static async Task Eventually(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("The condition did not become true in time.");
            }

            await Task.Delay(50);
        }
    }

    private Task<T> QueryAsync<T>(Func<CoordinatorDbContext, Task<T>> query) => fixture.QueryAsync(query);

    private Task<int> CountAsync(Func<CoordinatorDbContext, Task<int>> query) => QueryAsync(query);

    /// <summary>Writes everything a submission writes, then fails before the commit.</summary>
    private sealed class FailAfterOutboxDialect(IDatabaseDialect inner) : IDatabaseDialect
    {
        public Task WriteItemsAsync(CoordinatorDbContext db, IReadOnlyList<ItemRow> items, CancellationToken cancellationToken) =>
            inner.WriteItemsAsync(db, items, cancellationToken);

        public async Task WriteOutboxAsync(CoordinatorDbContext db, IReadOnlyList<OutboxRow> rows, CancellationToken cancellationToken)
        {
            await inner.WriteOutboxAsync(db, rows, cancellationToken);
            if (rows.Any(r => r.Kind == OutboxKind.WorkUnit))
            {
                throw new InvalidOperationException("Injected failure after the outbox rows were written.");
            }
        }

        public Task<List<OutboxRow>> ClaimEventsAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken) =>
            inner.ClaimEventsAsync(db, now, limit, cancellationToken);

        public Task<List<long>> ClaimOutboxRowsAsync(CoordinatorDbContext db, IReadOnlyList<long> ids, CancellationToken cancellationToken) =>
            inner.ClaimOutboxRowsAsync(db, ids, cancellationToken);

        public Task<bool> TryLockDispatchAsync(CoordinatorDbContext db, CancellationToken cancellationToken) =>
            inner.TryLockDispatchAsync(db, cancellationToken);

        public Task<List<OutboxCandidate>> ReadDueUnitsAsync(CoordinatorDbContext db, DateTime now, int perJob, CancellationToken cancellationToken) =>
            inner.ReadDueUnitsAsync(db, now, perJob, cancellationToken);

        public Task<List<ItemRow>> LockLapsedLeasesAsync(CoordinatorDbContext db, DateTime heartbeatBefore, int limit, CancellationToken cancellationToken) =>
            inner.LockLapsedLeasesAsync(db, heartbeatBefore, limit, cancellationToken);

        public Task<List<ItemRow>> LockDueRetriesAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken) =>
            inner.LockDueRetriesAsync(db, now, limit, cancellationToken);

        public Task LockUnfinishedItemsAsync(CoordinatorDbContext db, Guid jobId, CancellationToken cancellationToken) =>
            inner.LockUnfinishedItemsAsync(db, jobId, cancellationToken);

        public Microsoft.EntityFrameworkCore.Storage.IExecutionStrategy RetryOnConflict(CoordinatorDbContext db) => inner.RetryOnConflict(db);
    }
}

/// <summary>The behaviour on the real PostgreSQL (<c>deploy/local/services start</c>).</summary>
public sealed class PostgresCoordinatorTests(PostgresCoordinatorFixture fixture)
    : CoordinatorBehaviourTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>The same behaviour on embedded SQLite, as <c>renderfarm serve</c> runs it.</summary>
public sealed class SqliteCoordinatorTests(SqliteCoordinatorFixture fixture)
    : CoordinatorBehaviourTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
