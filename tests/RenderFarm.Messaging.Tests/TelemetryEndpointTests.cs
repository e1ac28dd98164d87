using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using RenderFarm.Telemetry;

namespace RenderFarm.Messaging.Tests;

public sealed class TelemetryEndpointTests
{
    [Fact]
    public async Task A_host_with_the_farm_defaults_answers_alive_health_and_metrics()
    {
        // xunit 2 has no ambient test token; a bounded one keeps a hung endpoint from hanging the run.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var ct = timeout.Token;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.AddRenderFarmTelemetry("renderfarm-test");
        builder.AddRenderFarmHealthChecks();
        await using var app = builder.Build();
        app.MapRenderFarmHealth();
        await app.StartAsync(ct);
        using var client = app.GetTestClient();

        RenderFarmDiagnostics.WorkerMeter.CreateCounter<long>("renderfarm.test.ticks").Add(1);

        using var alive = await client.GetAsync("/alive", ct);
        using var health = await client.GetAsync("/health", ct);
        using var metrics = await client.GetAsync("/metrics", ct);

        alive.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await alive.Content.ReadAsStringAsync(ct)).ShouldBe("Healthy");
        health.StatusCode.ShouldBe(HttpStatusCode.OK);
        metrics.StatusCode.ShouldBe(HttpStatusCode.OK);
        metrics.Content.Headers.ContentType!.MediaType.ShouldBe("text/plain");
        (await metrics.Content.ReadAsStringAsync(ct)).ShouldContain("renderfarm_test_ticks");
    }
}
