using System.Collections.Concurrent;
using System.Threading.Channels;
using MassTransit;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Contracts;
using RenderFarm.Messaging;

namespace RenderFarm.Coordinator.Tests.Infrastructure;

/// <summary>
/// The coordinator host in-process on the in-memory bus and a temporary local artifact folder, with short
/// leases, backoffs and small limits so the behaviour tests run in seconds. The database comes from the fixture.
/// </summary>
public sealed class CoordinatorFactory(IReadOnlyDictionary<string, string?> settings) : WebApplicationFactory<Program>
{
    public const int WorkUnitSize = 3;
    public const int MaxAttempts = 2;
    public const int MaxCount = 100;
    public const int MaxSweepItems = 1000;
    public static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(2);

    public string StorageRoot { get; } = Path.Combine(Path.GetTempPath(), "rf-coord-tests", Guid.NewGuid().ToString("N"));

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        var all = new Dictionary<string, string?>
        {
            ["Bus:Transport"] = "InMemory",
            ["Storage:Provider"] = "Local",
            ["Storage:LocalRoot"] = StorageRoot,
            ["Coordinator:Models:0"] = "tiny-sd",
            ["Coordinator:Models:1"] = "sd15",
            ["Coordinator:WorkUnitSize"] = WorkUnitSize.ToString(),
            ["Coordinator:MaxCount"] = MaxCount.ToString(),
            ["Coordinator:MaxSweepItems"] = MaxSweepItems.ToString(),
            ["Coordinator:MaxAttempts"] = MaxAttempts.ToString(),
            ["Coordinator:HeartbeatInterval"] = "00:00:01",
            ["Coordinator:LeaseDuration"] = LeaseDuration.ToString(),
            ["Coordinator:InitialBackoff"] = "00:00:00.100",
            ["Coordinator:MaxBackoff"] = "00:00:01",
            ["Coordinator:Rescuer:Interval"] = "00:00:00.200",
            ["Coordinator:Dispatcher:PollInterval"] = "00:00:00.100",
            // The probe stands in for workers but starts nothing, so a window would fill with earlier tests' units:
            // the behaviour tests see every unit at once, as before; SchedulingTests run with the default window.
            ["Coordinator:Dispatcher:UnitsPerWorker"] = "100000",
            ["Coordinator:Progress:FlushInterval"] = "00:00:00.200",
            ["Coordinator:Datasets:Interval"] = "00:00:00.200",
            ["Logging:LogLevel:Default"] = "Warning",
            // The behaviour tests run an open farm, as before keys existed; AuthTests turn keys on.
            ["Coordinator:Auth:RequireApiKeys"] = "false",
        };
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }

        foreach (var (key, value) in all)
        {
            builder.UseSetting(key, value);
        }
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && Directory.Exists(StorageRoot))
        {
            Directory.Delete(StorageRoot, recursive: true);
        }
    }
}

/// <summary>
/// Stands in for the workers on the bus: receives every <see cref="RenderWorkUnit"/> sent to the render queue and
/// every <see cref="JobCanceled"/>, sorted by job so tests of one class stay independent of each other.
/// </summary>
public sealed class BusProbe
{
    private readonly ConcurrentDictionary<Guid, Channel<RenderWorkUnit>> _units = new();
    private readonly ConcurrentDictionary<Guid, JobCanceled> _canceled = new();
    private readonly Channel<RenderWorkUnit> _arrivals = Channel.CreateUnbounded<RenderWorkUnit>();

    public IBus Bus { get; private set; } = null!;

    public async Task ConnectAsync(IServiceProvider services)
    {
        Bus = services.GetRequiredService<IBus>();
        var render = Bus.ConnectReceiveEndpoint(QueueNames.Render, e => e.Handler<RenderWorkUnit>(context =>
        {
            UnitsOf(context.Message.JobId).Writer.TryWrite(context.Message);
            _arrivals.Writer.TryWrite(context.Message);
            return Task.CompletedTask;
        }));
        await render.Ready;
        var canceled = Bus.ConnectReceiveEndpoint("renderfarm-tests-job-canceled", e => e.Handler<JobCanceled>(context =>
        {
            _canceled[context.Message.JobId] = context.Message;
            return Task.CompletedTask;
        }));
        await canceled.Ready;
    }

    public bool WasCanceled(Guid jobId) => _canceled.ContainsKey(jobId);

    /// <summary>The <see cref="JobCanceled"/> event received for <paramref name="jobId"/>, if any.</summary>
    public JobCanceled? CanceledEvent(Guid jobId) => _canceled.GetValueOrDefault(jobId);

    /// <summary>The next unit sent for <paramref name="jobId"/>, or a failure after <paramref name="timeout"/>.</summary>
    public async Task<RenderWorkUnit> NextUnitAsync(Guid jobId, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        try
        {
            return await UnitsOf(jobId).Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No work unit for job {jobId} arrived within {timeout ?? TimeSpan.FromSeconds(15)}.");
        }
    }

    /// <summary>The next unit sent to the shared queue for any job, in the order they arrived.</summary>
    public async Task<RenderWorkUnit> NextArrivalAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        try
        {
            return await _arrivals.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No work unit arrived within {timeout ?? TimeSpan.FromSeconds(15)}.");
        }
    }

    /// <summary>Forgets the arrivals so far (each test reads only its own).</summary>
    public void ClearArrivals()
    {
        while (_arrivals.Reader.TryRead(out _))
        {
        }
    }

    /// <summary>Units for <paramref name="jobId"/> until they hold <paramref name="items"/> items.</summary>
    public async Task<List<RenderWorkUnit>> UnitsAsync(Guid jobId, int items)
    {
        var units = new List<RenderWorkUnit>();
        while (units.Sum(u => u.Items.Count) < items)
        {
            units.Add(await NextUnitAsync(jobId));
        }

        return units;
    }

    /// <summary>True when a unit for the job arrives within <paramref name="wait"/>.</summary>
    public async Task<bool> AnyUnitWithinAsync(Guid jobId, TimeSpan wait)
    {
        try
        {
            await NextUnitAsync(jobId, wait);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private Channel<RenderWorkUnit> UnitsOf(Guid jobId) => _units.GetOrAdd(jobId, _ => Channel.CreateUnbounded<RenderWorkUnit>());
}
