using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using MassTransit.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RenderFarm.Messaging;
using RenderFarm.Storage;
using RenderFarm.Telemetry;
using RenderFarm.Worker.Cancellation;
using RenderFarm.Worker.Consumers;
using RenderFarm.Worker.Heartbeats;
using RenderFarm.Worker.Memory;
using RenderFarm.Worker.Models;
using RenderFarm.Worker.Outages;
using RenderFarm.Worker.Rendering;
using RenderFarm.Worker.Slots;
using RenderFarm.Worker.Telemetry;

namespace RenderFarm.Worker.Extensions;

/// <summary>
/// The worker's composition. A distributed worker host calls <see cref="AddRenderFarmWorker"/>; a host that owns
/// the bus and storage itself (the embedded <c>renderfarm serve</c>) calls <see cref="AddRenderFarmWorkerServices"/>
/// and adds <see cref="AddRenderFarmWorkerConsumers(IBusRegistrationConfigurator)"/> inside its own <c>AddRenderFarmBus</c>.
/// </summary>
public static class WorkerExtensions
{
    /// <summary>The service name in telemetry.</summary>
    public const string ServiceName = "renderfarm-worker";

    /// <summary>Time the bus and host get on top of <see cref="WorkerOptions.ShutdownGrace"/> to send the last events and close.</summary>
    public static readonly TimeSpan ShutdownMargin = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Short command-line switches of the distributed worker host (<c>--memory-budget 6GiB</c>, <c>--slots 2</c>,
    /// <c>--id gpu-0</c>, <c>--pool big</c>, <c>--gpu 1</c>), for <c>AddCommandLine(args, switches)</c>; the long form
    /// (<c>--Worker:MemoryBudget=6GiB</c>) works for every setting.
    /// </summary>
    public static IDictionary<string, string> CommandLineSwitches() => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["--memory-budget"] = $"{WorkerOptions.SectionName}:{nameof(WorkerOptions.MemoryBudget)}",
        ["--slots"] = $"{WorkerOptions.SectionName}:{nameof(WorkerOptions.Slots)}",
        ["--id"] = $"{WorkerOptions.SectionName}:{nameof(WorkerOptions.Id)}",
        ["--pool"] = $"{WorkerOptions.SectionName}:{nameof(WorkerOptions.Pool)}",
        ["--gpu"] = $"{WorkerOptions.SectionName}:{nameof(WorkerOptions.Gpu)}",
        ["--urls"] = $"{WorkerOptions.SectionName}:{nameof(WorkerOptions.Urls)}",
    };

    /// <summary>
    /// The distributed worker host: <see cref="AddRenderFarmWorker"/>, and an HTTP listener for <c>/metrics</c>,
    /// <c>/health</c> and <c>/alive</c> only where <c>Worker:Urls</c> or <c>--urls</c> gives it an address.
    /// </summary>
    public static WebApplicationBuilder AddRenderFarmWorkerHost(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddRenderFarmWorker();
        var urls = builder.Configuration[$"{WorkerOptions.SectionName}:{nameof(WorkerOptions.Urls)}"];
        if (!string.IsNullOrWhiteSpace(urls))
        {
            builder.WebHost.UseUrls(urls);
        }
        else if (string.IsNullOrWhiteSpace(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            builder.Services.AddSingleton<IServer, NoListenerServer>();
        }

        return builder;
    }

    /// <summary>The distributed worker: telemetry, health checks, artifact store, worker services and the bus carrying its consumers.</summary>
    public static IHostApplicationBuilder AddRenderFarmWorker(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddRenderFarmTelemetry(ServiceName);
        builder.AddRenderFarmHealthChecks().AddCheck<WorkerHealthCheck>(WorkerHealthCheck.Name);
        builder.Services.AddRenderFarmStorage(builder.Configuration);
        builder.Services.AddRenderFarmWorkerServices(builder.Configuration);
        builder.Services.AddRenderFarmBus(builder.Configuration, bus => bus.AddRenderFarmWorkerConsumers());
        return builder;
    }

    /// <summary>
    /// Options (section <c>Worker</c>, then <paramref name="configure"/>), slots with their renderers, heartbeats and
    /// graceful shutdown. Needs an <c>IArtifactStore</c> and a MassTransit bus carrying
    /// <see cref="AddRenderFarmWorkerConsumers(IBusRegistrationConfigurator)"/>. To replace the renderer, register an <see cref="IItemRenderer"/>
    /// (transient: one per slot) before calling this.
    /// </summary>
    public static IServiceCollection AddRenderFarmWorkerServices(
        this IServiceCollection services,
        IConfiguration? configuration = null,
        Action<WorkerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<WorkerOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection(WorkerOptions.SectionName));
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WorkerOptions>, WorkerOptionsValidator>());

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IDeviceProbe>(sp =>
        {
            var worker = sp.GetRequiredService<IOptions<WorkerOptions>>().Value;
            return DeviceProbes.Create(worker.ExecutionProvider, worker.Gpu, sp.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(DeviceProbes)));
        });
        services.AddMetrics();
        services.TryAddSingleton<WorkerMetrics>();
        services.TryAddSingleton(sp => new ModelCache(
            sp.GetRequiredService<IArtifactStore>(),
            sp.GetRequiredService<IOptions<WorkerOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<ModelCache>>(),
            // Resolved when the cache evicts, long after the slots exist (the slots' renderers need the catalog, which
            // needs the cache: a constructor dependency would be a cycle).
            loadedModels: () => sp.GetRequiredService<WorkerSlotPool>().Slots.SelectMany(s => s.Renderer.LoadedModels)));
        services.TryAddSingleton<ModelCatalog>();
        services.TryAddSingleton<WorkerMemory>();
        services.TryAddSingleton<JobCancellations>();
        services.TryAddSingleton<WorkerLifecycle>();
        services.TryAddSingleton<HeartbeatPublisher>();
        services.TryAddSingleton<StoreOutage>();
        services.TryAddTransient<IItemRenderer>(sp =>
            sp.GetRequiredService<IOptions<WorkerOptions>>().Value.Renderer == ItemRendererKind.Null
                ? new NullItemRenderer()
                : ActivatorUtilities.CreateInstance<EngineItemRenderer>(sp));
        services.TryAddSingleton(sp => new WorkerSlotPool(
            sp.GetRequiredService<IOptions<WorkerOptions>>(),
            sp.GetRequiredService<IItemRenderer>));

        services.AddBusObserver<WorkerLifecycle.BusObserver>();
        services.AddHostedService<HeartbeatService>();

        // Graceful shutdown: MassTransit lets running consumers finish for the grace, then cancels their consume
        // token, which leaves their units unacknowledged for redelivery; the host must wait at least that long.
        services.AddOptions<MassTransitHostOptions>().Configure<IOptions<WorkerOptions>>((host, worker) =>
        {
            host.ConsumerStopTimeout = worker.Value.ShutdownGrace;
            host.StopTimeout = Max(host.StopTimeout, worker.Value.ShutdownGrace + ShutdownMargin);
        });
        services.AddOptions<HostOptions>().Configure<IOptions<WorkerOptions>>((host, worker) =>
            host.ShutdownTimeout = Max(host.ShutdownTimeout, worker.Value.ShutdownGrace + 2 * ShutdownMargin));
        return services;
    }

    /// <summary>
    /// The worker's consumers and their definitions, for the <c>configureConsumers</c> of <c>AddRenderFarmBus</c>:
    /// render work from the shared queue and from this process's own queue (one slot pool for both), and cancels.
    /// </summary>
    public static IBusRegistrationConfigurator AddRenderFarmWorkerConsumers(this IBusRegistrationConfigurator bus)
    {
        ArgumentNullException.ThrowIfNull(bus);
        bus.AddConsumer<RenderWorkUnitConsumer, RenderWorkUnitConsumerDefinition>();
        bus.AddConsumer<WorkerQueueRenderConsumer, WorkerQueueRenderConsumerDefinition>();
        bus.AddConsumer<JobCanceledConsumer, JobCanceledConsumerDefinition>();
        return bus;
    }

    /// <summary>
    /// The same consumers for a host whose bus is already registered (<c>AddMassTransit</c> runs once per container,
    /// as in the embedded farm): MassTransit's container registration, which <c>ConfigureEndpoints</c> reads like
    /// consumers added inside <c>AddMassTransit</c>. Keep in step with the overload above, just above it.
    /// </summary>
    public static IServiceCollection AddRenderFarmWorkerConsumers(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.RegisterConsumer<RenderWorkUnitConsumer, RenderWorkUnitConsumerDefinition>();
        services.RegisterConsumer<WorkerQueueRenderConsumer, WorkerQueueRenderConsumerDefinition>();
        services.RegisterConsumer<JobCanceledConsumer, JobCanceledConsumerDefinition>();
        return services;
    }

    private static TimeSpan Max(TimeSpan? a, TimeSpan b) => a is { } value && value > b ? value : b;
}
