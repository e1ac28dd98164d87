using RenderFarm.Client;
using Xunit.Abstractions;

namespace RenderFarm.Cli.Tests;

/// <summary>
/// <c>renderfarm serve</c> stopped in the middle of a job and started again on the same data: the in-memory bus lost
/// the units it had been sent, the rest waited in the outbox, and the job still ends with every image exactly once.
/// </summary>
public sealed class EmbeddedResumeTests(ITestOutputHelper output) : IDisposable
{
    private const int Items = 120;

    private readonly string _root = Directory.CreateTempSubdirectory("rf-serve-resume-").FullName;

    [Fact]
    public async Task A_job_stopped_half_way_finishes_after_a_restart_with_each_image_once()
    {
        var data = Path.Combine(_root, "data");
        Guid jobId;
        await using (var first = await EmbeddedServe.StartAsync(data, workers: 1))
        {
            var client = first.CreateClient();
            var sweep = new SubmitJobRequest(Prompt: "an unfinished sweep", Width: 64, Height: 64, Steps: 8, GuidanceScale: 7.5, Sampler: "euler",
                Sweep: new SweepRequest(Seeds: [.. Enumerable.Range(1, Items).Select(i => (long)i)]));
            var (job, _) = await client.SubmitJobAsync(sweep);
            jobId = job.Id;
            await WaitAsync(client, jobId, j => j.Progress.Succeeded >= 5, TimeSpan.FromSeconds(60));
            (await first.StopAsync()).ShouldBe(0, first.Output);
        }

        await using var second = await EmbeddedServe.StartAsync(data, workers: 1);
        var again = second.CreateClient();
        var restarted = (await again.GetJobAsync(jobId))!;
        output.WriteLine($"after the restart: {restarted.Progress}");
        restarted.Progress.Succeeded.ShouldBeLessThan(Items, "the job finished before the stop: nothing was tested");

        // Items that were rendering at the stop come back when their leases lapse (30 s by default).
        var done = await WaitAsync(again, jobId, j => j.IsFinal, TimeSpan.FromSeconds(150));
        var images = new List<JobImage>();
        await foreach (var image in again.GetImagesAsync(jobId))
        {
            images.Add(image);
        }

        done.State.ShouldBe(JobState.Succeeded, done.Progress.ToString());
        images.Select(i => i.Index).Order().ShouldBe(Enumerable.Range(0, Items).Select(i => (long)i));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static async Task<Job> WaitAsync(RenderFarmClient client, Guid id, Func<Job, bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var job = (await client.GetJobAsync(id))!;
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
}
