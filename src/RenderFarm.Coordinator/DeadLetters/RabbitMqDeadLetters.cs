using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using RenderFarm.Messaging;

namespace RenderFarm.Coordinator.DeadLetters;

/// <summary>One queue's dead letters: the <c>_error</c> queue MassTransit moved failed messages to, and where they came from.</summary>
/// <param name="Queue">The consumer's queue the messages failed on (where a replay puts them back).</param>
/// <param name="ErrorQueue">The dead-letter queue, <c>Queue</c> + <c>_error</c>.</param>
/// <param name="Messages">Messages waiting in it.</param>
public sealed record DeadLetterQueue(string Queue, string ErrorQueue, long Messages);

/// <summary>The farm's dead letters: every <c>_error</c> queue of the bus's virtual host with its count.</summary>
/// <param name="Total">Messages in all of them.</param>
/// <param name="Queues">Each <c>_error</c> queue, empty ones included.</param>
public sealed record DeadLetterReport(long Total, IReadOnlyList<DeadLetterQueue> Queues);

/// <summary>What a replay moved back.</summary>
/// <param name="Queue">The queue the messages went back to.</param>
/// <param name="Replayed">Messages moved from its <c>_error</c> queue.</param>
public sealed record DeadLetterReplay(string Queue, long Replayed);

/// <summary>The dead-letter queues are not readable here (the in-memory bus, or no management API configured).</summary>
public sealed class DeadLettersUnavailableException(string message) : Exception(message);

/// <summary>
/// Reads and replays the bus's dead letters through RabbitMQ's management HTTP API (<see cref="BusOptions.RabbitMqManagement"/>,
/// with the AMQP URI's credentials and virtual host).
/// </summary>
/// <remarks>
/// Replay is written here rather than left to a shovel: the shovel plugins are not enabled on every broker (nor on
/// the local one), while the management API, which the farm already needs for its counts, can move messages one at a
/// time: each is taken with <c>ack_requeue_false</c> and published to its queue through the default exchange, and put
/// back into the <c>_error</c> queue if that publish is not routed, so a failed replay loses nothing. MassTransit's
/// fault headers are dropped on the way, so a message that fails again is described by its new fault alone.
/// </remarks>
public sealed class RabbitMqDeadLetters(HttpClient http, IOptions<BusOptions> bus)
{
    public const string ErrorSuffix = "_error";

    public async Task<DeadLetterReport> ListAsync(CancellationToken cancellationToken)
    {
        var (client, vhost) = Management();
        var queues = await client.GetFromJsonAsync<JsonElement>($"api/queues/{vhost}?columns=name,messages", cancellationToken);
        var list = queues.EnumerateArray()
            .Select(q => (Name: q.GetProperty("name").GetString()!, Messages: q.TryGetProperty("messages", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetInt64() : 0))
            .Where(q => q.Name.EndsWith(ErrorSuffix, StringComparison.Ordinal))
            .Select(q => new DeadLetterQueue(q.Name[..^ErrorSuffix.Length], q.Name, q.Messages))
            .OrderBy(q => q.Queue, StringComparer.Ordinal)
            .ToList();
        return new DeadLetterReport(list.Sum(q => q.Messages), list);
    }

    /// <summary>Moves the messages of <paramref name="queue"/>'s <c>_error</c> queue back to it, at most as many as it held when called.</summary>
    /// <exception cref="KeyNotFoundException">There is no such <c>_error</c> queue.</exception>
    public async Task<DeadLetterReplay> ReplayAsync(string queue, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(queue);
        var (client, vhost) = Management();
        var errorQueue = queue + ErrorSuffix;
        using var info = await client.GetAsync($"api/queues/{vhost}/{Uri.EscapeDataString(errorQueue)}?columns=messages", cancellationToken);
        if (info.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            throw new KeyNotFoundException($"There is no dead-letter queue '{errorQueue}'.");
        }
        info.EnsureSuccessStatusCode();

        // The count trails by the statistics interval; taking until the queue answers empty is what bounds the loop,
        // this bound only keeps messages that fail again at once from being replayed twice in one call.
        var held = (await info.Content.ReadFromJsonAsync<JsonElement>(cancellationToken)).GetProperty("messages").GetInt64();
        long replayed = 0;
        while (replayed < Math.Max(held, 1) * 2)
        {
            using var got = await client.PostAsJsonAsync($"api/queues/{vhost}/{Uri.EscapeDataString(errorQueue)}/get",
                new { count = 1, ackmode = "ack_requeue_false", encoding = "base64", truncate = (int?)null }, cancellationToken);
            got.EnsureSuccessStatusCode();
            var messages = await got.Content.ReadFromJsonAsync<JsonArray>(cancellationToken);
            if (messages is not [JsonObject message])
            {
                break;
            }

            var properties = message["properties"] as JsonObject ?? [];
            if (properties["headers"] is JsonObject headers)
            {
                foreach (var key in headers.Select(h => h.Key).Where(k => k.StartsWith("MT-Fault", StringComparison.Ordinal) || k == "MT-Reason").ToList())
                {
                    headers.Remove(key);
                }
            }

            var payload = message["payload"]!.GetValue<string>();
            if (!await PublishAsync(client, vhost, queue, properties, payload, cancellationToken))
            {
                // Not routed (the queue is gone): back where it was, and stop.
                await PublishAsync(client, vhost, errorQueue, properties, payload, cancellationToken);
                break;
            }

            replayed++;
        }

        return new DeadLetterReplay(queue, replayed);
    }

    private static async Task<bool> PublishAsync(HttpClient client, string vhost, string routingKey, JsonObject properties, string payload, CancellationToken cancellationToken)
    {
        using var published = await client.PostAsJsonAsync($"api/exchanges/{vhost}/amq.default/publish",
            new JsonObject
            {
                ["properties"] = properties.DeepClone(),
                ["routing_key"] = routingKey,
                ["payload"] = payload,
                ["payload_encoding"] = "base64",
            }, cancellationToken);
        published.EnsureSuccessStatusCode();
        return (await published.Content.ReadFromJsonAsync<JsonElement>(cancellationToken)).GetProperty("routed").GetBoolean();
    }

    private (HttpClient Client, string VirtualHost) Management()
    {
        var options = bus.Value;
        if (options.Transport != BusTransport.RabbitMq || options.RabbitMq is null)
        {
            throw new DeadLettersUnavailableException("Dead letters are kept by RabbitMQ; this farm runs on the in-memory bus, which has none to show.");
        }
        if (options.RabbitMqManagement is null)
        {
            throw new DeadLettersUnavailableException(
                $"Set {BusOptions.SectionName}:{nameof(BusOptions.RabbitMqManagement)} (or {BusOptions.RabbitMqManagementEnvironmentVariable}) to RabbitMQ's management API to read dead letters.");
        }

        if (http.BaseAddress is null)
        {
            http.BaseAddress = options.RabbitMqManagement;
            var credentials = Uri.UnescapeDataString(options.RabbitMq.UserInfo is { Length: > 0 } user ? user : "guest:guest");
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));
        }

        var path = options.RabbitMq.AbsolutePath.TrimStart('/');
        return (http, Uri.EscapeDataString(path.Length == 0 ? "/" : Uri.UnescapeDataString(path)));
    }
}
