using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Npgsql;
using RenderFarm.Storage;

/// <summary>What one farm of a run is made of, beyond the services it shares with everything else.</summary>
/// <param name="Workers">Worker processes to start.</param>
/// <param name="Storage"><c>s3</c> (the real object store, a bucket of the run's own) or <c>local</c> (a folder under the run's logs).</param>
/// <param name="CoordinatorSettings">Extra environment of the coordinator (configuration keys as <c>Section__Key</c>).</param>
/// <param name="WorkerSettings">Extra environment of every worker.</param>
/// <param name="WarmModel">When set, the farm is ready only once every worker reports this model loaded.</param>
internal sealed record FarmSpec(
    int Workers,
    string Storage,
    IReadOnlyDictionary<string, string> CoordinatorSettings,
    IReadOnlyDictionary<string, string> WorkerSettings,
    string? WarmModel);

/// <summary>
/// One farm for one run: a database and a RabbitMQ virtual host of its own on the shared services, the real
/// coordinator and N real worker processes. Disposing kills the processes and drops what the run created.
/// </summary>
internal sealed class FarmSession : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(3);

    private readonly ServiceSettings _settings;
    private readonly string _database;
    private readonly string _vhost;
    private readonly HttpClient _management;
    private readonly List<ChildProcess> _processes = [];
    private readonly Dictionary<string, string> _environment;

    private FarmSession(ServiceSettings settings, string id, string storage)
    {
        _settings = settings;
        Id = id;
        Storage = storage;
        _database = "rf_bench_" + id;
        _vhost = "rf-bench-" + id;
        Logs = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "farmbench", id)).FullName;
        Postgres = new NpgsqlConnectionStringBuilder(settings.Require("RENDERFARM_POSTGRES")) { Database = _database }.ConnectionString;
        _management = settings.Management();
        _environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["RENDERFARM_POSTGRES"] = Postgres,
            ["RENDERFARM_RABBITMQ"] = new UriBuilder(new Uri(settings.Require("RENDERFARM_RABBITMQ"))) { Path = "/" + _vhost }.Uri.ToString(),
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
        };
        if (storage == "local")
        {
            _environment["Storage__Provider"] = "Local";
            _environment["Storage__LocalRoot"] = Path.Combine(Logs, "artifacts");
        }
        else
        {
            foreach (var name in new[] { "RENDERFARM_S3_ENDPOINT", "RENDERFARM_S3_ACCESS_KEY", "RENDERFARM_S3_SECRET_KEY", "RENDERFARM_S3_SECURE" })
                _environment[name] = settings.Require(name);
            _environment["RENDERFARM_S3_BUCKET"] = "rf-bench-" + id;
        }
    }

    public string Id { get; }

    public string Storage { get; }

    /// <summary>Folder of the processes' logs (and of the artifacts with local storage).</summary>
    public string Logs { get; }

    /// <summary>Connection string of the run's own database.</summary>
    public string Postgres { get; }

    public HttpClient Http { get; private set; } = null!;

    /// <summary>The run's RabbitMQ virtual host: its queues are the run's alone.</summary>
    public string VirtualHost => _vhost;

    /// <summary>RabbitMQ's management API, authenticated as the farm's user.</summary>
    public HttpClient Management => _management;

    public ChildProcess Coordinator { get; private set; } = null!;

    public IReadOnlyList<ChildProcess> Workers => _processes.Skip(1).ToList();

    public IReadOnlyList<string> WorkerIds { get; private set; } = [];

    public static async Task<FarmSession> StartAsync(FarmSpec spec, ServiceSettings settings, HostPaths hosts, CancellationToken ct)
    {
        var farm = new FarmSession(settings, Guid.NewGuid().ToString("N")[..10], spec.Storage);
        try
        {
            await farm.StartProcessesAsync(spec, hosts, ct);
            return farm;
        }
        catch
        {
            await farm.DisposeAsync();
            throw;
        }
    }

    /// <summary>The run's artifact store, as the farm's processes see it.</summary>
    public IArtifactStore OpenStore() => Storage == "local"
        ? new LocalFolderArtifactStore(_environment["Storage__LocalRoot"])
        : new S3ArtifactStore(new StorageOptions
        {
            Endpoint = _environment["RENDERFARM_S3_ENDPOINT"],
            AccessKey = _environment["RENDERFARM_S3_ACCESS_KEY"],
            SecretKey = _environment["RENDERFARM_S3_SECRET_KEY"],
            Secure = bool.TryParse(_environment["RENDERFARM_S3_SECURE"], out var secure) && secure,
            Bucket = _environment["RENDERFARM_S3_BUCKET"],
        });

    /// <summary>Deletes every artifact of the run (a large hires image is hundreds of megabytes; the bucket itself stays, empty).</summary>
    public async Task DeleteArtifactsAsync(CancellationToken ct)
    {
        if (Storage == "local")
        {
            var root = _environment["Storage__LocalRoot"];
            if (Directory.Exists(root))
                Directory.Delete(root, recursive: true);
            return;
        }

        var store = OpenStore();
        try
        {
            var keys = new List<string>();
            await foreach (var artifact in store.ListAsync("", ct))
                keys.Add(artifact.Key);
            foreach (var key in keys)
                await store.DeleteAsync(key, ct);
        }
        finally
        {
            (store as IDisposable)?.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
            process.Dispose();
        Http?.Dispose();
        await Rabbit.DeleteVirtualHostAsync(_management, _vhost, CancellationToken.None);
        await Database.DropAsync(_settings.Require("RENDERFARM_POSTGRES"), _database, CancellationToken.None);
        _management.Dispose();
        Console.Error.WriteLine($"[farmbench] logs: {Logs}");
    }

    public static async Task<string?> TryGetAsync(HttpClient http, string path, CancellationToken ct)
    {
        try
        {
            using var response = await http.GetAsync(path, ct);
            return response.IsSuccessStatusCode ? await response.Content.ReadAsStringAsync(ct) : null;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private async Task StartProcessesAsync(FarmSpec spec, HostPaths hosts, CancellationToken ct)
    {
        await Rabbit.CreateVirtualHostAsync(_management, _settings, _vhost, ct);
        var coordinatorEnvironment = new Dictionary<string, string>(_environment, StringComparer.Ordinal);
        foreach (var (key, value) in spec.CoordinatorSettings)
            coordinatorEnvironment[key] = value;
        var port = FreePort();
        Coordinator = ChildProcess.Start("coordinator", hosts.Coordinator, coordinatorEnvironment, Logs, "--urls", $"http://127.0.0.1:{port}");
        _processes.Add(Coordinator);
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromMinutes(10) };
        await UntilAsync(async () => (await TryGetAsync(Http, "alive", ct)) is not null, "coordinator /alive", ct);

        WorkerIds = Enumerable.Range(1, spec.Workers).Select(i => $"bench-{Id}-{i}").ToList();
        foreach (var workerId in WorkerIds)
        {
            var environment = new Dictionary<string, string>(_environment, StringComparer.Ordinal) { ["Worker__Id"] = workerId };
            foreach (var (key, value) in spec.WorkerSettings)
                environment[key] = value;
            _processes.Add(ChildProcess.Start(workerId, hosts.Worker, environment, Logs));
        }

        // Live is not enough for a timed render: a worker heartbeats before its warm-up has loaded the model, and a
        // first item that loads it would put the load into the measurement.
        await UntilAsync(async () =>
        {
            var text = await TryGetAsync(Http, "v1/workers", ct);
            if (text is null)
                return false;
            using var workers = JsonDocument.Parse(text);
            return WorkerIds.All(w => workers.RootElement.EnumerateArray().Any(e =>
                e.GetProperty("id").GetString() == w && e.GetProperty("live").GetBoolean()
                && (spec.WarmModel is null || e.GetProperty("loadedModels").EnumerateArray().Any(m => m.GetString() == spec.WarmModel))));
        }, spec.WarmModel is null ? "workers live" : $"workers live with {spec.WarmModel} loaded", ct);
    }

    private async Task UntilAsync(Func<Task<bool>> condition, string what, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + ReadyTimeout;
        while (!await condition())
        {
            if (_processes.FirstOrDefault(p => p.HasExited) is { } exited)
                throw new InvalidOperationException($"{exited.Name} exited while waiting for {what}; see {Path.Combine(Logs, exited.Name + ".log")}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Timed out waiting for {what}; logs in {Logs}");
            await Task.Delay(200, ct);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
