using System.Text.Json;
using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

/// <summary>
/// The shipped Grafana dashboard against a real farm and a real Prometheus: every PromQL query in
/// <c>deploy/grafana/dashboards/renderfarm.json</c> (read from the file, so it cannot drift) must return data.
/// </summary>
public sealed class PrometheusDashboardTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    // Grafana's own macros, as Grafana would expand them for a 1 s scrape interval; anything else left with a '$' fails.
    private static readonly IReadOnlyDictionary<string, string> GrafanaMacros = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["$__rate_interval"] = "1m",
    };

    // Series only a worker with NVML exports; on a machine without an NVIDIA GPU their queries must still parse and run.
    private const string GpuSeries = "renderfarm_worker_gpu_";

    [Fact]
    public async Task Every_query_of_the_shipped_Grafana_dashboard_returns_data_from_a_real_Prometheus_scraping_a_coordinator_and_a_worker()
    {
        File.Exists(PrometheusServer.Binary).ShouldBeTrue($"{PrometheusServer.Binary} is missing: apt-get install -y prometheus");
        var queries = DashboardQueries(Path.Combine(AppContext.BaseDirectory, "deploy", "renderfarm.json"));
        queries.Count.ShouldBeGreaterThan(10);

        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        await using var farm = new Farm(environment, output, new Dictionary<string, string>
        {
            ["Coordinator__Metrics__RefreshInterval"] = "00:00:01",
        });
        await farm.StartCoordinatorAsync(ct);
        var workerPort = Farm.FreePort();
        await farm.StartWorkerAsync("it-prom", ct, new Dictionary<string, string> { ["Worker__Urls"] = $"http://127.0.0.1:{workerPort}" });

        using var worker = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{workerPort}/"), Timeout = TimeSpan.FromSeconds(15) };
        (await worker.GetStringAsync("alive", ct)).ShouldBe("Healthy");

        await using var prometheus = PrometheusServer.Start(new Dictionary<string, string>
        {
            ["renderfarm-coordinator"] = farm.Client.BaseAddress!.Authority,
            ["renderfarm-worker"] = $"127.0.0.1:{workerPort}",
        });
        try
        {
            await WaitAsync("both targets up", () => prometheus.AllTargetsUpAsync(2, ct), ct);

            // Submitted after scraping began, so counters and histograms move while Prometheus watches.
            var jobId = await farm.SubmitAsync(Farm.Job(count: 2, steps: 2), ct);
            var job = await farm.WaitForJobAsync(jobId, Farm.IsFinal, TimeSpan.FromSeconds(90), ct);
            Farm.State(job).ShouldBe("Succeeded", job.ToString());

            var workerMetrics = await worker.GetStringAsync("metrics", ct);
            var hasGpu = workerMetrics.Contains(GpuSeries, StringComparison.Ordinal);
            var missing = queries.ToList();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var still = new List<string>();
                foreach (var query in missing)
                {
                    var (success, result, body) = await prometheus.QueryAsync(query, ct);
                    success.ShouldBeTrue($"Prometheus refused a dashboard query: {query}\n{body}");
                    var required = hasGpu || !query.Contains(GpuSeries, StringComparison.Ordinal);
                    if (required && result.GetArrayLength() == 0)
                        still.Add(query);
                }

                missing = still;
                if (missing.Count == 0 || DateTime.UtcNow > deadline)
                    break;
                await Task.Delay(1000, ct);
            }

            if (!hasGpu)
                output.WriteLine($"No NVML on this machine: the {queries.Count(q => q.Contains(GpuSeries, StringComparison.Ordinal))} GPU queries ran but were not required to return data.");
            missing.ShouldBeEmpty(
                "dashboard queries without data:\n" + string.Join("\n", missing)
                + "\n--- coordinator renderfarm_* ---\n" + RenderFarmLines(await farm.Client.GetStringAsync("metrics", ct))
                + "\n--- worker renderfarm_* ---\n" + RenderFarmLines(workerMetrics));

            // The values, not only their presence: this class's database and worker saw exactly this one job.
            var expected = new Dictionary<string, double>(StringComparer.Ordinal)
            {
                ["sum(renderfarm_items{renderfarm_state=\"Succeeded\"})"] = 2,
                ["sum(renderfarm_items{renderfarm_state=\"Queued\"})"] = 0,
                ["sum(renderfarm_jobs{renderfarm_state=\"Succeeded\"})"] = 1,
                ["sum(renderfarm_items_completed_total)"] = 2,
                ["sum(renderfarm_items_failed_total)"] = 0,
                ["sum(renderfarm_item_queue_wait_seconds_count)"] = 2,
                ["sum(renderfarm_item_render_duration_seconds_count)"] = 2,
                // Two images, two denoising steps each.
                ["sum(renderfarm_worker_denoise_steps_total)"] = 4,
                ["sum(renderfarm_workers{renderfarm_state=\"Idle\"})"] = 1,
            };
            var seen = new Dictionary<string, double>(StringComparer.Ordinal);
            await WaitAsync("the expected values", async () =>
            {
                foreach (var (query, _) in expected)
                {
                    var (_, result, _) = await prometheus.QueryAsync(query, ct);
                    seen[query] = result.GetArrayLength() == 0 ? double.NaN
                        : double.Parse(result[0].GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                }

                return expected.All(e => seen[e.Key] == e.Value);
            }, ct, () => string.Join("\n", seen.Select(s => $"{s.Key} = {s.Value} (expected {expected[s.Key]})")));
            farm.Passed();
        }
        finally
        {
            if (prometheus.Output.Length > 0)
                output.WriteLine("===== prometheus =====\n" + prometheus.Output);
        }
    }

    [Fact]
    public void The_Helm_chart_ships_the_same_dashboard_as_deploy()
    {
        // Helm reads files inside the chart only, so the chart holds a copy; this keeps it the tested one.
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "deploy", "helm-renderfarm.json"))
            .ShouldBe(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "deploy", "renderfarm.json")));
    }

    /// <summary>Every <c>expr</c> of every panel (rows' nested panels included), with Grafana's macros expanded.</summary>
    internal static List<string> DashboardQueries(string path)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var queries = new List<string>();
        void Walk(JsonElement element)
        {
            if (element.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Name == "expr" && property.Value.ValueKind == JsonValueKind.String)
                        queries.Add(property.Value.GetString()!);
                    else
                        Walk(property.Value);
                }
            }
            else if (element.ValueKind == JsonValueKind.Array)
            {
                foreach (var child in element.EnumerateArray())
                    Walk(child);
            }
        }

        Walk(json.RootElement);
        return queries.Select(q =>
        {
            foreach (var (macro, value) in GrafanaMacros)
                q = q.Replace(macro, value, StringComparison.Ordinal);
            q.ShouldNotContain("$", customMessage: "a dashboard query uses a variable the test cannot expand: " + q);
            return q;
        }).ToList();
    }

    private static string RenderFarmLines(string metrics) =>
        string.Join("\n", metrics.Split('\n').Where(l => l.StartsWith("renderfarm_", StringComparison.Ordinal)).Take(200));

    private static async Task WaitAsync(string what, Func<Task<bool>> condition, CancellationToken cancellationToken, Func<string>? lastSeen = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("Waited 60 s for " + what + (lastSeen is null ? "" : ":\n" + lastSeen()));
            await Task.Delay(250, cancellationToken);
        }
    }
}
