using RenderFarm.Client;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm delete</c> against embedded <c>renderfarm serve</c>: the job and its image files go.</summary>
public sealed class DeleteCommandTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    private static CancellationToken Timeout(int seconds = 120) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [Fact]
    public async Task Delete_removes_a_finished_job_and_its_image_files_and_refuses_a_running_one()
    {
        var client = farm.Serve.CreateClient();
        var url = farm.Serve.Address.ToString();
        var (small, _) = await client.SubmitJobAsync(new SubmitJobRequest(
            Prompt: "a job to delete", Width: 64, Height: 64, Steps: 2, GuidanceScale: 7.5, Sampler: "euler", Count: 2, Seed: 9), cancellationToken: Timeout());
        var folder = Path.Combine(farm.Serve.DataRoot, "artifacts", "jobs", small.Id.ToString());
        await WaitAsync(async () => (await client.GetJobAsync(small.Id, cancellationToken: Timeout()))!.State == JobState.Succeeded);
        Directory.EnumerateFiles(folder).Count().ShouldBe(2);

        var (exitCode, output, error) = await Cli.RunAsync("delete", small.Id.ToString(), "--farm", url);

        exitCode.ShouldBe(0, error);
        output.ShouldContain($"job {small.Id}: deleted");
        (await client.GetJobAsync(small.Id, cancellationToken: Timeout())).ShouldBeNull();
        (Directory.Exists(folder) ? Directory.EnumerateFiles(folder).Count() : 0).ShouldBe(0);

        var (running, _) = await client.SubmitJobAsync(new SubmitJobRequest(
            Prompt: "still running", Width: 64, Height: 64, Steps: 40, GuidanceScale: 7.5, Sampler: "euler", Count: 100, Seed: 10), cancellationToken: Timeout());
        var refused = await Cli.RunAsync("delete", running.Id.ToString(), "--farm", url);
        refused.ExitCode.ShouldBe(2);
        refused.Error.ShouldContain("cancel it first");
        await client.CancelJobAsync(running.Id, cancellationToken: Timeout());

        var unknown = await Cli.RunAsync("delete", Guid.NewGuid().ToString(), "--farm", url);
        unknown.ExitCode.ShouldBe(2);
        unknown.Error.ShouldContain("No such job");
    }

    private static async Task WaitAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (!await condition())
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, "the job did not finish");
            await Task.Delay(200);
        }
    }
}
