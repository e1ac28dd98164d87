using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using RenderFarm.IntegrationTests.Infrastructure;
using RenderFarm.Testing;

namespace RenderFarm.IntegrationTests.Faults;

/// <summary>
/// A PostgreSQL, RabbitMQ and Swift-S3 of the fault tests' own, started by <c>deploy/local/services</c> on free ports
/// with a state folder under the repository's git-ignored <c>.state/</c> (a folder the postgres user can traverse),
/// stopped and removed at the end. The fault tests kill and restart these services; the shared instance, which other
/// test projects and engineers use at the same time, is never touched.
/// </summary>
public sealed class DedicatedServices : IAsyncLifetime
{
    /// <summary>The services the script can stop, kill and bring back one by one.</summary>
    public enum Service
    {
        Postgres,
        RabbitMq,
        S3,
    }

    // Generous: RabbitMQ's first boot took 105 s on two busy cores.
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromMinutes(6);

    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);
    private string _script = "";
    private string _state = "";

    internal ServicesSettings Settings { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var root = LocalServiceSettings.FindRepositoryRoot()
            ?? throw new InvalidOperationException("No RenderFarm.sln above the tests: the fault tests start deploy/local/services from the repository.");
        _script = Path.Combine(root, "deploy", "local", "services");
        _state = Path.Combine(root, ".state", "faults-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_state);

        _environment["RENDERFARM_STATE"] = _state;
        // Its own node name besides its own epmd, so nothing about it can be mistaken for the shared node.
        _environment["RENDERFARM_RABBITMQ_NODENAME"] = "renderfarm-faults-" + Path.GetFileName(_state)[7..] + "@localhost";
        foreach (var variable in new[]
        {
            "RENDERFARM_PG_PORT", "RENDERFARM_RABBITMQ_PORT", "RENDERFARM_RABBITMQ_MANAGEMENT_PORT", "RENDERFARM_RABBITMQ_DIST_PORT",
            "RENDERFARM_EPMD_PORT", "RENDERFARM_SWIFT_PORT", "RENDERFARM_SWIFT_ACCOUNT_PORT", "RENDERFARM_SWIFT_CONTAINER_PORT",
            "RENDERFARM_SWIFT_OBJECT_PORT", "RENDERFARM_MEMCACHED_PORT",
        })
        {
            _environment[variable] = FreePort().ToString(CultureInfo.InvariantCulture);
        }

        _environment["RENDERFARM_RABBITMQ_CTL_PORT"] = FreePortRange(11).ToString(CultureInfo.InvariantCulture);

        await RunAsync("start");
        Settings = ServicesSettings.From(LocalServiceSettings.ParseEnvFile(Path.Combine(_state, "services.env")));
    }

    /// <summary>SIGKILL of the service's main process (and its direct children).</summary>
    public Task KillAsync(Service service) => RunAsync("kill", Name(service));

    /// <summary>Stops one service; PostgreSQL in immediate mode when asked (no checkpoint: crash recovery on start).</summary>
    public Task StopAsync(Service service, bool immediate = false) =>
        immediate ? RunAsync("stop", Name(service), "--immediate") : RunAsync("stop", Name(service));

    /// <summary>Brings back whatever is down, and waits until every service answers.</summary>
    public Task StartAsync() => RunAsync("start");

    public async Task DisposeAsync()
    {
        try
        {
            await RunAsync("stop");
        }
        finally
        {
            try
            {
                Directory.Delete(_state, recursive: true);
            }
            catch (IOException)
            {
                // A straggler still writing a log: the folder is git-ignored, the next run uses a new one.
            }
        }
    }

    private static string Name(Service service) => service switch
    {
        Service.Postgres => "postgres",
        Service.RabbitMq => "rabbitmq",
        Service.S3 => "s3",
        _ => throw new ArgumentOutOfRangeException(nameof(service)),
    };

    private async Task<string> RunAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo(_script)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        // The shared instance's settings a developer's shell may export must not leak into this one.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("RENDERFARM_", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(key);
        foreach (var (key, value) in _environment)
            start.Environment[key] = value;

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {_script}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(ScriptTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"services {string.Join(' ', arguments)} took over {ScriptTimeout}: {await stderr}");
        }

        if (process.ExitCode != 0)
            throw new InvalidOperationException($"services {string.Join(' ', arguments)} exited {process.ExitCode}: {await stderr}");
        return await stdout;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    // rabbitmqctl takes a range of ports for itself; a random base below the ephemeral range, checked port by port.
    private static int FreePortRange(int count)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var start = Random.Shared.Next(20000, 32000);
            if (Enumerable.Range(start, count).All(IsFree))
                return start;
        }

        throw new InvalidOperationException($"Found no {count} free consecutive ports.");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
