using System.Diagnostics;
using System.Text;
using System.Text.Json;
using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

/// <summary>
/// The farm bench's <c>--json</c> output, read back after a small real run of it (the real coordinator and a worker
/// on the shared services, started by the bench itself): the fields scripts and docs rely on are there and agree with
/// each other and with what was asked. No timing is asserted; rates only have to be consistent with their own run.
/// </summary>
public sealed class FarmBenchJsonTests(ITestOutputHelper output)
{
    private const int Items = 300;

    [Fact]
    public async Task A_small_run_with_the_window_off_and_on_writes_consistent_json()
    {
        var json = Path.Combine(Path.GetTempPath(), $"farmbench-{Guid.NewGuid():N}.json");
        try
        {
            var (exit, text) = await RunBenchAsync(TimeSpan.FromMinutes(8),
                "--items", $"{Items}", "--workers", "1", "--storage", "local", "--units-per-worker", "100000,2", "--json", json);
            exit.ShouldBe(0, text);
            File.Exists(json).ShouldBeTrue(text);

            using var report = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var root = report.RootElement;
            root.GetProperty("items").GetInt32().ShouldBe(Items);
            var runs = root.GetProperty("runs").EnumerateArray().ToList();
            runs.Select(r => r.GetProperty("unitsPerWorker").GetInt32()).ShouldBe([100000, 2], "one run per window, in the order given");
            foreach (var run in runs)
            {
                run.GetProperty("items").GetInt32().ShouldBe(Items);
                run.GetProperty("workers").GetInt32().ShouldBe(1);
                run.GetProperty("finalState").GetString().ShouldBe("Succeeded");
                run.GetProperty("lost").GetInt64().ShouldBe(0);
                run.GetProperty("duplicated").GetInt64().ShouldBe(0);
                run.GetProperty("storedImages").GetInt64().ShouldBe(Items);

                var seconds = run.GetProperty("submitToDoneSeconds").GetDouble();
                seconds.ShouldBeGreaterThan(0);
                run.GetProperty("completionsPerSecond").GetDouble().ShouldBe(Items / seconds, Items / seconds * 1e-9);
                run.GetProperty("coordinatorCpuSeconds").GetDouble().ShouldBeGreaterThan(0);
                run.GetProperty("coordinatorPeakRssMiB").GetDouble().ShouldBeGreaterThan(0);

                // The sampler must have reached the management API, or a depth of 0 would mean nothing.
                run.GetProperty("brokerSamples").GetInt32().ShouldBeGreaterThan(0);
                var peak = run.GetProperty("peakBrokerQueueDepth").GetInt64();
                peak.ShouldBeGreaterThanOrEqualTo(run.GetProperty("peakSharedQueueDepth").GetInt64());
                peak.ShouldBeGreaterThanOrEqualTo(0);

                var load = run.GetProperty("loadAverage");
                load.GetProperty("peak").GetDouble().ShouldBeGreaterThanOrEqualTo(load.GetProperty("end").GetDouble());
                run.GetProperty("cpuSecondsByProcess").GetProperty("coordinator").GetDouble()
                    .ShouldBe(run.GetProperty("coordinatorCpuSeconds").GetDouble());
                var e2e = run.GetProperty("endToEndSeconds");
                e2e.GetProperty("p50").GetDouble().ShouldBeLessThanOrEqualTo(e2e.GetProperty("max").GetDouble());
            }
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Theory]
    [InlineData("--items abc", "--items")]
    [InlineData("--json", "--json needs a value")]
    [InlineData("--json /no/such/folder/out.json", "--json")]
    [InlineData("--hires 512 --json out.json", "--json applies to throughput runs only")]
    [InlineData("--frobnicate 1", "unknown argument")]
    [InlineData("--unit-reports per-job", "--unit-reports must list per-item or per-unit")]
    [InlineData("--hires 512 --unit-reports per-unit", "--unit-reports applies to throughput runs only")]
    public async Task Bad_arguments_get_a_message_and_exit_code_2_before_any_run(string arguments, string message)
    {
        var (exit, text) = await RunBenchAsync(TimeSpan.FromMinutes(1), arguments.Split(' '));
        exit.ShouldBe(2, text);
        text.ShouldContain(message);
        text.ShouldContain("usage: farmbench");
    }

    private async Task<(int Exit, string Output)> RunBenchAsync(TimeSpan timeout, params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(FarmHosts.FarmBench);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        var settings = ServicesSettings.Instance;
        start.Environment[ServicesSettings.PostgresVariable] = settings.Postgres;
        start.Environment[ServicesSettings.RabbitMqVariable] = settings.RabbitMq.ToString();
        start.Environment[ServicesSettings.ManagementVariable] = settings.RabbitMqManagement.ToString();

        var text = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (text) text.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (text) text.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"farmbench did not finish within {timeout}:\n{text}");
        }

        process.WaitForExit();
        var all = text.ToString();
        output.WriteLine(all);
        return (process.ExitCode, all);
    }
}
