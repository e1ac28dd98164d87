using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

public sealed class CoordinatorRestartTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    [Fact]
    public async Task A_coordinator_killed_mid_job_and_started_again_loses_nothing()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var ct = timeout.Token;
        await using var farm = new Farm(environment, output);
        await farm.StartCoordinatorAsync(ct);
        await farm.StartWorkerAsync("it-steady", ct);

        const string prompt = "a coordinator that restarts";
        var jobId = await farm.SubmitAsync(Farm.Job(count: 6, steps: 300, seed: 9, prompt: prompt), ct);
        var before = await farm.WaitForJobAsync(jobId, job => job.GetProperty("progress").GetProperty("succeeded").GetInt64() >= 1, TimeSpan.FromSeconds(60), ct);
        Farm.IsFinal(before).ShouldBeFalse("the restart must happen mid-job; make the items longer");

        // While it is down the worker goes on rendering; its completions wait in RabbitMQ for the next coordinator.
        farm.KillCoordinator();
        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        await farm.StartCoordinatorAsync(ct);

        var done = await farm.WaitForJobAsync(jobId, Farm.IsFinal, TimeSpan.FromSeconds(90), ct);
        Farm.State(done).ShouldBe("Succeeded", done.ToString());
        JobAssertions.ImagesExactlyOnce(done, 6);
        await JobAssertions.ImagesInBucketAsync(environment, jobId, prompt, 9, 6, ct);
        farm.Passed();
    }
}
