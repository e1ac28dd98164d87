using System.Net;
using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

// A class of its own: it counts the jobs in its database.
public sealed class IdempotencyRestartTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    [Fact]
    public async Task A_repeated_idempotency_key_returns_the_same_job_across_a_coordinator_restart()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var ct = timeout.Token;
        await using var farm = new Farm(environment, output);
        await farm.StartCoordinatorAsync(ct);
        var key = "it-" + Guid.NewGuid().ToString("N");
        var job = Farm.Job(count: 2, steps: 4, seed: 3, prompt: "asked twice");

        var first = await farm.SubmitAsync(job, ct, key);
        farm.KillCoordinator();
        await farm.StartCoordinatorAsync(ct);
        var (status, body, response) = await farm.PostJobAsync(job, key, ct);
        using (response)
        {
            status.ShouldBe(HttpStatusCode.Accepted, body.ToString());
            body.GetProperty("id").GetGuid().ShouldBe(first);
        }

        // And the restarted coordinator did not create a second job for it.
        (await farm.GetJobsTotalAsync(ct)).ShouldBe(1);
        farm.Passed();
    }
}
