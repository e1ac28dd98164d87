using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Tests.Infrastructure;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// A coordinator with small limits: each key's token bucket (3 requests, then one a minute) answers 429 with
/// Retry-After; a tenant's waiting items (at most 5), its image size (at most 1024²) and its unfinished hires jobs
/// (at most 1) refuse a submission that would pass them.
/// </summary>
public sealed class LimitsTests(LimitsTests.Fixture fixture) : IClassFixture<LimitsTests.Fixture>
{
    [Fact]
    public async Task A_key_past_its_rate_limit_gets_429_with_retry_after_and_other_keys_do_not()
    {
        using var busy = await ClientAsync("rate-a", FarmRole.Viewer);
        using var other = await ClientAsync("rate-b", FarmRole.Viewer);
        for (var i = 0; i < 3; i++)
        {
            (await busy.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        using var refused = await busy.GetAsync("/v1/jobs");
        refused.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        refused.Headers.RetryAfter?.Delta.ShouldNotBeNull();
        refused.Headers.RetryAfter!.Delta!.Value.ShouldBeGreaterThan(TimeSpan.Zero);
        refused.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");

        (await other.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.OK);
        // Probes carry no key, and are not limited.
        (await fixture.Client.GetAsync("/alive")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_submission_past_the_tenants_quota_of_waiting_items_is_refused_naming_the_quota()
    {
        using var first = await ClientAsync("quota-a", FarmRole.Submitter);
        using var second = await ClientAsync("quota-b", FarmRole.Submitter);
        var job = JobsClient.ValidJob("counts against the quota");
        job["count"] = 4;
        (await first.PostAsJsonAsync("/v1/jobs", job)).StatusCode.ShouldBe(HttpStatusCode.Accepted);

        job["count"] = 2;
        using var refused = await first.PostAsJsonAsync("/v1/jobs", job);
        refused.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        using var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        (problem.RootElement.GetProperty("title").GetString() ?? "").ShouldContain("MaxQueuedItemsPerTenant");
        problem.RootElement.GetProperty("quota").GetString().ShouldBe("MaxQueuedItemsPerTenant");
        problem.RootElement.GetProperty("current").GetInt64().ShouldBe(4);

        // Another tenant has its own quota.
        (await second.PostAsJsonAsync("/v1/jobs", job)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task An_image_larger_than_the_tenants_quota_is_refused_for_good_naming_the_quota()
    {
        using var client = await ClientAsync("pixels-a", FarmRole.Submitter);
        var job = JobsClient.ValidJob("too large for this tenant");
        job["width"] = 1088;
        job["height"] = 1024;

        using var refused = await client.PostAsJsonAsync("/v1/jobs", job);

        // Waiting would not help: 403, not 429.
        refused.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        refused.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        using var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        problem.RootElement.GetProperty("quota").GetString().ShouldBe("MaxImagePixelsPerTenant");
        problem.RootElement.GetProperty("limit").GetInt64().ShouldBe(1024 * 1024);
        job["width"] = 1024;
        (await client.PostAsJsonAsync("/v1/jobs", job)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task A_second_unfinished_hires_job_of_a_tenant_is_refused_until_the_first_ends()
    {
        using var client = await ClientAsync("hires-a", FarmRole.Submitter);
        var hires = JobsClient.ValidJob("one large image at a time");
        hires["mode"] = "hires";
        hires["width"] = 1024;
        hires["height"] = 768;
        hires["tile"] = 512;
        hires["overlap"] = 64;
        using var first = await client.PostAsJsonAsync("/v1/jobs", hires);
        first.StatusCode.ShouldBe(HttpStatusCode.Accepted, await first.Content.ReadAsStringAsync());

        using var refused = await client.PostAsJsonAsync("/v1/jobs", hires);
        refused.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        using (var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()))
        {
            problem.RootElement.GetProperty("quota").GetString().ShouldBe("MaxConcurrentHiresJobsPerTenant");
            problem.RootElement.GetProperty("current").GetInt64().ShouldBe(1);
        }

        // Once the first is canceled (it ends), the next is taken.
        var id = JsonDocument.Parse(await first.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
        using var operatorClient = await ClientAsync("hires-ops", FarmRole.Operator);
        (await operatorClient.PostAsync($"/v1/jobs/{id}/cancel", null)).IsSuccessStatusCode.ShouldBeTrue();
        (await client.PostAsJsonAsync("/v1/jobs", hires)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
    }

    private async Task<HttpClient> ClientAsync(string tenant, FarmRole role)
    {
        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var key = await scope.ServiceProvider.GetRequiredService<ApiKeys>().CreateAsync(tenant, role, CancellationToken.None);
        var client = fixture.Factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key.Key);
        return client;
    }

    /// <summary>Keys required, a bucket of 3 requests refilled by one a minute, and 5 waiting items per tenant.</summary>
    public sealed class Fixture : SqliteCoordinatorFixture
    {
        protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
        {
            ["Coordinator:Auth:RequireApiKeys"] = "true",
            ["Coordinator:Auth:MaxQueuedItemsPerTenant"] = "5",
            ["Coordinator:Auth:MaxImagePixelsPerTenant"] = (1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Coordinator:Auth:MaxConcurrentHiresJobsPerTenant"] = "1",
            ["Coordinator:Auth:RateLimit:Burst"] = "3",
            ["Coordinator:Auth:RateLimit:PerPeriod"] = "1",
            ["Coordinator:Auth:RateLimit:Period"] = "00:01:00",
        };
    }
}
