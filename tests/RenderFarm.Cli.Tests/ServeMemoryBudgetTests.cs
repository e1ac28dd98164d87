using RenderFarm.Cli.Farm;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm serve --memory-budget</c>: checked before anything starts, then handed to every in-process worker.</summary>
public sealed class ServeMemoryBudgetTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("rf-serve-budget-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("lots", "'lots' is not a memory size")]
    [InlineData("150%", "at most 100%")]
    public async Task A_bad_budget_exits_2_naming_the_option_before_anything_starts(string budget, string reason)
    {
        var data = Path.Combine(_root, "data");

        var (exitCode, _, error) = await Cli.RunAsync("serve", "--urls", "http://127.0.0.1:0", "--data", data, "--memory-budget", budget);

        exitCode.ShouldBe(2);
        error.ShouldContain("--memory-budget");
        error.ShouldContain(reason);
        Directory.Exists(data).ShouldBeFalse("serve created its data folder before checking its options");
    }

    [Fact]
    public void The_budget_becomes_every_in_process_worker_s_setting()
    {
        var settings = EmbeddedFarm.Settings(new EmbeddedFarmSettings("http://127.0.0.1:0", 2, _root, _root, MemoryBudget: "50%"));

        settings["Worker:MemoryBudget"].ShouldBe("50%");
        settings["Worker:Slots"].ShouldBe("2");
    }

    [Fact]
    public void Without_a_budget_the_workers_get_none()
    {
        var settings = EmbeddedFarm.Settings(new EmbeddedFarmSettings("http://127.0.0.1:0", 1, _root, _root));

        settings.ShouldNotContainKey("Worker:MemoryBudget");
    }
}
