using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using RenderFarm.Worker.Extensions;
using RenderFarm.Worker.Heartbeats;
using RenderFarm.Worker.Rendering;
using RenderFarm.Worker.Slots;
using RenderFarm.Worker.Telemetry;

using RenderFarm.Worker.Outages;

namespace RenderFarm.Worker.Tests;

/// <summary>The distributed worker's HTTP listener (only where it is given an address) and its slot health.</summary>
public sealed class WorkerHostTests
{
    [Fact]
    public async Task A_worker_given_no_address_opens_no_port()
    {
        await using var app = Build([]);
        app.Services.GetRequiredService<IServer>().ShouldBeOfType<NoListenerServer>();
    }

    [Theory]
    [InlineData("--urls")]
    [InlineData("--Worker:Urls")]
    public async Task A_worker_given_an_address_listens_with_Kestrel(string option)
    {
        await using var app = Build([option, "http://127.0.0.1:0"]);
        app.Services.GetRequiredService<IServer>().ShouldNotBeOfType<NoListenerServer>();
    }

    [Fact]
    public async Task Health_is_unhealthy_while_slots_warm_up_healthy_when_ready_and_unhealthy_again_once_draining()
    {
        var options = Options.Create(new WorkerOptions { Id = "health-test", Slots = 2, Renderer = ItemRendererKind.Null });
        using var pool = new WorkerSlotPool(options, () => new NullItemRenderer());
        var lifecycle = new WorkerLifecycle();
        var check = new WorkerHealthCheck(pool, lifecycle, Outage(options), options);

        (await check.CheckHealthAsync(new HealthCheckContext())).Status.ShouldBe(HealthStatus.Unhealthy);

        foreach (var slot in pool.Slots)
            slot.MarkReady();
        var ready = await check.CheckHealthAsync(new HealthCheckContext());
        ready.Status.ShouldBe(HealthStatus.Healthy, ready.Description);

        lifecycle.BeginDraining();
        var draining = await check.CheckHealthAsync(new HealthCheckContext());
        draining.Status.ShouldBe(HealthStatus.Unhealthy);
        draining.Description!.ShouldStartWith("Draining");
    }

    [Fact]
    public async Task Health_is_degraded_while_a_ready_slot_lacks_its_default_model()
    {
        var options = Options.Create(new WorkerOptions { Id = "model-test", Renderer = ItemRendererKind.Engine, WarmUp = true });
        // A renderer that loaded nothing: the engine's warm-up failed (the failure was logged; the slot still serves).
        using var pool = new WorkerSlotPool(options, () => new NullItemRenderer());
        pool.Slots[0].MarkReady();

        var result = await new WorkerHealthCheck(pool, new WorkerLifecycle(), Outage(options), options).CheckHealthAsync(new HealthCheckContext());

        result.Status.ShouldBe(HealthStatus.Degraded);
        result.Description!.ShouldContain(WorkerOptions.TinyModelName);
    }

    private static StoreOutage Outage(IOptions<WorkerOptions> options) =>
        new(options, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<StoreOutage>.Instance);

    private static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddRenderFarmWorkerHost();
        return builder.Build();
    }
}
