using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Minio;
using Minio.DataModel.Args;
using Npgsql;
using RenderFarm.ModelGenerator;
using RenderFarm.Storage;

namespace RenderFarm.IntegrationTests.Infrastructure;

/// <summary>
/// What one test class has to itself on the shared services: a PostgreSQL database, a RabbitMQ virtual host and an
/// S3 bucket, all named after a fresh id and removed afterwards, so that classes, other engineers' hosts and earlier
/// runs never see each other's jobs, messages or images.
/// </summary>
public sealed class FarmEnvironment : IAsyncLifetime
{
    private static readonly Lazy<string> TinyModelsRoot = new(() =>
    {
        // Shared by every class and run: generating is deterministic and EnsureTiny is safe across processes.
        var root = Path.Combine(Path.GetTempPath(), "renderfarm-integration-models");
        TestModels.EnsureTiny(Path.Combine(root, ModelName));
        return root;
    });

    private readonly string _id = Guid.NewGuid().ToString("N")[..12];
    private readonly ServicesSettings _settings;
    private HttpClient? _management;

    /// <summary>On the shared services (what xunit's class fixtures get).</summary>
    public FarmEnvironment()
        : this(ServicesSettings.Instance)
    {
    }

    /// <summary>On the services <paramref name="settings"/> name (a fault test's own instance).</summary>
    internal FarmEnvironment(ServicesSettings settings) => _settings = settings;

    /// <summary>The model the tests' jobs name; the workers find it under <see cref="ModelsRoot"/>.</summary>
    public const string ModelName = "tiny-sd";

    public string Database => "rf_it_" + _id;

    public string VirtualHost => "rf-it-" + _id;

    public string Bucket => "rf-it-" + _id;

    public string ModelsRoot => TinyModelsRoot.Value;

    public string Postgres => new NpgsqlConnectionStringBuilder(_settings.Postgres) { Database = Database }.ConnectionString;

    public Uri RabbitMq { get; private set; } = null!;

    /// <summary>The settings every host gets: our database, virtual host and bucket, the services' credentials.</summary>
    public IReadOnlyDictionary<string, string> HostEnvironment => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [ServicesSettings.PostgresVariable] = Postgres,
        [ServicesSettings.RabbitMqVariable] = RabbitMq.ToString(),
        [ServicesSettings.ManagementVariable] = _settings.RabbitMqManagement.ToString(),
        [ServicesSettings.S3EndpointVariable] = _settings.S3Endpoint,
        [ServicesSettings.S3AccessKeyVariable] = _settings.S3AccessKey,
        [ServicesSettings.S3SecretKeyVariable] = _settings.S3SecretKey,
        [ServicesSettings.S3SecureVariable] = _settings.S3Secure ? "true" : "false",
        ["RENDERFARM_S3_BUCKET"] = Bucket,
    };

    public S3ArtifactStore CreateStore() => new(new StorageOptions
    {
        Provider = StorageProvider.S3,
        Endpoint = _settings.S3Endpoint,
        AccessKey = _settings.S3AccessKey,
        SecretKey = _settings.S3SecretKey,
        Secure = _settings.S3Secure,
        Bucket = Bucket,
    });

    public async Task InitializeAsync()
    {
        _ = ModelsRoot;
        var settings = _settings;
        var amqp = settings.RabbitMq;
        var credentials = Uri.UnescapeDataString(amqp.UserInfo);
        _management = new HttpClient { BaseAddress = settings.RabbitMqManagement, Timeout = TimeSpan.FromSeconds(15) };
        _management.DefaultRequestHeaders.Authorization =
            new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));

        var vhost = Uri.EscapeDataString(VirtualHost);
        using (var created = await _management.PutAsJsonAsync($"api/vhosts/{vhost}", new { }))
        {
            created.EnsureSuccessStatusCode();
        }

        using (var permitted = await _management.PutAsJsonAsync($"api/permissions/{vhost}/{Uri.EscapeDataString(credentials.Split(':')[0])}",
            new { configure = ".*", write = ".*", read = ".*" }))
        {
            permitted.EnsureSuccessStatusCode();
        }
        RabbitMq = new UriBuilder(amqp) { Path = "/" + vhost }.Uri;

        // Created here rather than by the coordinator's first migration so a connection failure reads as the
        // services being down, not as a host that died at start.
        await ExecuteOnServerAsync($"CREATE DATABASE \"{Database}\"");
    }

    /// <summary>Messages in this virtual host's <c>_error</c> queues (dead letters), by queue; empty when there are none.</summary>
    /// <remarks>The management API's counts trail the queues by its statistics interval (5 s).</remarks>
    public async Task<IReadOnlyDictionary<string, long>> DeadLettersAsync(CancellationToken cancellationToken)
    {
        var queues = await _management!.GetFromJsonAsync<JsonElement>($"api/queues/{Uri.EscapeDataString(VirtualHost)}?columns=name,messages", cancellationToken);
        return queues.EnumerateArray()
            .Where(q => q.GetProperty("name").GetString()!.EndsWith("_error", StringComparison.Ordinal))
            .Select(q => (Name: q.GetProperty("name").GetString()!, Messages: q.TryGetProperty("messages", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetInt64() : 0))
            .Where(q => q.Messages > 0)
            .ToDictionary(q => q.Name, q => q.Messages, StringComparer.Ordinal);
    }

    /// <summary>
    /// Messages in this virtual host's queue <paramref name="queue"/>, ready and unacknowledged (held by a consumer), as
    /// the management API last sampled them; 0 when the queue does not exist (yet).
    /// </summary>
    /// <remarks>The counts trail the queue by the management API's statistics interval (5 s).</remarks>
    public async Task<long> QueueMessagesAsync(string queue, CancellationToken cancellationToken)
    {
        var queues = await _management!.GetFromJsonAsync<JsonElement>($"api/queues/{Uri.EscapeDataString(VirtualHost)}?columns=name,messages", cancellationToken);
        return queues.EnumerateArray()
            .Where(q => q.GetProperty("name").GetString() == queue)
            .Select(q => q.TryGetProperty("messages", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetInt64() : 0)
            .FirstOrDefault();
    }

    /// <summary>
    /// Closes, through RabbitMQ's management API, every connection of this virtual host whose client is the process
    /// <paramref name="processId"/>: a real cut, as a network fault or a broker-side close would make it. Returns how many.
    /// </summary>
    public async Task<int> CloseConnectionsOfAsync(int processId, CancellationToken cancellationToken)
    {
        // The management API learns of a new connection a moment after the broker accepts it (a worker two seconds
        // old was not listed yet in CI): ask again until it lists one of the process's connections.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var closed = await CloseListedConnectionsOfAsync(processId, cancellationToken);
            if (closed > 0 || DateTime.UtcNow > deadline)
                return closed;
            await Task.Delay(250, cancellationToken);
        }
    }

    private async Task<int> CloseListedConnectionsOfAsync(int processId, CancellationToken cancellationToken)
    {
        var ports = ClientPortsOf(processId, RabbitMq.Port);
        var connections = await _management!.GetFromJsonAsync<JsonElement>($"api/vhosts/{Uri.EscapeDataString(VirtualHost)}/connections", cancellationToken);
        var closed = 0;
        foreach (var connection in connections.EnumerateArray())
        {
            if (!ports.Contains(connection.GetProperty("peer_port").GetInt32()))
                continue;
            using var request = new HttpRequestMessage(HttpMethod.Delete, $"api/connections/{Uri.EscapeDataString(connection.GetProperty("name").GetString()!)}");
            request.Headers.Add("X-Reason", "fault test: connection cut");
            using var response = await _management!.SendAsync(request, cancellationToken);
            response.EnsureSuccessStatusCode();
            closed++;
        }

        return closed;
    }

    // The local ports of a process's TCP connections to a server port, from ss (the management API knows the client's
    // address and port, not its process).
    private static HashSet<int> ClientPortsOf(int processId, int serverPort)
    {
        var start = new System.Diagnostics.ProcessStartInfo("ss", "-tnpH state established") { RedirectStandardOutput = true, UseShellExecute = false };
        using var ss = System.Diagnostics.Process.Start(start)!;
        var text = ss.StandardOutput.ReadToEnd();
        ss.WaitForExit();
        var ports = new HashSet<int>();
        foreach (var line in text.Split('\n'))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 5 || !line.Contains($"pid={processId},", StringComparison.Ordinal))
                continue;
            var local = fields[2];
            var peer = fields[3];
            if (peer.EndsWith(":" + serverPort.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))
                ports.Add(int.Parse(local[(local.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        }

        return ports;
    }

    /// <summary>Rows of the items table, the ledger the coordinator keeps; the tests read attempts from it.</summary>
    public async Task<IReadOnlyList<ItemLedgerRow>> ItemsAsync(Guid jobId, CancellationToken cancellationToken)
    {
        // Unpooled: a fault test restarts the server, which leaves pooled connections broken.
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(Postgres) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "SELECT \"index\", attempt, state, worker_id, artifact_key FROM items WHERE job_id = @job ORDER BY \"index\"", connection);
        command.Parameters.AddWithValue("job", jobId);
        var rows = new List<ItemLedgerRow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new ItemLedgerRow(
                reader.GetInt64(0),
                reader.GetInt32(1),
                reader.GetValue(2).ToString()!,
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4)));
        }

        return rows;
    }

    public async Task DisposeAsync()
    {
        // Best effort each: one service failing to clean up must not hide the others, or the test's own failure.
        try
        {
            await ExecuteOnServerAsync($"DROP DATABASE IF EXISTS \"{Database}\" WITH (FORCE)");
        }
        catch (NpgsqlException)
        {
        }

        if (_management is not null)
        {
            try
            {
                using (await _management.DeleteAsync($"api/vhosts/{Uri.EscapeDataString(VirtualHost)}"))
                {
                }
            }
            catch (HttpRequestException)
            {
            }

            _management.Dispose();
        }

        try
        {
            await DeleteBucketAsync();
        }
        catch (Minio.Exceptions.MinioException)
        {
        }
    }

    private async Task ExecuteOnServerAsync(string sql)
    {
        var server = new NpgsqlConnectionStringBuilder(_settings.Postgres) { Database = "postgres", Pooling = false };
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task DeleteBucketAsync()
    {
        var settings = _settings;
        using var client = (MinioClient)new MinioClient()
            .WithEndpoint(settings.S3Endpoint)
            .WithCredentials(settings.S3AccessKey, settings.S3SecretKey)
            .WithSSL(settings.S3Secure)
            .WithRegion("us-east-1")
            .Build();
        if (!await client.BucketExistsAsync(new BucketExistsArgs().WithBucket(Bucket)))
            return;
        using var store = CreateStore();
        await foreach (var artifact in store.ListAsync("", CancellationToken.None))
            await store.DeleteAsync(artifact.Key, CancellationToken.None);
        await client.RemoveBucketAsync(new RemoveBucketArgs().WithBucket(Bucket));
    }
}

/// <summary>One row of the coordinator's items table.</summary>
public sealed record ItemLedgerRow(long Index, int Attempt, string State, string? WorkerId, string? ArtifactKey);
