using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Tests.Infrastructure;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// A coordinator with <c>Coordinator:Auth:RequireApiKeys</c> on: every route but the probes, metrics and the API's
/// description needs a key; roles allow what the README says; tenants see only their own jobs (404 otherwise).
/// </summary>
public abstract class AuthTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    /// <summary>The routes that answer without a key, and why they may: probes, scrapes and the API's description.</summary>
    private static readonly HashSet<string> OpenRoutes = new(StringComparer.Ordinal)
    {
        "/health", "/alive", "/metrics", "/openapi/{documentName}.json",
    };

    private HttpClient Anonymous => fixture.Client;

    [Fact]
    public async Task Every_route_but_probes_metrics_and_the_api_description_answers_401_without_a_key()
    {
        var endpoints = fixture.Factory.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();
        endpoints.Count.ShouldBeGreaterThan(30);
        var anonymous = endpoints.Where(e => e.Metadata.GetMetadata<IAllowAnonymous>() is not null)
            .Select(e => e.RoutePattern.RawText ?? "").ToHashSet(StringComparer.Ordinal);
        // Scalar's page and its script and icon files are the API's description too.
        anonymous.Where(route => !route.StartsWith("/scalar/", StringComparison.Ordinal)).ShouldBeSubsetOf(OpenRoutes);
        anonymous.ShouldContain("/metrics");

        var checkedRoutes = 0;
        foreach (var endpoint in endpoints.Where(e => e.Metadata.GetMetadata<IAllowAnonymous>() is null))
        {
            foreach (var method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
            {
                var url = UrlOf(endpoint.RoutePattern);
                using var request = new HttpRequestMessage(new HttpMethod(method), url);
                if (method is "POST" or "PUT")
                {
                    request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
                }

                using var response = await Anonymous.SendAsync(request);
                response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized, $"{method} {url} ({endpoint.RoutePattern.RawText})");
                response.Headers.WwwAuthenticate.Select(h => h.Scheme).ShouldContain("Bearer");
                response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
                checkedRoutes++;
            }
        }

        checkedRoutes.ShouldBeGreaterThan(25);
        using (var dashboard = await Anonymous.GetAsync("/dashboard/"))
        {
            dashboard.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
            dashboard.Headers.WwwAuthenticate.Select(h => h.Scheme).ShouldContain("Basic");
        }

        using (var alive = await Anonymous.GetAsync("/alive"))
        {
            alive.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        using var metrics = await Anonymous.GetAsync("/metrics");
        metrics.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_wrong_malformed_or_revoked_key_is_refused()
    {
        var key = await CreateKeyAsync("acme", FarmRole.Viewer);
        using var client = ClientWith(key.Key);
        (await client.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // The right id with another secret, a bare word, and an unknown scheme.
        var forged = key.Key[..^4] + (key.Key.EndsWith("AAAA", StringComparison.Ordinal) ? "BBBB" : "AAAA");
        foreach (var header in new[] { $"Bearer {forged}", "Bearer letmein", $"Token {key.Key}" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/jobs");
            request.Headers.TryAddWithoutValidation("Authorization", header);
            using var response = await Anonymous.SendAsync(request);
            response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized, header);
        }

        await using (var scope = fixture.Factory.Services.CreateAsyncScope())
        {
            (await scope.ServiceProvider.GetRequiredService<ApiKeys>().RevokeAsync(key.Id, CancellationToken.None)).ShouldBeTrue();
        }

        using var revoked = await client.GetAsync("/v1/jobs");
        revoked.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await revoked.Content.ReadAsStringAsync()).ShouldContain("revoked");
    }

    [Fact]
    public async Task A_key_is_stored_only_as_its_hash()
    {
        var key = await CreateKeyAsync("hashed", FarmRole.Submitter);
        key.Key.ShouldStartWith($"{ApiKeys.Prefix}{key.Id}_");
        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var row = await db.ApiKeys.AsNoTracking().SingleAsync(k => k.Id == key.Id);
        row.SecretHash.ShouldBe(SHA256.HashData(Encoding.UTF8.GetBytes(key.Key)));

        // Every column as the database returns it: none holds the secret.
        var secret = key.Key[(ApiKeys.Prefix.Length + ApiKeyRow.IdLength + 1)..];
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT * FROM api_keys";
        await using var reader = await command.ExecuteReaderAsync();
        var rows = 0;
        while (await reader.ReadAsync())
        {
            rows++;
            for (var i = 0; i < reader.FieldCount; i++)
            {
                var value = reader.GetValue(i);
                var text = value is byte[] bytes ? Encoding.UTF8.GetString(bytes) + Convert.ToBase64String(bytes) : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                text.ShouldNotContain(secret);
            }
        }

        rows.ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Each_role_may_do_what_it_is_for_and_is_refused_the_rest()
    {
        using var viewer = ClientWith((await CreateKeyAsync("roles", FarmRole.Viewer)).Key);
        using var submitter = ClientWith((await CreateKeyAsync("roles", FarmRole.Submitter)).Key);
        using var operatorClient = ClientWith((await CreateKeyAsync("ops", FarmRole.Operator)).Key);
        using var admin = ClientWith((await CreateKeyAsync("ops", FarmRole.Admin)).Key);

        var job = (await submitter.SubmitAsync(JobsClient.ValidJob("a submitter's job"))).Id();

        // Viewers read everything, the fleet included, and act on nothing.
        (await viewer.GetAsync($"/v1/jobs/{job}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await viewer.GetAsync("/v1/workers")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await viewer.GetAsync("/v1/monitoring/fleet")).StatusCode.ShouldBe(HttpStatusCode.OK);
        await ShouldBeForbiddenAsync(await viewer.PostAsJsonAsync("/v1/jobs", JobsClient.ValidJob()));
        await ShouldBeForbiddenAsync(await viewer.PostAsync($"/v1/jobs/{job}/cancel", null));
        await ShouldBeForbiddenAsync(await viewer.DeleteAsync($"/v1/jobs/{job}"));
        await ShouldBeForbiddenAsync(await viewer.PostAsJsonAsync("/sdapi/v1/txt2img", new { prompt = "x" }));

        // Submitters do not see the fleet nor change farm-wide settings.
        await ShouldBeForbiddenAsync(await submitter.GetAsync("/v1/workers"));
        await ShouldBeForbiddenAsync(await submitter.GetAsync("/v1/monitoring/queues"));
        await ShouldBeForbiddenAsync(await submitter.GetAsync("/v1/dead-letters"));
        await ShouldBeForbiddenAsync(await submitter.PostAsJsonAsync("/sdapi/v1/options", new { sd_model_checkpoint = "sd15" }));
        (await submitter.GetAsync("/sdapi/v1/sd-models")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // Operators see the fleet and act on any tenant's job.
        (await operatorClient.GetAsync("/v1/monitoring/queues")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await operatorClient.GetAsync($"/v1/jobs/{job}")).StatusCode.ShouldBe(HttpStatusCode.OK);
        using (var canceled = await operatorClient.PostAsync($"/v1/jobs/{job}/cancel", null))
        {
            canceled.StatusCode.ShouldBe(HttpStatusCode.Accepted, await canceled.Content.ReadAsStringAsync());
        }

        (await admin.DeleteAsync($"/v1/jobs/{job}")).StatusCode.ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Another_tenants_jobs_images_and_manifests_answer_404_and_are_not_listed()
    {
        using var alice = ClientWith((await CreateKeyAsync("alice-co", FarmRole.Submitter)).Key);
        using var bob = ClientWith((await CreateKeyAsync("bob-co", FarmRole.Submitter)).Key);
        using var viewer = ClientWith((await CreateKeyAsync("audit", FarmRole.Viewer)).Key);

        var idempotencyKey = Guid.NewGuid().ToString();
        var aliceJob = (await alice.SubmitAsync(JobsClient.ValidJob("alice's secret prompt"), idempotencyKey)).Id();
        (await alice.GetAsync($"/v1/jobs/{aliceJob}")).StatusCode.ShouldBe(HttpStatusCode.OK);

        foreach (var (method, path) in new[]
        {
            ("GET", $"/v1/jobs/{aliceJob}"), ("GET", $"/v1/jobs/{aliceJob}/items"), ("GET", $"/v1/jobs/{aliceJob}/waiting"),
            ("GET", $"/v1/jobs/{aliceJob}/events"), ("GET", $"/v1/jobs/{aliceJob}/manifest"), ("GET", $"/v1/jobs/{aliceJob}/items/0/preview"),
            ("GET", $"/v1/images/{aliceJob}/0"), ("POST", $"/v1/jobs/{aliceJob}/cancel"), ("POST", $"/v1/jobs/{aliceJob}/retry"),
            ("DELETE", $"/v1/jobs/{aliceJob}"),
        })
        {
            using var response = await bob.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
            response.StatusCode.ShouldBe(HttpStatusCode.NotFound, $"{method} {path}");
            (await response.Content.ReadAsStringAsync()).ShouldNotContain("alice");
        }

        (await ListedAsync(bob)).ShouldNotContain(aliceJob);
        (await ListedAsync(alice)).ShouldContain(aliceJob);
        (await ListedAsync(viewer)).ShouldContain(aliceJob);
        (await viewer.GetAsync($"/v1/jobs/{aliceJob}")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // The same Idempotency-Key from another tenant makes that tenant's own job.
        var bobJob = (await bob.SubmitAsync(JobsClient.ValidJob("bob's prompt"), idempotencyKey)).Id();
        bobJob.ShouldNotBe(aliceJob);
        (await alice.SubmitAsync(JobsClient.ValidJob("alice's secret prompt"), idempotencyKey)).Id().ShouldBe(aliceJob);

        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        (await db.Jobs.AsNoTracking().Where(j => j.Id == aliceJob || j.Id == bobJob).ToDictionaryAsync(j => j.Id, j => j.Tenant))
            .ShouldBe(new Dictionary<Guid, string> { [aliceJob] = "alice-co", [bobJob] = "bob-co" }, ignoreOrder: true);
    }

    [Fact]
    public async Task Basic_auth_with_the_key_as_password_works_for_automatic1111_clients()
    {
        var key = await CreateKeyAsync("a1111", FarmRole.Submitter);
        using var client = fixture.Factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"anyone:{key.Key}")));
        (await client.GetAsync("/sdapi/v1/sd-models")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await client.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.OK);

        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("anyone:not-a-key")));
        (await client.GetAsync("/sdapi/v1/sd-models")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    private static async Task ShouldBeForbiddenAsync(HttpResponseMessage response)
    {
        using (response)
        {
            response.StatusCode.ShouldBe(HttpStatusCode.Forbidden, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}");
            response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        }
    }

    private static async Task<List<Guid>> ListedAsync(HttpClient client)
    {
        using var document = JsonDocument.Parse(await client.GetStringAsync("/v1/jobs?pageSize=500"));
        return [.. document.RootElement.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetGuid())];
    }

    private async Task<CreatedApiKey> CreateKeyAsync(string tenant, FarmRole role)
    {
        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ApiKeys>().CreateAsync(tenant, role, CancellationToken.None);
    }

    private HttpClient ClientWith(string key)
    {
        var client = fixture.Factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    // A concrete URL for a route pattern: ids are fresh UUIDs, numbers 0, other values a word.
    private static string UrlOf(RoutePattern pattern) => RoutePaths.Fill(pattern, parameter => parameter switch
    {
        _ when RoutePaths.IsGuid(parameter) => Guid.NewGuid().ToString(),
        _ when RoutePaths.IsInteger(parameter) => "0",
        { IsOptional: true } => "",
        _ => "render",
    });
}

/// <summary>A coordinator that requires API keys, on PostgreSQL.</summary>
public sealed class PostgresAuthFixture : PostgresCoordinatorFixture
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?> { ["Coordinator:Auth:RequireApiKeys"] = "true" };
}

/// <summary>A coordinator that requires API keys, on SQLite.</summary>
public sealed class SqliteAuthFixture : SqliteCoordinatorFixture
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?> { ["Coordinator:Auth:RequireApiKeys"] = "true" };
}

/// <summary>Keys, roles and tenants on the real PostgreSQL.</summary>
public sealed class PostgresAuthTests(PostgresAuthFixture fixture)
    : AuthTests<PostgresAuthFixture>(fixture), IClassFixture<PostgresAuthFixture>;

/// <summary>Keys, roles and tenants on embedded SQLite.</summary>
public sealed class SqliteAuthTests(SqliteAuthFixture fixture)
    : AuthTests<SqliteAuthFixture>(fixture), IClassFixture<SqliteAuthFixture>;
