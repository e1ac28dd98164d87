using System.Net;
using System.Text.Json;
using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

/// <summary>
/// Capability-aware placement across real processes: two workers whose memory budgets differ report different
/// plans, a job only the large one can take is rendered there, and a job neither can take is refused.
/// </summary>
/// <remarks>
/// Budgets come from the tiny model's measured profile (<c>renderfarm plan --model tiny-sd --budget …</c>): 78 MiB
/// plans at most 160×160 (sequential offload with split batches), 200 MiB plans up to 1768×1768 and 256×256 resident.
/// </remarks>
public sealed class PlacementTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    private const string SmallBudget = "78MiB";
    private const string LargeBudget = "200MiB";

    [Fact]
    public async Task Two_workers_with_different_budgets_report_different_plans_and_a_job_only_the_large_one_fits_is_rendered_there()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        await using var farm = new Farm(environment, output);
        await farm.StartCoordinatorAsync(ct);
        await Task.WhenAll(
            farm.StartWorkerAsync("it-small", ct, new Dictionary<string, string> { ["Worker__MemoryBudget"] = SmallBudget }),
            farm.StartWorkerAsync("it-large", ct, new Dictionary<string, string> { ["Worker__MemoryBudget"] = LargeBudget }));

        var workers = await WaitForPlansAsync(farm, ct);
        var small = workers["it-small"];
        var large = workers["it-large"];
        small.GetProperty("memoryBudgetBytes").GetInt64().ShouldBe(78L << 20);
        large.GetProperty("memoryBudgetBytes").GetInt64().ShouldBe(200L << 20);
        small.GetProperty("maxSquareSide").GetInt32().ShouldBeLessThan(256, small.ToString());
        large.GetProperty("maxSquareSide").GetInt32().ShouldBeGreaterThanOrEqualTo(256, large.ToString());
        large.GetProperty("residentMaxPixels").GetInt64().ShouldBeGreaterThan(small.GetProperty("residentMaxPixels").GetInt64());
        small.GetProperty("strategy").GetString().ShouldNotBe(large.GetProperty("strategy").GetString());
        large.GetProperty("installedModels").EnumerateArray().Select(m => m.GetString()).ShouldContain(FarmEnvironment.ModelName);

        var jobId = await farm.SubmitAsync(Farm.Job(count: 2, steps: 3, seed: 77, prompt: "only the large worker fits this", size: 256), ct);
        var job = await farm.WaitForJobAsync(jobId, Farm.IsFinal, TimeSpan.FromSeconds(120), ct);

        Farm.State(job).ShouldBe("Succeeded", job.ToString());
        JobAssertions.ImagesExactlyOnce(job, 2).ShouldAllBe(i => i.WorkerId == "it-large", job.ToString());

        var (status, problem, response) = await farm.PostJobAsync(Farm.Job(count: 1, steps: 3, size: 2048), null, ct);
        response.Dispose();
        status.ShouldBe(HttpStatusCode.BadRequest, problem.ToString());
        var message = problem.GetProperty("errors").GetProperty("width")[0].GetString()!;
        var side = large.GetProperty("maxSquareSide").GetInt32();
        message.ShouldContain($"the largest the fleet can take is {side}×{side}");
        message.ShouldContain("it-large");
        farm.Passed();
    }

    // Heartbeats carry the plan once the worker has resolved its budget; wait until both report one.
    private static async Task<Dictionary<string, JsonElement>> WaitForPlansAsync(Farm farm, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            using var response = await farm.Client.GetAsync("v1/workers", ct);
            var workers = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct)).RootElement.Clone();
            var planned = workers.EnumerateArray()
                .Where(w => w.GetProperty("live").GetBoolean() && w.GetProperty("maxPixels").GetInt64() > 0)
                .ToDictionary(w => w.GetProperty("id").GetString()!);
            if (planned.ContainsKey("it-small") && planned.ContainsKey("it-large"))
            {
                return planned;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("Both workers should report a plan (maxPixels > 0): " + workers);
            }

            await Task.Delay(200, ct);
        }
    }
}
