using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;

namespace RenderFarm.Worker.Telemetry;

/// <summary>
/// The server of a worker given no address: it accepts nothing. ASP.NET Core would otherwise listen on its default
/// port (or the container image's <c>ASPNETCORE_HTTP_PORTS</c>), and a worker opens a port only when told to.
/// </summary>
internal sealed class NoListenerServer : IServer
{
    public IFeatureCollection Features { get; } = new FeatureCollection();

    public Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
        where TContext : notnull => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
    }
}
