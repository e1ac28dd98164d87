using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;

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
        var settings = ServicesSettings.Load();
        var amqp = new Uri(settings.Require(Messaging.BusOptions.RabbitMqEnvironmentVariable));
        var management = new Uri(settings.Require(ManagementVariable));

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

/// <summary>
/// Service settings from the environment, else from <c>.state/services/services.env</c> (written by
/// <c>deploy/local/services start</c>) in the folder holding RenderFarm.sln.
/// </summary>
internal sealed class ServicesSettings
{
    private const string StartHint = "Run `deploy/local/services start` (or export its settings) before these tests.";

    private readonly Dictionary<string, string> _fromFile;
    private readonly string _source;

    private ServicesSettings(Dictionary<string, string> fromFile, string source)
    {
        _fromFile = fromFile;
        _source = source;
    }

    public static ServicesSettings Load()
    {
        var root = FindRepositoryRoot();
        var state = Environment.GetEnvironmentVariable("RENDERFARM_STATE")
            ?? (root is null ? null : Path.Combine(root, ".state", "services"));
        var file = state is null ? null : Path.Combine(state, "services.env");

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (file is not null && File.Exists(file))
        {
            foreach (var raw in File.ReadAllLines(file))
            {
                var line = raw.Trim();
                if (line.StartsWith("export ", StringComparison.Ordinal))
                    line = line["export ".Length..];
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0 || line.StartsWith('#'))
                    continue;
                values[line[..eq]] = line[(eq + 1)..].Trim('\'', '"');
            }
        }

        return new ServicesSettings(values, file ?? "(no RenderFarm.sln found above the test assembly or its source folder)");
    }

    public string Require(string name)
    {
        var value = Environment.GetEnvironmentVariable(name);
        if (!string.IsNullOrWhiteSpace(value))
            return value;
        if (_fromFile.TryGetValue(name, out value) && !string.IsNullOrWhiteSpace(value))
            return value;
        throw new InvalidOperationException($"{name} is not set and not in {_source}. {StartHint}");
    }

    private static string? FindRepositoryRoot()
    {
        var sourceDirectory = typeof(ServicesSettings).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "SourceDirectory")?.Value;

        // The build output first (tests run from a copy of the repository), then the source tree the
        // assembly was built from (an --artifacts-path outside the repository).
        foreach (var start in new[] { AppContext.BaseDirectory, sourceDirectory })
        {
            for (var dir = start is null ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "RenderFarm.sln")))
                    return dir.FullName;
            }
        }

        return null;
    }
}
