using System.Net;
using System.Net.Sockets;
using System.Text;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace RenderFarm.Messaging.Tests;

/// <summary>
/// MassTransit's usage tracker posts to an outside host some time after the bus starts. Every farm host builds its bus
/// with <see cref="BusServiceCollectionExtensions.AddRenderFarmBus"/>, so these tests hold that wiring to never try.
/// </summary>
/// <remarks>
/// The outbound attempt is caught by pointing the process's default HTTP proxy at a listener in the test: every
/// non-loopback request then arrives there as a proxy request (CONNECT host:443) instead of leaving the machine, so
/// the control test can prove the detector sees a real report without sending one. Loopback requests bypass it.
/// </remarks>
[Collection(nameof(UsageTelemetryTests))] // both tests swap the process-wide default proxy
public sealed class UsageTelemetryTests
{
    private static readonly TimeSpan ReportWindow = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task The_shared_bus_wiring_turns_MassTransit_usage_telemetry_off()
    {
        await using var host = await StartAsync(enableTelemetry: null, CancellationToken.None);
        host.Services.GetRequiredService<IOptions<UsageTelemetryOptions>>().Value.Enabled.ShouldBeFalse();
    }

    [Fact]
    public async Task A_started_bus_attempts_no_outbound_connection_even_when_a_report_would_be_due_at_once()
    {
        await using var proxy = await OutboundTrap.StartAsync();
        // The same host with telemetry forced back on must be caught: otherwise silence below proves nothing.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using (var control = await StartAsync(enableTelemetry: true, CancellationToken.None))
        {
            var attempt = await proxy.WaitForAttemptAsync(ReportWindow);
            attempt.ShouldNotBeNull("with usage telemetry on, MassTransit should have tried to report within the window");
        }

        // Twice as long as the enabled tracker needed: a report the wiring failed to stop would fall inside it.
        var window = 2 * clock.Elapsed + TimeSpan.FromSeconds(2);
        proxy.Clear();
        await using (var farm = await StartAsync(enableTelemetry: null, CancellationToken.None))
        {
            var attempt = await proxy.WaitForAttemptAsync(window);
            attempt.ShouldBeNull("the farm's bus tried an outbound connection");
        }
    }

    private static async Task<Started> StartAsync(bool? enableTelemetry, CancellationToken cancellationToken)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Bus:Transport"] = "InMemory" });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddRenderFarmBus(builder.Configuration, _ => { });
        // Report as soon as MassTransit allows, so the window covers the report of an enabled tracker.
        builder.Services.PostConfigure<UsageTelemetryOptions>(options =>
        {
            options.ReportDelay = TimeSpan.Zero;
            if (enableTelemetry is { } enabled)
                options.Enabled = enabled;
        });
        var host = builder.Build();
        await host.StartAsync(cancellationToken);
        return new Started(host);
    }

    private sealed class Started(IHost host) : IAsyncDisposable
    {
        public IServiceProvider Services => host.Services;

        public async ValueTask DisposeAsync()
        {
            await host.StopAsync(CancellationToken.None);
            host.Dispose();
        }
    }

    /// <summary>A stand-in proxy that records the first line of every request sent to it and answers nothing useful.</summary>
    private sealed class OutboundTrap : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly IWebProxy _previous = HttpClient.DefaultProxy;
        private readonly CancellationTokenSource _stop = new();
        private readonly SemaphoreSlim _seen = new(0);
        private volatile string? _first;
        private Task _accept = Task.CompletedTask;

        public static Task<OutboundTrap> StartAsync()
        {
            var trap = new OutboundTrap();
            trap._listener.Start();
            trap._accept = trap.AcceptAsync();
            HttpClient.DefaultProxy = new WebProxy(new Uri($"http://127.0.0.1:{((IPEndPoint)trap._listener.LocalEndpoint).Port}/"), BypassOnLocal: true);
            return Task.FromResult(trap);
        }

        public void Clear()
        {
            _first = null;
            while (_seen.CurrentCount > 0)
                _seen.Wait(0);
        }

        public async Task<string?> WaitForAttemptAsync(TimeSpan window) =>
            await _seen.WaitAsync(window) ? _first : null;

        public async ValueTask DisposeAsync()
        {
            HttpClient.DefaultProxy = _previous;
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _accept;
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var buffer = new byte[512];
                using var read = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                read.CancelAfter(TimeSpan.FromSeconds(5));
                var count = await client.GetStream().ReadAsync(buffer, read.Token);
                _first ??= Encoding.ASCII.GetString(buffer, 0, count).Split('\n')[0].Trim();
                _seen.Release();
            }
        }
    }
}
