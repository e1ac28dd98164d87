using RenderFarm.Client;
using Xunit.Abstractions;

namespace RenderFarm.Cli.Tests;

/// <summary>
/// The check a user can repeat on one machine: <c>renderfarm serve --workers 1</c>, a 300-item sweep at priority 0,
/// then one image at priority 10. The dispatcher keeps only a window of the sweep on the bus, so the image goes next,
/// not after the sweep.
/// </summary>
public sealed class EmbeddedPriorityTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("rf-serve-priority-").FullName;

    private static CancellationToken Timeout(int seconds = 120) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [Fact]
    public async Task One_image_at_priority_10_is_done_while_most_of_a_300_item_sweep_at_priority_0_is_still_queued()
    {
        await using var serve = await EmbeddedServe.StartAsync(Path.Combine(_root, "data"), workers: 1);
        var client = serve.CreateClient();
        var seeds = Enumerable.Range(1, 300).Select(i => (long)i).ToList();
        var sweep = new SubmitJobRequest(Prompt: "a long sweep", Width: 64, Height: 64, Steps: 8, GuidanceScale: 7.5, Sampler: "euler",
            Sweep: new SweepRequest(Seeds: seeds), Priority: 0);
        var (big, _) = await client.SubmitJobAsync(sweep, cancellationToken: Timeout());
        await WaitAsync(client, big.Id, j => j.Progress.Succeeded >= 1);

        var (urgent, _) = await client.SubmitJobAsync(
            new SubmitJobRequest(Prompt: "one urgent image", Width: 64, Height: 64, Steps: 8, GuidanceScale: 7.5, Sampler: "euler", Seed: 42, Priority: 10),
            cancellationToken: Timeout());
        var done = await WaitAsync(client, urgent.Id, j => j.IsFinal);
        var behind = (await client.GetJobAsync(big.Id, cancellationToken: Timeout()))!;

        output.WriteLine($"urgent image {done.State}; the sweep then: {behind.Progress}");
        done.State.ShouldBe(JobState.Succeeded);
        done.Priority.ShouldBe(10);
        behind.Progress.Queued.ShouldBeGreaterThan(200, $"the sweep had {behind.Progress} when the urgent image was done");
        await client.CancelJobAsync(big.Id, "test over", Timeout());
    }

    private static async Task<Job> WaitAsync(RenderFarmClient client, Guid id, Func<Job, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (true)
        {
            var job = (await client.GetJobAsync(id, cancellationToken: Timeout()))!;
            if (condition(job))
            {
                return job;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Job {id} did not get there in time: {job.State}, {job.Progress}.");
            }

            await Task.Delay(100);
        }
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
