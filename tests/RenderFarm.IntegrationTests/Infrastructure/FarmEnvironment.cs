using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
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
    private HttpClient? _management;

    /// <summary>The model the tests' jobs name; the workers find it under <see cref="ModelsRoot"/>.</summary>
    public const string ModelName = "tiny-sd";

    public string Database => "rf_it_" + _id;

    public string VirtualHost => "rf-it-" + _id;

    public string Bucket => "rf-it-" + _id;

    public string ModelsRoot => TinyModelsRoot.Value;

    public string Postgres => new NpgsqlConnectionStringBuilder(ServicesSettings.Instance.Postgres) { Database = Database }.ConnectionString;

    public Uri RabbitMq { get; private set; } = null!;

    /// <summary>The settings every host gets: our database, virtual host and bucket, the services' credentials.</summary>
    public IReadOnlyDictionary<string, string> HostEnvironment => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [ServicesSettings.PostgresVariable] = Postgres,
        [ServicesSettings.RabbitMqVariable] = RabbitMq.ToString(),
        [ServicesSettings.S3EndpointVariable] = ServicesSettings.Instance.S3Endpoint,
        [ServicesSettings.S3AccessKeyVariable] = ServicesSettings.Instance.S3AccessKey,
        [ServicesSettings.S3SecretKeyVariable] = ServicesSettings.Instance.S3SecretKey,
        [ServicesSettings.S3SecureVariable] = ServicesSettings.Instance.S3Secure ? "true" : "false",
        ["RENDERFARM_S3_BUCKET"] = Bucket,
    };

    public S3ArtifactStore CreateStore() => new(new StorageOptions
    {
        Provider = StorageProvider.S3,
        Endpoint = ServicesSettings.Instance.S3Endpoint,
        AccessKey = ServicesSettings.Instance.S3AccessKey,
        SecretKey = ServicesSettings.Instance.S3SecretKey,
        Secure = ServicesSettings.Instance.S3Secure,
        Bucket = Bucket,
    });

    public async Task InitializeAsync()
    {
        _ = ModelsRoot;
        var settings = ServicesSettings.Instance;
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

    /// <summary>Rows of the items table, the ledger the coordinator keeps; the tests read attempts from it.</summary>
    public async Task<IReadOnlyList<ItemLedgerRow>> ItemsAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(Postgres);
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

    private static async Task ExecuteOnServerAsync(string sql)
    {
        var server = new NpgsqlConnectionStringBuilder(ServicesSettings.Instance.Postgres) { Database = "postgres", Pooling = false };
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task DeleteBucketAsync()
    {
        var settings = ServicesSettings.Instance;
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
