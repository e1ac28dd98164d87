using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using RenderFarm.Diffusion.Models;
using RenderFarm.Worker.Extensions;

namespace RenderFarm.Worker.Tests;

public sealed class WorkerOptionsTests
{
    [Fact]
    public void Defaults_are_valid_and_bound_from_the_worker_section()
    {
        var options = Resolve(new Dictionary<string, string?>
        {
            ["Worker:Id"] = "w1",
            ["Worker:Slots"] = "3",
            ["Worker:HeartbeatInterval"] = "00:00:02",
            ["Worker:Renderer"] = "Null",
        });

        options.Id.ShouldBe("w1");
        options.Slots.ShouldBe(3);
        options.HeartbeatInterval.ShouldBe(TimeSpan.FromSeconds(2));
        options.Renderer.ShouldBe(ItemRendererKind.Null);
        options.UnitReports.ShouldBe(UnitReportMode.PerUnit);
        options.ReportWindow.ShouldBe(WorkerOptions.DefaultReportWindow);
        options.SlotId(0).ShouldBe("w1");
        options.SlotId(2).ShouldBe("w1-3");
    }

    [Fact]
    public void Default_id_is_stable_and_names_host_and_process()
    {
        var options = new WorkerOptions();

        options.Id.ShouldBe($"{Environment.MachineName}-{Environment.ProcessId}");
    }

    [Theory]
    [InlineData("Worker:Slots", "0", "Slots")]
    [InlineData("Worker:HeartbeatInterval", "00:00:20", "HeartbeatInterval")]
    [InlineData("Worker:ProgressEventsPerSecond", "0", "ProgressEventsPerSecond")]
    [InlineData("Worker:DefaultModel", "../x", "DefaultModel")]
    [InlineData("Worker:MaxBatchSize", "0", "MaxBatchSize")]
    [InlineData("Worker:ShutdownGrace", "-00:00:01", "ShutdownGrace")]
    [InlineData("Worker:MemoryBudgetBytes", "0", "MemoryBudgetBytes")]
    [InlineData("Worker:Gpu", "-1", "Gpu")]
    [InlineData("Worker:UnitReports", "7", "UnitReports")]
    [InlineData("Worker:ReportWindow", "-00:00:01", "ReportWindow")]
    public void Invalid_settings_fail_naming_the_key(string key, string value, string property)
    {
        var error = Should.Throw<OptionsValidationException>(() => Resolve(new Dictionary<string, string?> { [key] = value }));

        error.Message.ShouldContain($"Worker:{property}");
    }

    [Fact]
    public void Requiring_cuda_on_a_cpu_build_fails_with_the_fix()
    {
        if (ExecutionProviders.CudaAvailable)
        {
            return; // The check is about CPU-only builds; a GPU build satisfies the setting.
        }

        var error = Should.Throw<OptionsValidationException>(() =>
            Resolve(new Dictionary<string, string?> { ["Worker:ExecutionProvider"] = "Cuda" }));

        error.Message.ShouldContain("OrtFlavor=Gpu");
    }

    private static WorkerOptions Resolve(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var provider = new ServiceCollection().AddRenderFarmWorkerServices(configuration).BuildServiceProvider();
        return provider.GetRequiredService<IOptions<WorkerOptions>>().Value;
    }
}
