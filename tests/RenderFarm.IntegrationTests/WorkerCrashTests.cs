using System.Text.Json;
using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

public sealed class WorkerCrashTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    [Fact]
    public async Task A_worker_killed_mid_item_loses_no_item_and_duplicates_none()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var ct = timeout.Token;
        await using var farm = new Farm(environment, output, Farm.ShortLeases);
        await farm.StartCoordinatorAsync(ct);
        var victim = await farm.StartWorkerAsync("it-victim", ct);
        await farm.StartWorkerAsync("it-survivor", ct);

        // The most steps a job may ask for: the item must still be running when the kill lands, even in Release under load (200 steps raced).
        const string prompt = "a worker that dies";
        var jobId = await farm.SubmitAsync(Farm.Job(count: 4, steps: 1000, seed: 70, prompt: prompt), ct);
        var running = await farm.WaitForJobAsync(jobId, job => VictimItem(job) is not null, TimeSpan.FromSeconds(60), ct);
        var killedIndex = VictimItem(running)!.Value;

        victim.Kill();

        var done = await farm.WaitForJobAsync(jobId, Farm.IsFinal, TimeSpan.FromSeconds(90), ct);
        Farm.State(done).ShouldBe("Succeeded", done.ToString());
        var images = JobAssertions.ImagesExactlyOnce(done, 4);
        images.Single(i => i.Index == killedIndex).WorkerId.ShouldBe("it-survivor", "the killed item must have been rendered again by the survivor");
        await JobAssertions.ImagesInBucketAsync(environment, jobId, prompt, 70, 4, ct);

        // The ledger: every item succeeded once, the killed one recorded against the worker that finished it.
        var ledger = await environment.ItemsAsync(jobId, ct);
        ledger.Count.ShouldBe(4);
        ledger.ShouldAllBe(row => row.ArtifactKey != null);
        var killed = ledger.Single(row => row.Index == killedIndex);
        killed.WorkerId.ShouldBe("it-survivor");
        killed.Attempt.ShouldBeGreaterThanOrEqualTo(1);
        output.WriteLine($"killed item {killedIndex}: attempt {killed.Attempt}; ledger: {string.Join("; ", ledger)}");
        farm.Passed();
    }

    // The index of an item the victim is rendering and has reported a step of.
    private static long? VictimItem(JsonElement job) =>
        job.GetProperty("runningItems").EnumerateArray()
            .Where(i => i.GetProperty("workerId").GetString() == "it-victim" && i.GetProperty("step").GetInt32() > 0)
            .Select(i => (long?)i.GetProperty("index").GetInt64())
            .FirstOrDefault();
}
