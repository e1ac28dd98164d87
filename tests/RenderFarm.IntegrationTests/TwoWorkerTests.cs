using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

public sealed class TwoWorkerTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    [Fact]
    public async Task A_job_submitted_over_HTTP_completes_across_two_worker_processes_with_every_image_and_its_parameters_in_the_bucket()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var ct = timeout.Token;
        await using var farm = new Farm(environment, output);
        await farm.StartCoordinatorAsync(ct);
        await Task.WhenAll(farm.StartWorkerAsync("it-a", ct), farm.StartWorkerAsync("it-b", ct));

        const string prompt = "two workers, one job";
        var jobId = await farm.SubmitAsync(Farm.Job(count: 6, steps: 30, seed: 500, prompt: prompt), ct);
        var job = await farm.WaitForJobAsync(jobId, Farm.IsFinal, TimeSpan.FromSeconds(90), ct);

        Farm.State(job).ShouldBe("Succeeded", job.ToString());
        var images = JobAssertions.ImagesExactlyOnce(job, 6);
        images.ShouldAllBe(i => i.Seed == 500 + i.Index);
        string.Join(",", images.Select(i => i.WorkerId).Distinct().Order()).ShouldBe("it-a,it-b", "both workers should have rendered items: " + job);
        await JobAssertions.ImagesInBucketAsync(environment, jobId, prompt, 500, 6, ct);
        farm.Passed();
    }
}
