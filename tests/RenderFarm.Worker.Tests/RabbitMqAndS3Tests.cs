using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// Against the real RabbitMQ and S3 (Swift) that <c>deploy/local/services start</c> runs. Each test gets its own
/// RabbitMQ virtual host, so workers of other test runs on the same broker cannot take its units.
/// </summary>
public sealed class RabbitMqAndS3Tests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly string _vhost = "renderfarm-worker-tests-" + Guid.NewGuid().ToString("N")[..12];
    private IReadOnlyDictionary<string, string> _services = new Dictionary<string, string>();
    private Uri _rabbitMq = null!;

    public async Task InitializeAsync()
    {
        _services = ServiceSettings.Load();
        var broker = new Uri(_services[ServiceSettings.RabbitMq]);
        _rabbitMq = new UriBuilder(broker) { Path = "/" + _vhost }.Uri;
        await ManagementAsync(HttpMethod.Put, $"api/vhosts/{_vhost}", null);
        await ManagementAsync(HttpMethod.Put, $"api/permissions/{_vhost}/{Uri.UnescapeDataString(broker.UserInfo.Split(':')[0])}",
            """{"configure":".*","write":".*","read":".*"}""");
    }

    public async Task DisposeAsync() => await ManagementAsync(HttpMethod.Delete, $"api/vhosts/{_vhost}", null);

    [Fact]
    public async Task A_unit_sent_over_RabbitMQ_is_rendered_and_its_png_lands_in_the_bucket()
    {
        var wire = new WireMessages();
        await using var worker = await StartWorkerAsync("00:00:30", wire);
        var prefix = $"tests/worker/{Guid.NewGuid():N}/";
        var items = new[]
        {
            TestItems.Item(seed: 201, outputKey: prefix + "000000.png"),
            TestItems.Item(seed: 202, outputKey: prefix + "000001.png"),
        };

        await worker.SendAsync(TestItems.Unit(items));
        await Poll.UntilAsync(() => wire.Rendered.Count == 2, Patience, "two ItemRendered over RabbitMQ");

        foreach (var item in items)
        {
            wire.Rendered.ShouldContain(r => r.ItemId == item.ItemId && r.ArtifactKey == item.OutputKey);
            await using var stream = await worker.Store.OpenReadAsync(item.OutputKey, CancellationToken.None);
            using var png = new MemoryStream();
            await stream.CopyToAsync(png);
            PngCodec.ReadTextChunks(png.ToArray())[PngCodec.ParametersKeyword].ShouldContain($"Seed: {item.Seed}");
            wire.Rendered.Single(r => r.ItemId == item.ItemId).Sha256.ShouldBe(Convert.ToHexStringLower(SHA256.HashData(png.ToArray())));
            await worker.Store.DeleteAsync(item.OutputKey, CancellationToken.None);
        }

        wire.Started.Select(s => s.ItemId).ShouldBe(items.Select(i => i.ItemId), ignoreOrder: true);
        // The default report mode is per unit: the starts crossed the broker as ItemsStarted (under its wire name), one
        // per render batch here since each tiny render outlasts the report window.
        wire.UnitStarts.ShouldBeInRange(1, items.Length);
        wire.Heartbeats.ShouldContain(h => h.WorkerId == worker.Slots.Slots[0].WorkerId);
    }

    private Task<WorkerHarness> StartWorkerAsync(string grace, WireMessages wire)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Bus:Transport"] = "RabbitMq",
            ["Bus:RabbitMq"] = _rabbitMq.ToString(),
            ["Storage:Provider"] = "S3",
            ["Worker:ShutdownGrace"] = grace,
        };
        foreach (var (name, value) in _services)
        {
            settings[name] = value;
        }

        return WorkerHarness.StartAsync(
            settings: settings,
            moreConsumers: bus => bus.AddConsumer<WireRecorder, WireRecorderDefinition>(),
            moreServices: services => services.AddSingleton(wire));
    }

    private async Task ManagementAsync(HttpMethod method, string path, string? json)
    {
        if (!_services.TryGetValue(ServiceSettings.RabbitMqManagement, out var management))
        {
            Assert.Fail($"{ServiceSettings.RabbitMqManagement} is not set; run `deploy/local/services start` (it enables the management plugin).");
        }

        var broker = new Uri(_services[ServiceSettings.RabbitMq]);
        using var http = new HttpClient { BaseAddress = new Uri(management) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(
            "Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.UnescapeDataString(broker.UserInfo))));
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await http.SendAsync(request);
        if (!response.IsSuccessStatusCode && !(method == HttpMethod.Delete && response.StatusCode == System.Net.HttpStatusCode.NotFound))
        {
            Assert.Fail($"RabbitMQ management {method} {path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }
}

/// <summary>What arrived over the broker, as a coordinator would receive it.</summary>
internal sealed class WireMessages
{
    public ConcurrentBag<ItemStarted> Started { get; } = [];
    public ConcurrentBag<ItemRendered> Rendered { get; } = [];
    public ConcurrentBag<WorkerHeartbeat> Heartbeats { get; } = [];

    /// <summary><see cref="ItemsStarted"/> messages received (their entries are in <see cref="Started"/>).</summary>
    public int UnitStarts => Volatile.Read(ref _unitStarts);

    private int _unitStarts;

    public void CountUnitStart() => Interlocked.Increment(ref _unitStarts);
}

internal sealed class WireRecorder(WireMessages messages)
    : IConsumer<ItemStarted>, IConsumer<ItemRendered>, IConsumer<ItemsStarted>, IConsumer<ItemsRendered>, IConsumer<WorkerHeartbeat>
{
    public Task Consume(ConsumeContext<ItemsStarted> context)
    {
        foreach (var start in context.Message.Items)
        {
            messages.Started.Add(start);
        }

        messages.CountUnitStart();
        return Task.CompletedTask;
    }

    public Task Consume(ConsumeContext<ItemsRendered> context)
    {
        foreach (var image in context.Message.Items)
        {
            messages.Rendered.Add(image);
        }

        return Task.CompletedTask;
    }

    public Task Consume(ConsumeContext<ItemStarted> context)
    {
        messages.Started.Add(context.Message);
        return Task.CompletedTask;
    }

    public Task Consume(ConsumeContext<ItemRendered> context)
    {
        messages.Rendered.Add(context.Message);
        return Task.CompletedTask;
    }

    public Task Consume(ConsumeContext<WorkerHeartbeat> context)
    {
        messages.Heartbeats.Add(context.Message);
        return Task.CompletedTask;
    }
}

/// <summary>A queue of its own per worker host, so each recorder sees every event.</summary>
internal sealed class WireRecorderDefinition : ConsumerDefinition<WireRecorder>
{
    public WireRecorderDefinition() =>
        Endpoint(e =>
        {
            e.InstanceId = Guid.NewGuid().ToString("N")[..8];
            e.Temporary = true;
        });
}
