using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace RenderFarm.Messaging.Tests;

/// <summary>A real Generic Host running <see cref="BusServiceCollectionExtensions.AddRenderFarmBus"/> with the probe consumers.</summary>
internal sealed class BusHost : IAsyncDisposable
{
    private readonly IHost _host;

    private BusHost(IHost host) => _host = host;

    public Inbox Inbox => _host.Services.GetRequiredService<Inbox>();

    public IBus Bus => _host.Services.GetRequiredService<IBus>();

    public IServiceProvider Services => _host.Services;

    public static async Task<BusHost> StartAsync(IDictionary<string, string?> settings, CancellationToken cancellationToken = default)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            EnvironmentName = Environments.Development,
        });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton<Inbox>();
        builder.Services.AddRenderFarmBus(builder.Configuration, bus =>
        {
            bus.AddConsumer<RenderWorkUnitProbe>().Endpoint(e => e.Name = QueueNames.Render);
            bus.AddConsumer<ItemRenderedProbe>();
            bus.AddConsumer<ItemPreviewedProbe>();
        });

        var host = builder.Build();
        await host.StartAsync(cancellationToken);
        return new BusHost(host);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync(CancellationToken.None);
        _host.Dispose();
    }
}
