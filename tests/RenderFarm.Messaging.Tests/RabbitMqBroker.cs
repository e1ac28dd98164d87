using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using RenderFarm.Testing;

namespace RenderFarm.Messaging.Tests;

/// <summary>
/// The real RabbitMQ that <c>deploy/local/services start</c> runs, with a virtual host of its own per test
/// class so that these tests and other engineers' hosts on the same broker never consume each other's messages.
/// </summary>
public sealed class RabbitMqBroker : IAsyncLifetime
{
    private const string ManagementVariable = "RENDERFARM_RABBITMQ_MANAGEMENT";

    private HttpClient? _management;

    /// <summary>AMQP URI of the test virtual host.</summary>
    public Uri Amqp { get; private set; } = null!;

    public string VirtualHost { get; } = "renderfarm-test-" + Guid.NewGuid().ToString("N")[..12];

    public HttpClient Management => _management ?? throw new InvalidOperationException("The broker fixture has not started.");

    public async Task InitializeAsync()
    {
        var amqp = new Uri(LocalServiceSettings.Require(Messaging.BusOptions.RabbitMqEnvironmentVariable));
        var management = new Uri(LocalServiceSettings.Require(ManagementVariable));

        var credentials = Uri.UnescapeDataString(amqp.UserInfo);
        _management = new HttpClient { BaseAddress = management, Timeout = TimeSpan.FromSeconds(15) };
        _management.DefaultRequestHeaders.Authorization =
            new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));

        var user = credentials.Split(':')[0];
        var vhost = Uri.EscapeDataString(VirtualHost);
        (await _management.PutAsJsonAsync($"api/vhosts/{vhost}", new { })).EnsureSuccessStatusCode();
        (await _management.PutAsJsonAsync($"api/permissions/{vhost}/{Uri.EscapeDataString(user)}",
            new { configure = ".*", write = ".*", read = ".*" })).EnsureSuccessStatusCode();

        Amqp = new UriBuilder(amqp) { Path = "/" + vhost }.Uri;
    }

    public async Task<HttpStatusCode> ExchangeStatus(string exchangeName)
    {
        using var response = await Management.GetAsync($"api/exchanges/{Uri.EscapeDataString(VirtualHost)}/{Uri.EscapeDataString(exchangeName)}");
        return response.StatusCode;
    }

    /// <summary>Publishes raw bytes to an exchange through the management API, as a producer without our serializer would.</summary>
    public async Task PublishRaw(string exchangeName, string contentType, string payload)
    {
        using var response = await Management.PostAsJsonAsync(
            $"api/exchanges/{Uri.EscapeDataString(VirtualHost)}/{Uri.EscapeDataString(exchangeName)}/publish",
            new
            {
                properties = new { content_type = contentType, delivery_mode = 2 },
                routing_key = "",
                payload,
                payload_encoding = "string",
            });
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<Dictionary<string, bool>>();
        body.ShouldNotBeNull()["routed"].ShouldBeTrue($"nothing is bound to {exchangeName}");
    }

    public async Task DisposeAsync()
    {
        if (_management is null)
            return;
        using (await _management.DeleteAsync($"api/vhosts/{Uri.EscapeDataString(VirtualHost)}"))
        {
        }

        _management.Dispose();
    }
}
