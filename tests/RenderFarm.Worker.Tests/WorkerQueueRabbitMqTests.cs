using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using RenderFarm.Contracts;
using RenderFarm.Messaging;
using RenderFarm.Worker.Consumers;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// The worker's own queue on the real RabbitMQ: work sent to its exchange (as the coordinator sends it) is rendered,
/// and the queue belongs to the process (it expires once unused). A virtual host of its own keeps other test runs'
/// workers away.
/// </summary>
public sealed class WorkerQueueRabbitMqTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly string _vhost = "renderfarm-worker-queue-tests-" + Guid.NewGuid().ToString("N")[..12];
    private IReadOnlyDictionary<string, string> _services = new Dictionary<string, string>();
    private Uri _rabbitMq = null!;

    public async Task InitializeAsync()
    {
        _services = ServiceSettings.Load();
        var broker = new Uri(_services[ServiceSettings.RabbitMq]);
        _rabbitMq = new UriBuilder(broker) { Path = "/" + _vhost }.Uri;
        await ManagementAsync(HttpMethod.Put, $"api/vhosts/{_vhost}", """{}""");
        await ManagementAsync(HttpMethod.Put, $"api/permissions/{_vhost}/{Uri.UnescapeDataString(broker.UserInfo.Split(':')[0])}",
            """{"configure":".*","write":".*","read":".*"}""");
    }

    public async Task DisposeAsync() => await ManagementAsync(HttpMethod.Delete, $"api/vhosts/{_vhost}", null);

    [Fact]
    public async Task A_unit_sent_to_the_worker_s_exchange_is_rendered_and_the_queue_expires_once_unused()
    {
        await using var worker = await WorkerHarness.StartAsync(settings: new()
        {
            ["Bus:Transport"] = "RabbitMq",
            ["Bus:RabbitMq"] = _rabbitMq.ToString(),
        });
        var queue = QueueNames.WorkerQueue(worker.Slots.Slots[0].WorkerId);

        // Sent as the coordinator sends it: through the exchange, which the sender declares durable and not
        // auto-delete; a worker that declared it otherwise would make this send fail.
        var item = TestItems.Item(seed: 51);
        var endpoint = await worker.Bus.GetSendEndpoint(QueueNames.WorkerQueueAddress(queue));
        using (var sending = new CancellationTokenSource(Patience))
        {
            await endpoint.Send(TestItems.Unit(item), sending.Token);
        }

        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Any(r => r.ItemId == item.ItemId), Patience, "the unit sent to the worker's exchange");

        using var declared = JsonDocument.Parse((await ManagementAsync(HttpMethod.Get, $"api/queues/{_vhost}/{queue}", null))!);
        declared.RootElement.GetProperty("arguments").GetProperty("x-expires").GetInt32()
            .ShouldBe((int)WorkerQueueRenderConsumerDefinition.UnusedQueueExpiry.TotalMilliseconds);
        using var exchange = JsonDocument.Parse((await ManagementAsync(HttpMethod.Get, $"api/exchanges/{_vhost}/{queue}", null))!);
        exchange.RootElement.GetProperty("auto_delete").GetBoolean().ShouldBeFalse();
        // Directed work only: nothing published as RenderWorkUnit reaches this queue.
        var bindings = await ManagementAsync(HttpMethod.Get, $"api/queues/{_vhost}/{queue}/bindings", null);
        bindings!.ShouldNotContain("RenderWorkUnit");
    }

    /// <summary>The response body; null for a 404 when <paramref name="allowNotFound"/>.</summary>
    private async Task<string?> ManagementAsync(HttpMethod method, string path, string? json, bool allowNotFound = false)
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
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound && (allowNotFound || method == HttpMethod.Delete))
        {
            return null;
        }

        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            Assert.Fail($"RabbitMQ management {method} {path} answered {(int)response.StatusCode}: {body}");
        }

        return body;
    }
}
