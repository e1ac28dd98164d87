using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using RenderFarm.Storage;
using RenderFarm.Telemetry;
using RenderFarm.Worker.Heartbeats;
using RenderFarm.Worker.Outages;
using RenderFarm.Worker.Rendering;
using RenderFarm.Worker.Slots;
using RenderFarm.Worker.Telemetry;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// Meters are found by name process-wide: every host's OpenTelemetry provider also sees the <c>RenderFarm.Worker</c>
/// instruments of other tests' hosts, and a host disposed meanwhile took this host's series out of its scrape (CI).
/// These tests run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideMetersCollection
{
    public const string Name = "Process-wide meters";
}

/// <summary>
/// The worker's gauges as Prometheus sees them, up to the hardware boundary: a GPU reading in NVML's units (this
/// machine has no card) must come out as the series the shipped Grafana dashboard queries.
/// </summary>
[Collection(ProcessWideMetersCollection.Name)]
public sealed partial class WorkerMetricsTests
{
    [Fact]
    public async Task A_gpu_reading_in_NVML_units_is_exported_as_the_series_the_dashboard_queries()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var ct = timeout.Token;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.AddRenderFarmTelemetry("renderfarm-worker-test");
        builder.AddRenderFarmHealthChecks();
        builder.Services.AddSingleton<WorkerMetrics>();
        await using var app = builder.Build();
        app.MapRenderFarmHealth();
        await app.StartAsync(ct);
        var worker = "gpu-test-" + Guid.NewGuid().ToString("N")[..8];

        app.Services.GetRequiredService<WorkerMetrics>().Observe(worker,
            new DeviceReport("NVIDIA H100", MemoryTotalBytes: 80L << 30, MemoryFreeBytes: 70L << 30), budgetBytes: 60L << 30,
            GpuReading.FromNvml(utilizationPercent: 55, temperatureCelsius: 61, powerMilliwatts: 312_500));
        using var client = app.GetTestClient();
        var metrics = await client.GetStringAsync("/metrics", ct);

        Value(metrics, "renderfarm_worker_gpu_utilization", worker).ShouldBe(0.55, 1e-9);
        Value(metrics, "renderfarm_worker_gpu_temperature_celsius", worker).ShouldBe(61);
        Value(metrics, "renderfarm_worker_gpu_power_watts", worker).ShouldBe(312.5, 1e-9);
        Value(metrics, "renderfarm_worker_memory_total_bytes", worker).ShouldBe(80L << 30);
        Value(metrics, "renderfarm_worker_memory_free_bytes", worker).ShouldBe(70L << 30);
        Value(metrics, "renderfarm_worker_memory_budget_bytes", worker).ShouldBe(60L << 30);

        // Every worker series the dashboard names exists under that exact name.
        var dashboard = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "deploy", "renderfarm.json"));
        var named = SeriesName().Matches(dashboard).Select(m => m.Value)
            .Where(n => n.StartsWith("renderfarm_worker_gpu_", StringComparison.Ordinal) || n.StartsWith("renderfarm_worker_memory_", StringComparison.Ordinal))
            .Distinct().ToList();
        named.Count.ShouldBe(6);
        named.ShouldAllBe(name => metrics.Contains(name + "{", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_store_outage_shows_as_seconds_unreachable_and_as_a_degraded_health_until_the_store_answers()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var ct = timeout.Token;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.AddRenderFarmTelemetry("renderfarm-worker-test");
        // Other tests' hosts in this process export the same instruments: the worker id tells this one's series apart.
        var worker = "store-test-" + Guid.NewGuid().ToString("N")[..8];
        builder.Services.Configure<WorkerOptions>(o =>
        {
            o.Renderer = ItemRendererKind.Null;
            o.Id = worker;
        });
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<StoreOutage>();
        builder.Services.AddSingleton<WorkerMetrics>();
        builder.Services.AddSingleton(sp => new WorkerSlotPool(sp.GetRequiredService<IOptions<WorkerOptions>>(), () => new NullItemRenderer()));
        builder.Services.AddSingleton<WorkerLifecycle>();
        builder.AddRenderFarmHealthChecks().AddCheck<WorkerHealthCheck>(WorkerHealthCheck.Name);
        await using var app = builder.Build();
        app.MapRenderFarmHealth();
        await app.StartAsync(ct);
        _ = app.Services.GetRequiredService<WorkerMetrics>();
        foreach (var slot in app.Services.GetRequiredService<WorkerSlotPool>().Slots)
            slot.MarkReady();
        using var client = app.GetTestClient();
        (await client.GetAsync("/health", ct)).StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
        Unreachable(await client.GetStringAsync("/metrics", ct), worker).ShouldBe(0);

        // An upload that waits out the store: it fails as unreachable until the store answers again.
        var answers = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var upload = app.Services.GetRequiredService<StoreOutage>().ExecuteAsync(_ => answers.Task.IsCompleted
            ? ValueTask.CompletedTask
            : throw new ArtifactStoreException("connection refused", new HttpRequestException("refused")) { Unreachable = true }, ct);
        await Task.Delay(TimeSpan.FromSeconds(1.5), ct);

        Unreachable(await client.GetStringAsync("/metrics", ct), worker).ShouldBeGreaterThan(0.5);
        (await client.GetStringAsync("/health", ct)).ShouldBe("Degraded");
        var report = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(ct);
        report.Entries[WorkerHealthCheck.Name].Description!.ShouldContain("object store cannot be reached");

        answers.SetResult();
        await upload;
        // The exporter caches a scrape for a moment, so the first one after the upload may still show the outage.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Unreachable(await client.GetStringAsync("/metrics", ct), worker) > 0)
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, "the gauge stayed above 0 after the store answered");
            await Task.Delay(100, ct);
        }

        (await client.GetStringAsync("/health", ct)).ShouldBe("Healthy");
    }

    private static double Unreachable(string metrics, string worker) => Value(metrics, "renderfarm_worker_store_unreachable_seconds", worker);

    [Fact]
    public void A_reading_NVML_refused_is_left_out_rather_than_reported_as_zero()
    {
        var reading = GpuReading.FromNvml(utilizationPercent: null, temperatureCelsius: 40, powerMilliwatts: null);
        reading.Utilization.ShouldBeNull();
        reading.PowerWatts.ShouldBeNull();
        reading.TemperatureCelsius.ShouldBe(40);
    }

    private static double Value(string metrics, string series, string worker)
    {
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(series + "{", StringComparison.Ordinal) && l.Contains($"renderfarm_worker=\"{worker}\"", StringComparison.Ordinal));
        line.ShouldNotBeNull($"{series} for {worker} is not in /metrics:\n{metrics}");
        return double.Parse(line[(line.LastIndexOf('}') + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    [GeneratedRegex("renderfarm_[a-z_]+")]
    private static partial Regex SeriesName();
}
