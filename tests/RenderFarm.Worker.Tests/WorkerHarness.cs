using System.Collections.Concurrent;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RenderFarm.Contracts;
using RenderFarm.Messaging;
using RenderFarm.ModelGenerator;
using RenderFarm.Storage;
using RenderFarm.Worker.Extensions;
using RenderFarm.Worker.Slots;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// A worker host composed as <c>renderfarm serve</c> composes it: the worker services and consumers on the farm's
/// bus (in-memory here), the local-folder store, and a recorder of every message the worker publishes.
/// </summary>
internal sealed class WorkerHarness : IAsyncDisposable
{
    private readonly TempFolder _artifacts;
    private bool _stopped;

    private WorkerHarness(IHost host, PublishedMessages published, TempFolder artifacts)
    {
        Host = host;
        Published = published;
        _artifacts = artifacts;
    }

    public IHost Host { get; }

    public PublishedMessages Published { get; }

    public IBus Bus => Host.Services.GetRequiredService<IBus>();

    public IArtifactStore Store => Host.Services.GetRequiredService<IArtifactStore>();

    public WorkerSlotPool Slots => Host.Services.GetRequiredService<WorkerSlotPool>();

    public static async Task<WorkerHarness> StartAsync(
        Action<WorkerOptions>? configure = null,
        Dictionary<string, string?>? settings = null,
        Action<IBusRegistrationConfigurator>? moreConsumers = null,
        Action<IServiceCollection>? moreServices = null)
    {
        var published = new PublishedMessages();
        var artifacts = new TempFolder();
        var configuration = new Dictionary<string, string?>
        {
            ["Bus:Transport"] = nameof(BusTransport.InMemory),
            ["Storage:Provider"] = nameof(StorageProvider.Local),
            ["Storage:LocalRoot"] = artifacts.Path,
            ["Worker:Id"] = "test-worker-" + Guid.NewGuid().ToString("N")[..8],
            ["Worker:ModelsRoot"] = SharedModels.Root,
            ["Worker:HeartbeatInterval"] = "00:00:01",
            ["Worker:ShutdownGrace"] = "00:00:30",
        };
        foreach (var (key, value) in settings ?? [])
        {
            configuration[key] = value;
        }

        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(configuration);
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("RENDERFARM_TEST_LOGS") == "1")
        {
            builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Debug);
        }
        builder.Services.AddRenderFarmStorage(builder.Configuration);
        builder.Services.AddRenderFarmWorkerServices(builder.Configuration, configure);
        builder.Services.AddRenderFarmBus(builder.Configuration, bus =>
        {
            bus.AddRenderFarmWorkerConsumers();
            moreConsumers?.Invoke(bus);
        });
        moreServices?.Invoke(builder.Services);
        var host = builder.Build();
        published.Store = host.Services.GetRequiredService<IArtifactStore>();
        host.Services.GetRequiredService<IBus>().ConnectPublishObserver(published);
        await host.StartAsync();
        return new WorkerHarness(host, published, artifacts);
    }

    public async Task SendAsync(RenderWorkUnit unit)
    {
        var endpoint = await Bus.GetSendEndpoint(QueueNames.RenderAddress);
        await endpoint.Send(unit);
    }

    private bool _disposed;

    public async Task StopAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            await Host.StopAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await StopAsync();
        Host.Dispose();
        _artifacts.Dispose();
    }
}

/// <summary>The tiny model, generated once per machine into a folder the tests share.</summary>
internal static class SharedModels
{
    private static readonly Lazy<string> Folder = new(() =>
    {
        var root = Path.Combine(Path.GetTempPath(), "renderfarm-worker-tests", "models");
        TestModels.EnsureTiny(Path.Combine(root, WorkerOptions.TinyModelName));
        return root;
    });

    public static string Root => Folder.Value;
}

/// <summary>
/// Every message the worker publishes, as it is published. For <see cref="ItemRendered"/> it also notes whether the
/// artifact was already in the store at that moment (the worker must upload before it reports).
/// </summary>
/// <summary>
/// What the worker published. <see cref="All{T}"/> reads reports as the coordinator records them: the entries of an
/// <see cref="ItemsStarted"/> or <see cref="ItemsRendered"/> count as the <see cref="ItemStarted"/> and
/// <see cref="ItemRendered"/> they carry, so a test of what is reported holds for either report mode;
/// <see cref="Sent{T}"/> reads the messages as they went on the wire.
/// </summary>
internal sealed class PublishedMessages : IPublishObserver
{
    private readonly ConcurrentQueue<(object Message, DateTimeOffset At, bool Entry)> _messages = new();
    private readonly ConcurrentDictionary<Guid, bool> _artifactPresent = new();
    private readonly SemaphoreSlim _changed = new(0);

    public IArtifactStore? Store { get; set; }

    public IReadOnlyList<T> All<T>() => _messages.Select(m => m.Message).OfType<T>().ToList();

    /// <summary>Messages of <typeparamref name="T"/> as published, without the entries of per-unit reports.</summary>
    public IReadOnlyList<T> Sent<T>() => _messages.Where(m => !m.Entry).Select(m => m.Message).OfType<T>().ToList();

    /// <summary>Every message that went over the wire, in the order it was published.</summary>
    public List<object> SentInOrder() => _messages.Where(m => !m.Entry).Select(m => m.Message).ToList();

    public bool ArtifactExistedWhenReported(Guid itemId) => _artifactPresent.TryGetValue(itemId, out var present) && present;

    /// <summary>Waits until <paramref name="condition"/> holds over the published messages.</summary>
    public async Task WaitUntilAsync(Func<PublishedMessages, bool> condition, TimeSpan timeout, string what)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (!condition(this))
        {
            try
            {
                await _changed.WaitAsync(TimeSpan.FromMilliseconds(200), cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Timed out after {timeout} waiting for {what}. Published: " +
                    string.Join(", ", _messages.GroupBy(m => m.Message.GetType().Name).Select(g => $"{g.Key}×{g.Count()}")));
            }
        }
    }

    public async Task PrePublish<T>(PublishContext<T> context)
        where T : class
    {
        if (Store is null)
        {
            return;
        }

        IEnumerable<ItemRendered> images = context.Message switch
        {
            ItemRendered rendered => [rendered],
            ItemsRendered gathered => gathered.Items,
            _ => [],
        };
        foreach (var image in images)
        {
            _artifactPresent[image.ItemId] = await Store.ExistsAsync(image.ArtifactKey, CancellationToken.None);
        }
    }

    public Task PostPublish<T>(PublishContext<T> context)
        where T : class
    {
        var at = DateTimeOffset.UtcNow;
        _messages.Enqueue((context.Message, at, false));
        IEnumerable<object> entries = context.Message switch
        {
            ItemsStarted starts => starts.Items,
            ItemsRendered images => images.Items,
            _ => [],
        };
        foreach (var entry in entries)
        {
            _messages.Enqueue((entry, at, true));
        }

        _changed.Release();
        return Task.CompletedTask;
    }

    public Task PublishFault<T>(PublishContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}
