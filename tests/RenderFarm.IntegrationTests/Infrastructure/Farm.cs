using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests.Infrastructure;

/// <summary>
/// One test's farm: a coordinator and workers as real processes on the class's <see cref="FarmEnvironment"/>. A test
/// that reaches its end calls <see cref="Passed"/>; otherwise disposing writes every child's output to the test
/// output, which is where a failure's cause usually is. Disposing always kills every child.
/// </summary>
internal sealed class Farm : IAsyncDisposable
{
    /// <summary>Lease settings short enough that a killed worker's item is rescued within seconds.</summary>
    public static readonly IReadOnlyDictionary<string, string> ShortLeases = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["Coordinator__LeaseDuration"] = "00:00:04",
        ["Coordinator__HeartbeatInterval"] = "00:00:01",
        ["Coordinator__InitialBackoff"] = "00:00:01",
        ["Coordinator__Rescuer__Interval"] = "00:00:00.500",
    };

    private readonly FarmEnvironment _environment;
    private readonly ITestOutputHelper _output;
    private readonly List<HostProcess> _processes = [];
    private readonly Dictionary<string, string> _coordinatorSettings;
    private bool _passed;
    private int _coordinatorStarts;

    public Farm(FarmEnvironment environment, ITestOutputHelper output, IReadOnlyDictionary<string, string>? coordinatorSettings = null)
    {
        _environment = environment;
        _output = output;
        _coordinatorSettings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            // One item per unit: the tests watch individual items move between workers.
            ["Coordinator__WorkUnitSize"] = "1",
            ["Coordinator__Dispatcher__PollInterval"] = "00:00:00.200",
            // A loopback test farm; the key checks are tested in-process (Coordinator.Tests' AuthTests).
            ["Coordinator__Auth__RequireApiKeys"] = "false",
        };
        foreach (var (key, value) in coordinatorSettings ?? new Dictionary<string, string>())
            _coordinatorSettings[key] = value;
    }

    public HostProcess? Coordinator { get; private set; }

    public HttpClient Client { get; private set; } = null!;

    public async Task StartCoordinatorAsync(CancellationToken cancellationToken)
    {
        var port = FreePort();
        var environment = new Dictionary<string, string>(_environment.HostEnvironment, StringComparer.Ordinal);
        foreach (var (key, value) in _coordinatorSettings)
            environment[key] = value;
        var name = "coordinator#" + (++_coordinatorStarts).ToString(CultureInfo.InvariantCulture);
        var url = new Uri($"http://127.0.0.1:{port}/");
        Coordinator = Track(HostProcess.Start(name, FarmHosts.Coordinator, environment, "--urls", url.ToString().TrimEnd('/')));
        Client?.Dispose();
        Client = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(20) };

        // Ready when it answers /alive; migrations run before Kestrel listens.
        await WaitUntilAsync(name + " answering /alive", async () =>
        {
            if (Coordinator.HasExited)
                throw new InvalidOperationException($"{name} exited during start.");
            try
            {
                using var response = await Client.GetAsync("alive", cancellationToken);
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), cancellationToken);
    }

    public void KillCoordinator() => Coordinator?.Kill();

    /// <summary>Starts a worker process and waits until the coordinator lists it as live (its bus is bound).</summary>
    public async Task<HostProcess> StartWorkerAsync(string id, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? settings = null)
    {
        var environment = new Dictionary<string, string>(_environment.HostEnvironment, StringComparer.Ordinal)
        {
            ["Worker__Id"] = id,
            ["Worker__ModelsRoot"] = _environment.ModelsRoot,
            ["Worker__HeartbeatInterval"] = "00:00:01",
            // Two workers share two cores: one thread each keeps them from fighting over both.
            ["Worker__IntraOpThreads"] = "1",
            ["Worker__ShutdownGrace"] = "00:00:02",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
            environment[key] = value;
        var worker = Track(HostProcess.Start("worker " + id, FarmHosts.Worker, environment));
        await WaitUntilAsync($"worker {id} live in GET /v1/workers", async () =>
        {
            if (worker.HasExited)
                throw new InvalidOperationException($"worker {id} exited during start.");
            var workers = await GetJsonAsync("v1/workers", cancellationToken);
            return workers.EnumerateArray().Any(w => w.GetProperty("id").GetString() == id && w.GetProperty("live").GetBoolean());
        }, TimeSpan.FromSeconds(120), cancellationToken);
        return worker;
    }

    public static JsonObject Job(int count, int steps, long seed = 1000, string prompt = "a lighthouse at dusk", int size = 64) => new()
    {
        ["prompt"] = prompt,
        ["width"] = size,
        ["height"] = size,
        ["steps"] = steps,
        ["guidanceScale"] = 7.5,
        ["sampler"] = "euler",
        ["seed"] = seed,
        ["count"] = count,
        ["model"] = FarmEnvironment.ModelName,
    };

    public async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> PostJobAsync(
        JsonObject job, string? idempotencyKey, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/jobs")
        {
            Content = new StringContent(job.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        if (idempotencyKey is not null)
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        var response = await Client.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    public async Task<Guid> SubmitAsync(JsonObject job, CancellationToken cancellationToken, string? idempotencyKey = null)
    {
        var (status, body, response) = await PostJobAsync(job, idempotencyKey, cancellationToken);
        response.Dispose();
        status.ShouldBe(HttpStatusCode.Accepted, body.ToString());
        return body.GetProperty("id").GetGuid();
    }

    public Task<JsonElement> GetJobAsync(Guid jobId, CancellationToken cancellationToken) =>
        GetJsonAsync($"v1/jobs/{jobId}", cancellationToken);

    public async Task<long> GetJobsTotalAsync(CancellationToken cancellationToken) =>
        (await GetJsonAsync("v1/jobs?page=1&pageSize=10", cancellationToken)).GetProperty("total").GetInt64();

    /// <summary>Waits until the worker's heartbeat reports no current items.</summary>
    public Task WaitForWorkerIdleAsync(string id, TimeSpan timeout, CancellationToken cancellationToken)
    {
        JsonElement workers = default;
        return WaitUntilAsync($"worker {id} to hold no items", async () =>
        {
            workers = await GetJsonAsync("v1/workers", cancellationToken);
            return workers.EnumerateArray().Any(w => w.GetProperty("id").GetString() == id && w.GetProperty("currentItems").GetArrayLength() == 0);
        }, timeout, cancellationToken, () => workers.ToString());
    }

    /// <summary>Polls the job until <paramref name="until"/> holds; fails with the last JSON seen.</summary>
    public async Task<JsonElement> WaitForJobAsync(Guid jobId, Func<JsonElement, bool> until, TimeSpan timeout, CancellationToken cancellationToken)
    {
        JsonElement job = default;
        await WaitUntilAsync($"job {jobId} to reach the expected state", async () =>
        {
            job = await GetJobAsync(jobId, cancellationToken);
            return until(job);
        }, timeout, cancellationToken, () => job.ValueKind == JsonValueKind.Undefined ? "(never read)" : job.ToString());
        return job;
    }

    public static string State(JsonElement job) => job.GetProperty("state").GetString()!;

    public static bool IsFinal(JsonElement job) => State(job) is "Succeeded" or "CompletedWithErrors" or "Failed" or "Canceled";

    /// <summary>Marks the test as having reached its end, so the children's output stays out of the test output.</summary>
    public void Passed() => _passed = true;

    public ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
            process.Kill();
        if (!_passed)
        {
            foreach (var process in _processes)
                _output.WriteLine($"===== {process.Name} (pid {process.Id}) =====\n{process.Output}");
        }

        foreach (var process in _processes)
            process.Dispose();
        Client?.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<JsonElement> GetJsonAsync(string path, CancellationToken cancellationToken)
    {
        using var response = await Client.GetAsync(path, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"GET {path} answered {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private HostProcess Track(HostProcess process)
    {
        _processes.Add(process);
        return process;
    }

    private static async Task WaitUntilAsync(
        string what, Func<Task<bool>> condition, TimeSpan timeout, CancellationToken cancellationToken, Func<string>? lastSeen = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await condition())
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Waited {timeout.TotalSeconds:F0} s for {what}." + (lastSeen is null ? "" : " Last seen: " + lastSeen()));
            await Task.Delay(100, cancellationToken);
        }
    }

    public static int FreePort()
    {
        // The OS hands out a free port; Kestrel binds it a moment later, and the range it picks from is wide enough
        // that nobody else takes it in between.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
