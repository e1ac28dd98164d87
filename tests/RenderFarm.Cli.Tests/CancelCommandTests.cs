using RenderFarm.Client;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm cancel</c> against embedded <c>renderfarm serve</c>.</summary>
public sealed class CancelCommandTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    // Far more work than two tiny-model workers finish before the cancel arrives.
    private static readonly SubmitJobRequest Long = new(Prompt: "a long sweep", Width: 64, Height: 64, Steps: 40, GuidanceScale: 7.5, Sampler: "euler", Count: 100, Seed: 7);

    private static CancellationToken Timeout(int seconds = 120) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [Fact]
    public async Task Cancel_cancels_the_job_and_a_second_cancel_exits_2()
    {
        var client = farm.Serve.CreateClient();
        var (submitted, _) = await client.SubmitJobAsync(Long, cancellationToken: Timeout());
        var url = farm.Serve.Address.ToString();

        var (exitCode, output, error) = await Cli.RunAsync("cancel", submitted.Id.ToString(), "--reason", "wrong prompt", "--farm", url);

        exitCode.ShouldBe(0, error);
        output.ShouldContain($"job {submitted.Id}: Canceled;");
        var job = await client.GetJobAsync(submitted.Id, cancellationToken: Timeout());
        job!.State.ShouldBe(JobState.Canceled);
        job.CancelReason.ShouldBe("wrong prompt");
        job.Progress.Canceled.ShouldBeGreaterThan(0);

        var again = await Cli.RunAsync("cancel", submitted.Id.ToString(), "--farm", url);
        again.ExitCode.ShouldBe(2);
        again.Error.ShouldContain("already finished");
    }

    [Fact]
    public async Task Cancel_of_an_unknown_job_exits_2_and_a_malformed_id_exits_2_before_calling_the_farm()
    {
        var unknown = await Cli.RunAsync("cancel", Guid.NewGuid().ToString(), "--farm", farm.Serve.Address.ToString());
        var malformed = await Cli.RunAsync("cancel", "job-42", "--farm", "http://127.0.0.1:9");

        unknown.ExitCode.ShouldBe(2);
        unknown.Error.ShouldContain("No such job");
        malformed.ExitCode.ShouldBe(2);
        malformed.Error.ShouldContain("not a job id");
    }
}
