using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

/// <summary>
/// The broker holds only the dispatcher's window, however large the job: what runs next stays in the database, where
/// priority and fair share are decided. Read from RabbitMQ's own management API while a real worker renders.
/// </summary>
public sealed class DispatchWindowTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    private const int UnitSize = 8;
    private const int Items = 2000;

    // QueueNames.Render: the shared queue every worker takes units from (this project does not reference Messaging).
    private const string SharedQueue = "renderfarm-render";

    [Theory]
    [InlineData("PerItem")]
    [InlineData("PerUnit")]
    public async Task A_2000_item_job_keeps_the_shared_queue_within_the_window_while_a_worker_renders_it(string unitReports)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        await using var farm = new Farm(environment, output, new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Coordinator__WorkUnitSize"] = UnitSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        await farm.StartCoordinatorAsync(ct);
        await farm.StartWorkerAsync("it-window", ct, new Dictionary<string, string> { ["Worker__UnitReports"] = unitReports });
        // The default window: 3 units per live worker on the shared queue, one worker here. The window counts units
        // sent and not yet started: in either report mode an item is reported started when its render batch begins
        // (per unit, possibly later, held with the images), so the unit the worker renders stays in the window until
        // its last item's start is recorded.
        const int windowUnits = 3;
        var bound = windowUnits;

        // 8 steps an item: at 2 a quiet machine rendered over half the job within the sampling window.
        var jobId = await farm.SubmitAsync(Farm.Job(count: Items, steps: 8, seed: 3000), ct);
        long deepest = 0;
        var samples = 0;
        // The management API refreshes its counts every 5 s: 20 s of samples see several of its snapshots.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < until)
        {
            deepest = Math.Max(deepest, await environment.QueueMessagesAsync(SharedQueue, ct));
            samples++;
            await Task.Delay(250, ct);
        }

        var job = await farm.GetJobAsync(jobId, ct);
        var progress = job.GetProperty("progress");
        output.WriteLine($"{samples} samples, deepest shared queue {deepest} messages; job progress {progress}");

        deepest.ShouldBeGreaterThan(0, "the sampler never saw the worker's unit on the queue: it would not see a flood either");
        deepest.ShouldBeLessThanOrEqualTo(bound, $"the shared queue held more than the window; job progress {progress}");
        progress.GetProperty("succeeded").GetInt64().ShouldBeGreaterThan(0);
        progress.GetProperty("queued").GetInt64().ShouldBeGreaterThan(Items / 2, "the job should still be mostly waiting, in the database");
        using var cancel = await farm.Client.PostAsync($"v1/jobs/{jobId}/cancel", null, ct);
        cancel.EnsureSuccessStatusCode();
        farm.Passed();
    }
}
