using RenderFarm.Client;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm retry</c> against embedded <c>renderfarm serve</c>.</summary>
public sealed class RetryCommandTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    private static readonly SubmitJobRequest Long = new(Prompt: "a long sweep", Width: 64, Height: 64, Steps: 40, GuidanceScale: 7.5, Sampler: "euler", Count: 60, Seed: 3);

    private static CancellationToken Timeout(int seconds = 120) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [Fact]
    public async Task Retry_of_a_canceled_job_queues_its_canceled_items_again()
    {
        var client = farm.Serve.CreateClient();
        var (submitted, _) = await client.SubmitJobAsync(Long, cancellationToken: Timeout());
        var canceled = await client.CancelJobAsync(submitted.Id, "to retry", Timeout());
        canceled.Progress.Canceled.ShouldBeGreaterThan(0);
        var url = farm.Serve.Address.ToString();

        var (exitCode, output, error) = await Cli.RunAsync("retry", submitted.Id.ToString(), "--farm", url);

        exitCode.ShouldBe(0, error);
        var reopened = await client.GetJobAsync(submitted.Id, cancellationToken: Timeout());
        reopened!.IsFinal.ShouldBeFalse();
        reopened.Progress.Canceled.ShouldBe(0);
        output.ShouldContain($"job {submitted.Id}: ");
        output.ShouldContain($"; {canceled.Progress.Canceled} item(s) queued again.");
        await client.CancelJobAsync(submitted.Id, "done with the test", Timeout());
    }

    [Fact]
    public async Task Retry_of_a_job_with_nothing_failed_or_of_an_unknown_job_exits_2()
    {
        var client = farm.Serve.CreateClient();
        var (small, _) = await client.SubmitJobAsync(Long with { Count = 1, Steps = 2 }, cancellationToken: Timeout());
        (await EmbeddedFarmTests.WaitFinalAsync(client, small.Id)).State.ShouldBe(JobState.Succeeded);
        var url = farm.Serve.Address.ToString();

        var nothing = await Cli.RunAsync("retry", small.Id.ToString(), "--farm", url);
        var unknown = await Cli.RunAsync("retry", Guid.NewGuid().ToString(), "--farm", url);

        nothing.ExitCode.ShouldBe(2);
        nothing.Error.ShouldContain("Nothing to retry");
        unknown.ExitCode.ShouldBe(2);
        unknown.Error.ShouldContain("No such job");
    }
}
