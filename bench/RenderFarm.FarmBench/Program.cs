using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;

// The farm's own cost per item: the real coordinator on the real PostgreSQL and RabbitMQ (and S3 or a local folder
// for the artifacts), with worker processes whose renderer does no work (Worker:Renderer=Null). One job of --items
// items (a seed sweep) per run; one run per worker count in --workers; a markdown table at the end.
//
//   dotnet run -c Release --project bench/RenderFarm.FarmBench -- [--items 20000] [--workers 1,2] [--storage s3|local]
var options = BenchOptions.Parse(args);
var settings = ServiceSettings.Load();
var hosts = HostPaths.Read();
var results = new List<RunResult>();
foreach (var workers in options.WorkerCounts)
{
    Console.Error.WriteLine($"[farmbench] {options.Items} items, {workers} worker process(es), storage {options.Storage}");
    results.Add(await BenchRun.RunAsync(options, workers, settings, hosts, CancellationToken.None));
}

Console.WriteLine(Report.Markdown(options, results));

internal sealed record BenchOptions(int Items, IReadOnlyList<int> WorkerCounts, string Storage, int UnitSize)
{
    public static BenchOptions Parse(string[] args)
    {
        string Get(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        return new BenchOptions(
            int.Parse(Get("--items", "20000"), CultureInfo.InvariantCulture),
            Get("--workers", "1,2").Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture)).ToList(),
            Get("--storage", "s3"),
            int.Parse(Get("--unit-size", "0"), CultureInfo.InvariantCulture));
    }
}

internal sealed record RunResult(
    int Workers,
    int Items,
    TimeSpan SubmitTime,
    TimeSpan SubmitToDone,
    double CompletionsPerSecond,
    double[] EndToEndPercentiles,
    double[] WorkerSidePercentiles,
    double CoordinatorCpuSeconds,
    double PeakRssMiB,
    IReadOnlyDictionary<string, double> CpuSecondsByProcess,
    string FinalState);

internal static class BenchRun
{
    public static async Task<RunResult> RunAsync(BenchOptions options, int workerCount, ServiceSettings settings, HostPaths hosts, CancellationToken ct)
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var database = "rf_bench_" + id;
        var vhost = "rf-bench-" + id;
        var logs = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "farmbench", id)).FullName;
        var postgres = new NpgsqlConnectionStringBuilder(settings.Require("RENDERFARM_POSTGRES")) { Database = database }.ConnectionString;
        using var management = settings.Management();
        await Rabbit.CreateVirtualHostAsync(management, settings, vhost, ct);
        var processes = new List<ChildProcess>();
        try
        {
            var environment = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["RENDERFARM_POSTGRES"] = postgres,
                ["RENDERFARM_RABBITMQ"] = new UriBuilder(new Uri(settings.Require("RENDERFARM_RABBITMQ"))) { Path = "/" + vhost }.Uri.ToString(),
                ["Logging__LogLevel__Default"] = "Warning",
                ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            };
            if (options.Storage == "local")
            {
                environment["Storage__Provider"] = "Local";
                environment["Storage__LocalRoot"] = Path.Combine(logs, "artifacts");
            }
            else
            {
                foreach (var name in new[] { "RENDERFARM_S3_ENDPOINT", "RENDERFARM_S3_ACCESS_KEY", "RENDERFARM_S3_SECRET_KEY", "RENDERFARM_S3_SECURE" })
                    environment[name] = settings.Require(name);
                environment["RENDERFARM_S3_BUCKET"] = "rf-bench-" + id;
            }

            var coordinatorEnvironment = new Dictionary<string, string>(environment, StringComparer.Ordinal);
            if (options.UnitSize > 0)
                coordinatorEnvironment["Coordinator__WorkUnitSize"] = options.UnitSize.ToString(CultureInfo.InvariantCulture);
            var port = FreePort();
            var coordinator = ChildProcess.Start("coordinator", hosts.Coordinator, coordinatorEnvironment, logs, "--urls", $"http://127.0.0.1:{port}");
            processes.Add(coordinator);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromMinutes(2) };
            await Until(async () => (await TryGet(http, "alive", ct)) is not null, "coordinator /alive", ct);

            var workerIds = Enumerable.Range(1, workerCount).Select(i => $"bench-{id}-{i}").ToList();
            foreach (var workerId in workerIds)
            {
                processes.Add(ChildProcess.Start(workerId, hosts.Worker, new Dictionary<string, string>(environment, StringComparer.Ordinal)
                {
                    ["Worker__Id"] = workerId,
                    ["Worker__Renderer"] = "Null",
                    ["Worker__WarmUp"] = "false",
                }, logs));
            }

            await Until(async () =>
            {
                var text = await TryGet(http, "v1/workers", ct);
                return text is not null && workerIds.All(w => JsonDocument.Parse(text).RootElement.EnumerateArray()
                    .Any(e => e.GetProperty("id").GetString() == w && e.GetProperty("live").GetBoolean()));
            }, "workers live", ct);

            var job = new JsonObject
            {
                ["prompt"] = "farm bench",
                ["width"] = 64,
                ["height"] = 64,
                ["steps"] = 1,
                ["guidanceScale"] = 1.0,
                ["sampler"] = "euler",
                ["sweep"] = new JsonObject { ["seeds"] = new JsonArray(Enumerable.Range(0, options.Items).Select(i => (JsonNode)JsonValue.Create((long)i)!).ToArray()) },
            };

            var cpuBefore = ProcessCpu.Snapshot();
            var clock = Stopwatch.StartNew();
            using var content = new StringContent(job.ToJsonString(), Encoding.UTF8, "application/json");
            using var posted = await http.PostAsync("v1/jobs", content, ct);
            var body = await posted.Content.ReadAsStringAsync(ct);
            if (posted.StatusCode != HttpStatusCode.Accepted)
                throw new InvalidOperationException($"POST /v1/jobs answered {(int)posted.StatusCode}: {body}");
            var submitTime = clock.Elapsed;
            var jobId = JsonDocument.Parse(body).RootElement.GetProperty("id").GetGuid();

            string state = "";
            long lastDone = -1;
            var lastProgress = Stopwatch.StartNew();
            while (true)
            {
                var detail = JsonDocument.Parse((await TryGet(http, $"v1/jobs/{jobId}?imagesLimit=1", ct))!).RootElement;
                state = detail.GetProperty("state").GetString()!;
                if (state is "Succeeded" or "Failed" or "Canceled")
                    break;
                var done = detail.GetProperty("progress").GetProperty("done").GetInt64();
                if (done != lastDone)
                {
                    lastDone = done;
                    lastProgress.Restart();
                }
                else if (lastProgress.Elapsed > TimeSpan.FromMinutes(2))
                {
                    throw new TimeoutException($"No progress for 2 minutes at {done}/{options.Items}; logs in {logs}");
                }

                await Task.Delay(100, ct);
            }

            var elapsed = clock.Elapsed;
            var cpuAfter = ProcessCpu.Snapshot();
            var coordinatorCpu = ProcessCpu.Seconds(cpuBefore, cpuAfter, coordinator.Id);
            var byProcess = ProcessCpu.ByCategory(cpuBefore, cpuAfter, coordinator.Id, processes.Skip(1).Select(p => p.Id).ToHashSet());
            var peakRss = ProcessCpu.PeakRssMiB(coordinator.Id);
            var (endToEnd, workerSide) = await Latencies.ReadAsync(postgres, jobId, ct);
            return new RunResult(workerCount, options.Items, submitTime, elapsed, options.Items / elapsed.TotalSeconds,
                Latencies.Percentiles(endToEnd), Latencies.Percentiles(workerSide), coordinatorCpu, peakRss, byProcess, state);
        }
        finally
        {
            foreach (var process in processes)
                process.Dispose();
            await Rabbit.DeleteVirtualHostAsync(management, vhost, ct);
            await Database.DropAsync(settings.Require("RENDERFARM_POSTGRES"), database, ct);
            Console.Error.WriteLine($"[farmbench] logs: {logs}");
        }
    }

    private static async Task<string?> TryGet(HttpClient http, string path, CancellationToken ct)
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

    private static async Task Until(Func<Task<bool>> condition, string what, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("Timed out waiting for " + what);
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

internal static class Latencies
{
    /// <summary>Per item: job created → item finished (what a user waits), and item started → finished (worker side, incl. upload and completion).</summary>
    public static async Task<(double[] EndToEnd, double[] WorkerSide)> ReadAsync(string postgres, Guid jobId, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(postgres);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(
            """
            SELECT EXTRACT(EPOCH FROM i.finished_at - j.created_at)::float8, EXTRACT(EPOCH FROM i.finished_at - i.started_at)::float8
            FROM items i JOIN jobs j ON j.id = i.job_id
            WHERE i.job_id = @job AND i.finished_at IS NOT NULL AND i.started_at IS NOT NULL
            """, connection);
        command.Parameters.AddWithValue("job", jobId);
        var endToEnd = new List<double>();
        var workerSide = new List<double>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            endToEnd.Add(reader.GetDouble(0));
            workerSide.Add(reader.GetDouble(1));
        }

        return ([.. endToEnd], [.. workerSide]);
    }

    public static double[] Percentiles(double[] values)
    {
        if (values.Length == 0)
            return [double.NaN, double.NaN, double.NaN, double.NaN];
        Array.Sort(values);
        double At(double p) => values[Math.Min(values.Length - 1, (int)Math.Ceiling(p * values.Length) - 1)];
        return [At(0.50), At(0.95), At(0.99), values[^1]];
    }
}

/// <summary>CPU time of every process on the machine, from /proc, so a run shows where the machine's time went.</summary>
internal static class ProcessCpu
{
    private static readonly double TicksPerSecond = 100;

    public static Dictionary<int, (string Name, long Ticks)> Snapshot()
    {
        var result = new Dictionary<int, (string, long)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var open = stat.IndexOf('(', StringComparison.Ordinal);
                var close = stat.LastIndexOf(')');
                var fields = stat[(close + 2)..].Split(' ');
                // Fields after the name: state is [0]; utime and stime are the 14th and 15th of stat, [11] and [12] here.
                var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                var name = stat[(open + 1)..close];
                if (name.StartsWith("python", StringComparison.Ordinal) || name.StartsWith("swift", StringComparison.Ordinal))
                {
                    var cmd = File.ReadAllText(Path.Combine(dir, "cmdline"));
                    if (cmd.Contains("swift", StringComparison.Ordinal))
                        name = "swift";
                }

                result[pid] = (name, ticks);
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return result;
    }

    public static double Seconds(Dictionary<int, (string Name, long Ticks)> before, Dictionary<int, (string Name, long Ticks)> after, int pid) =>
        (after.GetValueOrDefault(pid).Ticks - before.GetValueOrDefault(pid).Ticks) / TicksPerSecond;

    public static IReadOnlyDictionary<string, double> ByCategory(
        Dictionary<int, (string Name, long Ticks)> before, Dictionary<int, (string Name, long Ticks)> after, int coordinator, HashSet<int> workers)
    {
        var sums = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (pid, (name, ticks)) in after)
        {
            var delta = (ticks - before.GetValueOrDefault(pid).Ticks) / TicksPerSecond;
            if (delta <= 0)
                continue;
            var category = pid == coordinator ? "coordinator"
                : workers.Contains(pid) ? "workers"
                : name switch
                {
                    "postgres" => "postgres",
                    "beam.smp" or "erl_child_setup" or "inet_gethost" => "rabbitmq",
                    "swift" or "memcached" => "s3 (swift)",
                    _ => "other",
                };
            sums[category] = sums.GetValueOrDefault(category) + delta;
        }

        return sums;
    }

    public static double PeakRssMiB(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        }

        return double.NaN;
    }
}

internal static class Report
{
    public static string Markdown(BenchOptions options, IReadOnlyList<RunResult> results)
    {
        var s = new StringBuilder();
        string F(double v, string format = "F0") => v.ToString(format, CultureInfo.InvariantCulture);
        s.AppendLine(CultureInfo.InvariantCulture, $"{options.Items} items (seed sweep, 64×64, 1 step), Null renderer, storage {options.Storage}, work unit size {(options.UnitSize > 0 ? options.UnitSize.ToString(CultureInfo.InvariantCulture) : "default")}");
        s.AppendLine();
        s.AppendLine("| worker processes | final state | POST (s) | submit → done (s) | completions/s | e2e p50 / p95 / p99 / max (s) | worker-side p50 / p95 / p99 (ms) | coordinator CPU (s) | coordinator peak RSS (MiB) | CPU s by process |");
        s.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var e = r.EndToEndPercentiles;
            var w = r.WorkerSidePercentiles;
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Workers} | {r.FinalState} | {F(r.SubmitTime.TotalSeconds, "F2")} | {F(r.SubmitToDone.TotalSeconds, "F1")} | **{F(r.CompletionsPerSecond)}** | {F(e[0], "F1")} / {F(e[1], "F1")} / {F(e[2], "F1")} / {F(e[3], "F1")} | {F(w[0] * 1000)} / {F(w[1] * 1000)} / {F(w[2] * 1000)} | {F(r.CoordinatorCpuSeconds, "F1")} | {F(r.PeakRssMiB)} | {string.Join(", ", r.CpuSecondsByProcess.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {F(p.Value, "F1")}"))} |");
        }

        return s.ToString();
    }
}

internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;

    private ChildProcess(Process process, StreamWriter log)
    {
        _process = process;
        _log = log;
    }

    public int Id => _process.Id;

    public static ChildProcess Start(string name, string dll, IReadOnlyDictionary<string, string> environment, string logFolder, params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("RENDERFARM_", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(key);
        foreach (var (key, value) in environment)
            start.Environment[key] = value;
        var log = new StreamWriter(Path.Combine(logFolder, name + ".log")) { AutoFlush = true };
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ChildProcess(process, log);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
        lock (_log)
            _log.Dispose();
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
            return;
        lock (log)
        {
            try
            {
                log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
                // Output after the kill.
            }
        }
    }
}

internal sealed class HostPaths(string coordinator, string worker)
{
    public string Coordinator { get; } = coordinator;

    public string Worker { get; } = worker;

    public static HostPaths Read()
    {
        var lines = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "farm-hosts.txt"))
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        return new HostPaths(lines["RenderFarm.Coordinator"], lines["RenderFarm.Worker"]);
    }
}

internal sealed class ServiceSettings(Dictionary<string, string> fromFile)
{
    public static ServiceSettings Load()
    {
        var source = typeof(ServiceSettings).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "SourceDirectory")?.Value;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var start in new[] { AppContext.BaseDirectory, source, Directory.GetCurrentDirectory() })
        {
            for (var dir = start is null ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var file = Path.Combine(dir.FullName, ".state", "services", "services.env");
                if (!File.Exists(Path.Combine(dir.FullName, "RenderFarm.sln")) || !File.Exists(file))
                    continue;
                foreach (var raw in File.ReadAllLines(file))
                {
                    var line = raw.Trim();
                    if (line.StartsWith("export ", StringComparison.Ordinal))
                        line = line[7..];
                    var eq = line.IndexOf('=', StringComparison.Ordinal);
                    if (eq > 0)
                        values[line[..eq]] = line[(eq + 1)..].Trim('\'', '"');
                }

                return new ServiceSettings(values);
            }
        }

        return new ServiceSettings(values);
    }

    public string Require(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value
        : fromFile.TryGetValue(name, out var fromFileValue) ? fromFileValue
        : throw new InvalidOperationException($"{name} is not set; run `deploy/local/services start` first.");

    public HttpClient Management()
    {
        var amqp = new Uri(Require("RENDERFARM_RABBITMQ"));
        var client = new HttpClient { BaseAddress = new Uri(Require("RENDERFARM_RABBITMQ_MANAGEMENT")) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.UnescapeDataString(amqp.UserInfo))));
        return client;
    }
}

internal static class Rabbit
{
    public static async Task CreateVirtualHostAsync(HttpClient management, ServiceSettings settings, string vhost, CancellationToken ct)
    {
        var user = Uri.UnescapeDataString(new Uri(settings.Require("RENDERFARM_RABBITMQ")).UserInfo).Split(':')[0];
        using (var created = await management.PutAsJsonAsync($"api/vhosts/{Uri.EscapeDataString(vhost)}", new { }, ct))
        {
            created.EnsureSuccessStatusCode();
        }

        using var permitted = await management.PutAsJsonAsync($"api/permissions/{Uri.EscapeDataString(vhost)}/{Uri.EscapeDataString(user)}",
            new { configure = ".*", write = ".*", read = ".*" }, ct);
        permitted.EnsureSuccessStatusCode();
    }

    public static async Task DeleteVirtualHostAsync(HttpClient management, string vhost, CancellationToken ct)
    {
        using var deleted = await management.DeleteAsync($"api/vhosts/{Uri.EscapeDataString(vhost)}", ct);
    }
}

internal static class Database
{
    public static async Task DropAsync(string server, string database, CancellationToken ct)
    {
        var admin = new NpgsqlConnectionStringBuilder(server) { Database = "postgres", Pooling = false };
        await using var connection = new NpgsqlConnection(admin.ConnectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync(ct);
    }
}
