using System.Diagnostics;
using System.Text.Json;
using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using static RenderFarm.IntegrationTests.Faults.DedicatedServices;

namespace RenderFarm.IntegrationTests.Faults;

/// <summary>The fault tests share one dedicated services instance (starting one takes 10-100 s) and run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ServiceFaultsCollection : ICollectionFixture<DedicatedServices>
{
    public const string Name = "Service faults";
}

/// <summary>
/// Jepsen's habit on the farm: kill the services it stands on, not only its own processes, with a job in flight, and
/// count what was lost. Each test ends with the job Succeeded, every image in the bucket exactly once, no item's
/// attempt spent on the farm's own fault, and nothing in an <c>_error</c> queue; the coordinator and workers are never
/// restarted by hand. Each prints how long the farm took to recover, measured from the service answering again.
/// </summary>
[Collection(ServiceFaultsCollection.Name)]
public sealed class ServiceFaultTests(DedicatedServices services, ITestOutputHelper output) : IAsyncLifetime
{
    // Enough that the job outlasts the fault and its recovery: RabbitMQ's restart alone took 150 s on a loaded machine.
    private const int Count = 10;

    // Items of a few seconds each on the tiny model at 64², so every fault lands while items are running.
    private const int Steps = 300;

    private static readonly IReadOnlyDictionary<string, string> CoordinatorSettings = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["Coordinator__LeaseDuration"] = "00:00:10",
        ["Coordinator__HeartbeatInterval"] = "00:00:01",
        ["Coordinator__InitialBackoff"] = "00:00:01",
        ["Coordinator__Rescuer__Interval"] = "00:00:00.500",
    };

    private static readonly IReadOnlyDictionary<string, string> WorkerSettings = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["Worker__StoreOutageDeadline"] = "00:05:00",
    };

    private readonly FarmEnvironment _environment = new(services.Settings);

    public Task InitializeAsync() => _environment.InitializeAsync();

    public Task DisposeAsync() => _environment.DisposeAsync();

    [Fact]
    public async Task The_object_store_unreachable_for_60_s_spends_no_attempt_and_loses_no_image()
    {
        await RunAsync("a store that goes away", seed: 1500, async (farm, jobId, ct) =>
        {
            await services.KillAsync(Service.S3);
            var down = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(60), ct);

            // Meanwhile: items wait at their upload, still Running on their workers; none failed or retried.
            var during = await farm.GetJobAsync(jobId, ct);
            var progress = during.GetProperty("progress");
            (progress.GetProperty("failed").GetInt64() + progress.GetProperty("retrying").GetInt64()).ShouldBe(0, during.ToString());
            Farm.IsFinal(during).ShouldBeFalse(during.ToString());
            output.WriteLine($"store down {down.Elapsed.TotalSeconds:F0} s; job meanwhile: {progress}");

            await services.StartAsync();
        });
    }

    [Fact]
    public async Task PostgreSQL_stopped_immediately_for_15_s_dead_letters_nothing_and_loses_no_image()
    {
        await RunAsync("a database that restarts", seed: 1600, async (farm, jobId, ct) =>
        {
            await services.StopAsync(Service.Postgres, immediate: true);
            await Task.Delay(TimeSpan.FromSeconds(15), ct);
            await services.StartAsync();
        });
    }

    [Fact]
    public async Task RabbitMQ_killed_and_restarted_loses_nothing_and_every_worker_heartbeats_again()
    {
        await RunAsync("a broker that crashes", seed: 1700, async (farm, jobId, ct) =>
        {
            await services.KillAsync(Service.RabbitMq);
            await services.StartAsync();
        });
    }

    [Fact]
    public async Task A_worker_whose_broker_connection_is_cut_while_it_renders_recovers_by_itself()
    {
        await RunAsync("a connection that is cut", seed: 1800, async (farm, jobId, ct) =>
        {
            var closed = await _environment.CloseConnectionsOfAsync(farm.Workers[0].Id, ct);
            output.WriteLine($"closed {closed} connection(s) of {farm.Workers[0].Name}");
            closed.ShouldBeGreaterThan(0);
        });
    }

    [Fact]
    public async Task The_coordinator_killed_mid_dispatch_and_mid_ledger_batch_loses_nothing_and_doubles_nothing()
    {
        await RunAsync("a coordinator killed twice", seed: 1900, async (farm, jobId, ct) =>
        {
            // Mid-ledger-batch: the moment the first image is being recorded (its ItemRendered batch in flight).
            await WaitTolerantlyAsync(farm.Farm, jobId, job => Succeeded(job) >= 1, TimeSpan.FromMinutes(2), ct);
            farm.Farm.KillCoordinator();
            await farm.Farm.StartCoordinatorAsync(ct);

            // Mid-dispatch: a second job submitted and the coordinator killed as its 202 arrives, while the outbox
            // dispatcher is sending its units; the next coordinator sends what was not confirmed.
            var second = await farm.Farm.SubmitAsync(Farm.Job(count: 4, steps: 20, seed: 1950, prompt: "dispatched across a crash"), ct);
            farm.Farm.KillCoordinator();
            await farm.Farm.StartCoordinatorAsync(ct);
            var done = await WaitTolerantlyAsync(farm.Farm, second, Farm.IsFinal, TimeSpan.FromMinutes(4), ct);
            Farm.State(done).ShouldBe("Succeeded", done.ToString());
            JobAssertions.ImagesExactlyOnce(done, 4);
        });
    }

    [Fact]
    public async Task A_worker_killed_during_an_upload_loses_no_image()
    {
        await RunAsync("a worker killed while uploading", seed: 2000, attemptsMayGrow: true, fault: async (farm, jobId, ct) =>
        {
            // The store down makes "during an upload" a moment that lasts: a rendered item waits at its upload.
            await services.KillAsync(Service.S3);
            var uploading = await WaitTolerantlyAsync(farm.Farm, jobId,
                job => job.GetProperty("runningItems").EnumerateArray().Any(i => i.GetProperty("workerId").GetString() == "fault-a" && IsFullyRendered(i)),
                TimeSpan.FromMinutes(3), ct);
            output.WriteLine("killing fault-a while it uploads: " + uploading.GetProperty("runningItems"));
            farm.Workers[0].Kill();
            await services.StartAsync();
        });
    }

    private static bool IsFullyRendered(JsonElement item) =>
        item.TryGetProperty("totalSteps", out var total) && total.ValueKind == JsonValueKind.Number
        && item.GetProperty("step").GetInt32() >= total.GetInt32();

    /// <summary>
    /// A farm of a coordinator and two workers on the dedicated services; a job of <see cref="Count"/> items submitted;
    /// <paramref name="fault"/> injected while items are rendering; then the job must succeed with everything in place.
    /// With <paramref name="attemptsMayGrow"/> the fault kills a worker, whose items are retried: what attempts are for.
    /// </summary>
    private async Task RunAsync(string prompt, long seed, Func<FaultFarm, Guid, CancellationToken, Task> fault, bool attemptsMayGrow = false)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var ct = timeout.Token;
        await using var farm = new Farm(_environment, output, CoordinatorSettings);
        await farm.StartCoordinatorAsync(ct);
        var workers = new[]
        {
            await farm.StartWorkerAsync("fault-a", ct, WorkerSettings),
            await farm.StartWorkerAsync("fault-b", ct, WorkerSettings),
        };

        var jobId = await farm.SubmitAsync(Farm.Job(count: Count, steps: Steps, seed: seed, prompt: prompt), ct);
        var running = await farm.WaitForJobAsync(jobId, job => job.GetProperty("runningItems").EnumerateArray().Any(i => i.GetProperty("step").GetInt32() > 0),
            TimeSpan.FromSeconds(120), ct);
        Farm.IsFinal(running).ShouldBeFalse("the fault must land mid-job; make the items longer");
        var attemptsBefore = (await _environment.ItemsAsync(jobId, ct)).ToDictionary(r => r.Index, r => r.Attempt);
        var succeededBefore = Succeeded(running);

        var clock = Stopwatch.StartNew();
        await fault(new FaultFarm(farm, workers), jobId, ct);
        var faultTook = clock.Elapsed;

        // Recovery, from the service answering again (the fault's end): every worker heartbeating, the next image
        // recorded, the job's end.
        var back = Stopwatch.StartNew();
        var atBack = await WaitTolerantlyAsync(farm, jobId, _ => true, TimeSpan.FromMinutes(2), ct);
        string[] alive = [.. workers.Where(w => !w.HasExited).Select(w => w.Name["worker ".Length..])];
        await WaitForLiveWorkersAsync(farm, alive, ct);
        var workersLive = back.Elapsed;
        var next = await WaitTolerantlyAsync(farm, jobId, job => Succeeded(job) > Succeeded(atBack) || Farm.IsFinal(job), TimeSpan.FromMinutes(4), ct);
        var firstImage = back.Elapsed;
        var done = await WaitTolerantlyAsync(farm, jobId, Farm.IsFinal, TimeSpan.FromMinutes(4), ct);
        output.WriteLine($"RECOVERY [{prompt}]: fault {faultTook.TotalSeconds:F1} s; after it: workers live {workersLive.TotalSeconds:F1} s, next image {firstImage.TotalSeconds:F1} s, job done {back.Elapsed.TotalSeconds:F1} s ({Count} items of {Steps} steps; {succeededBefore} done before the fault, {Succeeded(atBack)} when it ended; {next.GetProperty("progress")})");

        Farm.State(done).ShouldBe("Succeeded", done.ToString());
        JobAssertions.ImagesExactlyOnce(done, Count);
        await JobAssertions.ImagesInBucketAsync(_environment, jobId, prompt, seed, Count, ct);

        // Only the items' own faults spend attempts: none of these were.
        var ledger = await _environment.ItemsAsync(jobId, ct);
        ledger.ShouldAllBe(row => row.ArtifactKey != null);
        foreach (var row in ledger.Where(_ => !attemptsMayGrow))
            row.Attempt.ShouldBe(attemptsBefore[row.Index], $"item {row.Index} spent an attempt on a fault of the farm's: {string.Join("; ", ledger)}");

        // Dead letters: the management API's counts trail by its 5 s statistics interval.
        await Task.Delay(TimeSpan.FromSeconds(6), ct);
        (await _environment.DeadLettersAsync(ct)).ShouldBeEmpty();
        using (var deadLetters = await farm.Client.GetAsync("v1/dead-letters", ct))
        {
            var report = await deadLetters.Content.ReadAsStringAsync(ct);
            deadLetters.IsSuccessStatusCode.ShouldBeTrue(report);
            JsonDocument.Parse(report).RootElement.GetProperty("total").GetInt64().ShouldBe(0, report);
        }

        // Every worker heartbeats again (a worker whose heartbeats died would stay not live).
        await WaitForLiveWorkersAsync(farm, alive, ct);
        farm.Passed();
    }

    private static long Succeeded(JsonElement job) => job.GetProperty("progress").GetProperty("succeeded").GetInt64();

    // The coordinator answers 500 or not at all while its database is down: keep asking.
    private static async Task<JsonElement> WaitTolerantlyAsync(Farm farm, Guid jobId, Func<JsonElement, bool> until, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        JsonElement last = default;
        string lastError = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await farm.GetJobAsync(jobId, ct);
                if (until(last))
                    return last;
            }
            catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                lastError = ex.Message;
            }

            await Task.Delay(200, ct);
        }

        throw new TimeoutException($"Waited {timeout.TotalSeconds:F0} s for job {jobId}. Last seen: {(last.ValueKind == JsonValueKind.Undefined ? lastError : last.ToString())}");
    }

    private static async Task WaitForLiveWorkersAsync(Farm farm, string[] ids, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await farm.Client.GetAsync("v1/workers", ct);
                last = await response.Content.ReadAsStringAsync(ct);
                if (response.IsSuccessStatusCode)
                {
                    var workers = JsonDocument.Parse(last).RootElement;
                    if (ids.All(id => workers.EnumerateArray().Any(w => w.GetProperty("id").GetString() == id && w.GetProperty("live").GetBoolean())))
                        return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                last = ex.Message;
            }

            await Task.Delay(200, ct);
        }

        throw new TimeoutException("Not every worker heartbeats again: " + last);
    }

    /// <summary>What a fault may act on: the farm and its worker processes.</summary>
    private sealed record FaultFarm(Farm Farm, IReadOnlyList<HostProcess> Workers)
    {
        public Task<JsonElement> GetJobAsync(Guid jobId, CancellationToken ct) => Farm.GetJobAsync(jobId, ct);
    }
}
