using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;

// Two benchmarks of the distributed farm: the real coordinator on the real PostgreSQL and RabbitMQ (and S3 or a
// local folder for the artifacts), with real worker processes, one fresh farm per run.
//
// Throughput: the farm's own cost per item, with workers whose renderer does no work (Worker:Renderer=Null). One job
// of --items items (a seed sweep) per worker count in --workers.
//   dotnet run -c Release --project bench/RenderFarm.FarmBench -- [--items 20000] [--workers 1,2] [--storage s3|local]
//     [--units-per-worker 100000,2] [--json FILE]
// --units-per-worker runs dispatch windows side by side: 100000 is the old whole-job push (every unit sent at once),
// 2 the coordinator's default. --unit-reports per-item,per-unit runs the workers' two ways of reporting starts and
// images side by side (one message per item, or one per unit: Worker:UnitReports). Every run also checks nothing was lost or doubled (the exit code says so), samples the
// run's RabbitMQ queue depths from the management API and the load average; --json FILE writes all of it as JSON.
//
// Previews: the same throughput run with --previews 0,1 (preview intervals in seconds, 0 = off, side by side in one
// invocation; repeat values to interleave, e.g. 0,1,0,1). Previews need latents, which the Null renderer does not
// have, so these runs render for real: the Engine renderer on the tiny model, 128×128, 20 steps, one slot and one
// ONNX Runtime thread per worker, so an item lasts long enough (seconds) for its previews to be sent. The job's events
// are followed during the run and its preview events counted, so an "on" run shows it really sent them.
//   dotnet run -c Release --project bench/RenderFarm.FarmBench -- --previews 0,1,0,1 --items 40 --workers 2 --storage local
//
// Hires: one hires job of --hires N (N×N) per worker count, workers running the engine on the tiny model with one
// ONNX Runtime thread and one slot each; wall time, per-stage times, tiles per worker, peak memory, speed-up.
//   dotnet run -c Release --project bench/RenderFarm.FarmBench -- --hires 2048 [--workers 1,2] [--rounds 1] [--steps 20]
//     [--strength 0.35] [--tile 512] [--overlap 64] [--memory-budget 2GiB] [--threads 1] [--warmup] [--storage s3|local]
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"farmbench: {ex.Message}");
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

var settings = ServiceSettings.Load();
var hosts = HostPaths.Read();
if (options.Hires is { } hires)
{
    var hiresResults = await HiresBench.RunAllAsync(options, hires, settings, hosts, CancellationToken.None);
    Console.WriteLine(HiresReport.Markdown(options, hires, hiresResults));
    return hiresResults.All(r => r.State == "Succeeded" && r.ImageError is null) ? 0 : 1;
}

var results = new List<RunResult>();
// Report modes, preview intervals, dispatch windows, thread-pool spin limits and ledger batch sizes side by side in one invocation,
// so their ratios are measured on the same machine state.
foreach (var unitReports in options.UnitReports.Count > 0 ? options.UnitReports.Select(u => (string?)u) : [null])
{
    foreach (var unitsPerWorker in options.UnitsPerWorker.Count > 0 ? options.UnitsPerWorker.Select(u => (int?)u) : [null])
    {
        foreach (var previews in options.PreviewIntervals.Count > 0 ? options.PreviewIntervals.Select(p => (double?)p) : [null])
        {
            foreach (var spinLimit in options.SpinLimits.Count > 0 ? options.SpinLimits.Select(l => (int?)l) : [null])
            {
                foreach (var ledgerBatch in options.LedgerBatches.Count > 0 ? options.LedgerBatches.Select(b => (int?)b) : [null])
                {
                    foreach (var workers in options.WorkerCounts)
                    {
                        Console.Error.WriteLine($"[farmbench] {options.Items} items, {workers} worker process(es), storage {options.Storage}, ledger batch {ledgerBatch?.ToString(CultureInfo.InvariantCulture) ?? "default"}, spin limit {spinLimit?.ToString(CultureInfo.InvariantCulture) ?? "default"}, units per worker {unitsPerWorker?.ToString(CultureInfo.InvariantCulture) ?? "default"}, unit reports {unitReports ?? "default"}, previews {(previews is { } p ? p.ToString(CultureInfo.InvariantCulture) + " s" : "-")}");
                        results.Add(await BenchRun.RunAsync(options, workers, ledgerBatch, spinLimit, previews, settings, hosts, CancellationToken.None, unitsPerWorker, unitReports));
                    }
                }
            }
        }
    }
}

Console.WriteLine(Report.Markdown(options, results));
if (options.JsonPath is { } jsonPath)
{
    await File.WriteAllTextAsync(jsonPath, JsonReport.Write(options, results));
    Console.Error.WriteLine($"[farmbench] results: {Path.GetFullPath(jsonPath)}");
}

// A run that lost or doubled an item, or did not finish, fails the invocation: its rate would not mean anything.
return results.All(r => r.FinalState == "Succeeded" && r.Lost == 0 && r.Duplicated == 0) ? 0 : 1;

internal sealed record BenchOptions(int Items, IReadOnlyList<int> WorkerCounts, string Storage, int UnitSize, IReadOnlyList<int> LedgerBatches, IReadOnlyList<int> SpinLimits, HiresOptions? Hires)
{
    /// <summary>Preview intervals (seconds, 0 = off) run side by side with the Engine renderer; empty: Null-renderer throughput runs.</summary>
    public IReadOnlyList<double> PreviewIntervals { get; init; } = [];

    /// <summary>Dispatch windows (<c>Coordinator:Dispatcher:UnitsPerWorker</c>) run side by side; empty: the coordinator's default.</summary>
    public IReadOnlyList<int> UnitsPerWorker { get; init; } = [];

    /// <summary>Workers' report modes (<c>Worker:UnitReports</c>, as <c>per-item</c> or <c>per-unit</c>) run side by side; empty: the workers' default.</summary>
    public IReadOnlyList<string> UnitReports { get; init; } = [];

    /// <summary>Where to write the throughput runs' results as JSON as well (<c>--json FILE</c>); null: the table only.</summary>
    public string? JsonPath { get; init; }

    public const string Usage = """
        usage: farmbench [--items N] [--workers 1,2] [--storage s3|local] [--unit-size N] [--ledger-batch 1,100] [--spin-limit 70,0] [--previews 0,1]
                         [--units-per-worker 2,100000] [--unit-reports per-item,per-unit] [--json FILE]
               farmbench --hires SIZE [--workers 1,2] [--rounds R] [--steps N] [--strength S] [--tile T] [--overlap O]
                         [--guidance G] [--sampler NAME] [--seed N] [--base SIZE] [--memory-budget 2GiB] [--threads N]
                         [--render-timeout 01:00:00] [--stall-minutes M] [--warmup] [--keep-artifacts] [--storage s3|local]
        """;

    private static readonly string[] Flags =
    [
        "--items", "--workers", "--storage", "--unit-size", "--ledger-batch", "--spin-limit", "--previews", "--units-per-worker", "--unit-reports", "--json", "--hires", "--rounds", "--steps", "--strength", "--tile", "--overlap",
        "--guidance", "--sampler", "--seed", "--base", "--memory-budget", "--threads", "--render-timeout", "--stall-minutes",
    ];

    private static readonly string[] Switches = ["--keep-artifacts", "--warmup"];

    // Flags of throughput runs that a --hires run refuses.
    private static readonly string[] ThroughputOnly = ["--items", "--unit-size", "--ledger-batch", "--spin-limit", "--previews", "--units-per-worker", "--unit-reports", "--json"];

    /// <summary>The <c>--unit-reports</c> words and the worker setting each stands for.</summary>
    public static readonly IReadOnlyDictionary<string, string> UnitReportModes = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["per-item"] = "PerItem",
        ["per-unit"] = "PerUnit",
    };

    /// <summary>Reads the command line; a <see cref="FormatException"/> names the flag at fault.</summary>
    public static BenchOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var switches = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (Switches.Contains(args[i]))
                switches.Add(args[i]);
            else if (!Flags.Contains(args[i]))
                throw new FormatException($"unknown argument '{args[i]}'.");
            else if (i + 1 >= args.Length)
                throw new FormatException($"{args[i]} needs a value.");
            else
                values[args[i]] = args[++i];
        }

        string Get(string name, string fallback) => values.GetValueOrDefault(name, fallback);
        int Int(string name, string fallback, int min, int max)
        {
            var text = Get(name, fallback);
            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
                ? value : throw new FormatException($"{name} must be a whole number from {min} to {max}, got '{text}'.");
        }

        double Real(string name, string fallback, double min, double max)
        {
            var text = Get(name, fallback);
            return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
                ? value : throw new FormatException($"{name} must be a number from {min} to {max}, got '{text}'.");
        }

        // A comma-separated list of whole numbers, each from min to max; empty when the flag is absent and has no fallback.
        List<int> Ints(string name, string? fallback, int min, int max, string what)
        {
            var text = values.TryGetValue(name, out var given) ? given : fallback;
            if (text is null)
                return [];
            return text.Split(',').Select(item =>
                int.TryParse(item, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
                    ? n : throw new FormatException($"{name} must list {what} from {min} to {max} separated by commas, got '{text}'.")).ToList();
        }

        var workerCounts = Ints("--workers", "1,2", 1, 64, "worker counts");
        var storage = Get("--storage", "s3");
        if (storage is not ("s3" or "local"))
            throw new FormatException($"--storage must be s3 or local, got '{storage}'.");

        HiresOptions? hires = null;
        if (values.ContainsKey("--hires"))
        {
            if (values.Keys.FirstOrDefault(k => ThroughputOnly.Contains(k)) is { } throughputOnly)
                throw new FormatException($"{throughputOnly} applies to throughput runs only, not to --hires.");

            var timeoutText = Get("--render-timeout", "01:00:00");
            if (!TimeSpan.TryParse(timeoutText, CultureInfo.InvariantCulture, out var renderTimeout) || renderTimeout <= TimeSpan.Zero)
                throw new FormatException($"--render-timeout must be a positive time span such as 01:00:00, got '{timeoutText}'.");
            var seedText = Get("--seed", "42");
            if (!long.TryParse(seedText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed))
                throw new FormatException($"--seed must be a whole number, got '{seedText}'.");
            hires = new HiresOptions(
                Size: Int("--hires", "2048", 8, 65536),
                Rounds: Int("--rounds", "1", 1, 100),
                Steps: Int("--steps", "20", 1, 1000),
                Strength: Real("--strength", "0.35", 0.01, 1),
                Tile: Int("--tile", "512", 8, 65536),
                Overlap: Int("--overlap", "64", 0, 65536),
                Guidance: Real("--guidance", "7.5", 0, 50),
                Sampler: Get("--sampler", "euler"),
                Seed: seed,
                BaseSize: values.ContainsKey("--base") ? Int("--base", "512", 8, 65536) : null,
                MemoryBudget: values.GetValueOrDefault("--memory-budget"),
                Threads: Int("--threads", "1", 0, 1024),
                RenderTimeout: renderTimeout,
                StallLimit: TimeSpan.FromMinutes(Int("--stall-minutes", "20", 1, 1440)),
                KeepArtifacts: switches.Contains("--keep-artifacts"),
                WarmUp: switches.Contains("--warmup"));
        }
        else if (values.Keys.FirstOrDefault(k => !ThroughputOnly.Contains(k) && k is not ("--workers" or "--storage")) is { } hiresOnly)
        {
            throw new FormatException($"{hiresOnly} applies to --hires runs only.");
        }

        var ledgerBatches = Ints("--ledger-batch", null, 1, 1000, "batch sizes");
        var spinLimits = Ints("--spin-limit", null, 0, short.MaxValue, "thread-pool spin limits");
        var previewIntervals = values.TryGetValue("--previews", out var previewText)
            ? previewText.Split(',').Select(item =>
                double.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0 && seconds <= 3600
                    ? seconds : throw new FormatException($"--previews must list preview intervals in seconds (0 = off, at most 3600) separated by commas, got '{previewText}'.")).ToList()
            : [];
        var jsonPath = values.GetValueOrDefault("--json");
        if (jsonPath is not null)
        {
            // Checked before the runs, not after minutes of them.
            var folder = Path.GetDirectoryName(Path.GetFullPath(jsonPath));
            if (jsonPath.Length == 0 || jsonPath.EndsWith('/') || Directory.Exists(jsonPath))
                throw new FormatException($"--json must name a file, got '{jsonPath}'.");
            if (folder is null || !Directory.Exists(folder))
                throw new FormatException($"--json: the folder of '{jsonPath}' does not exist.");
        }

        return new BenchOptions(Int("--items", "20000", 1, 10_000_000), workerCounts, storage, Int("--unit-size", "0", 0, 100_000), ledgerBatches, spinLimits, hires)
        {
            PreviewIntervals = previewIntervals,
            UnitsPerWorker = Ints("--units-per-worker", null, 1, 100_000, "units per worker"),
            UnitReports = values.TryGetValue("--unit-reports", out var reportsText)
                ? reportsText.Split(',').Select(mode => UnitReportModes.ContainsKey(mode)
                    ? mode : throw new FormatException($"--unit-reports must list per-item or per-unit separated by commas, got '{reportsText}'.")).ToList()
                : [],
            JsonPath = jsonPath,
        };
    }
}

internal sealed record RunResult(
    int Workers,
    int? LedgerBatch,
    int? SpinLimit,
    int Items,
    TimeSpan SubmitTime,
    TimeSpan SubmitToDone,
    double CompletionsPerSecond,
    double[] EndToEndPercentiles,
    double[] WorkerSidePercentiles,
    double CoordinatorCpuSeconds,
    double PeakRssMiB,
    IReadOnlyDictionary<string, double> CpuSecondsByProcess,
    string FinalState)
{
    /// <summary>Preview interval of an Engine-renderer run (seconds, 0 = off); null for Null-renderer runs.</summary>
    public double? PreviewSeconds { get; init; }

    /// <summary>The dispatch window of the run (<c>Coordinator:Dispatcher:UnitsPerWorker</c>); null: the default.</summary>
    public int? UnitsPerWorker { get; init; }

    /// <summary>How the run's workers reported starts and images (<c>per-item</c> or <c>per-unit</c>); null: their default.</summary>
    public string? UnitReports { get; init; }

    /// <summary>Preview events the job's stream carried during the run.</summary>
    public int PreviewsSeen { get; init; }

    /// <summary>The machine's 1-minute load average when the job was posted and when it finished.</summary>
    public (double Start, double End) Load { get; init; }

    /// <summary>The highest 1-minute load average sampled during the run.</summary>
    public double PeakLoad { get; init; }

    /// <summary>Items that did not end with their image (see <see cref="RunOutcome"/>).</summary>
    public long Lost { get; init; }

    /// <summary>Items rendered more than once, or counted or stored twice (see <see cref="RunOutcome"/>).</summary>
    public long Duplicated { get; init; }

    /// <summary>Objects in the store under the job's folder after the run.</summary>
    public long StoredImages { get; init; }

    /// <summary>The most messages the run's RabbitMQ queues held together in any sample (see <see cref="RunSampler"/>).</summary>
    public long PeakBrokerDepth { get; init; }

    /// <summary>The most messages the shared render queue held in any sample.</summary>
    public long PeakSharedQueueDepth { get; init; }

    /// <summary>Management API samples taken during the run.</summary>
    public int BrokerSamples { get; init; }
}

internal static class BenchRun
{
    /// <summary>Side and steps of a preview run's items: seconds each on the tiny model with one thread, so previews are sent.</summary>
    private const int PreviewRunSide = 128;

    private const int PreviewRunSteps = 20;

    public static async Task<RunResult> RunAsync(
        BenchOptions options, int workerCount, int? ledgerBatch, int? spinLimit, double? previewSeconds, ServiceSettings settings, HostPaths hosts, CancellationToken ct,
        int? unitsPerWorker = null, string? unitReports = null)
    {
        // A loopback bench farm: measured without keys, as before they existed.
        var coordinatorSettings = new Dictionary<string, string>(StringComparer.Ordinal) { ["Coordinator__Auth__RequireApiKeys"] = "false" };
        if (unitsPerWorker is { } window)
            coordinatorSettings["Coordinator__Dispatcher__UnitsPerWorker"] = window.ToString(CultureInfo.InvariantCulture);
        if (options.UnitSize > 0)
            coordinatorSettings["Coordinator__WorkUnitSize"] = options.UnitSize.ToString(CultureInfo.InvariantCulture);
        if (ledgerBatch is { } batch)
            coordinatorSettings["Coordinator__LedgerBatchSize"] = batch.ToString(CultureInfo.InvariantCulture);
        // The runtime reads the variable before the coordinator's runtimeconfig, so it overrides what the build sets.
        if (spinLimit is { } spin)
            coordinatorSettings["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = spin.ToString(CultureInfo.InvariantCulture);
        var workerSettings = previewSeconds is { } interval
            ? new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["Worker__Renderer"] = "Engine",
                ["Worker__Slots"] = "1",
                ["Worker__IntraOpThreads"] = "1",
                ["Worker__WarmUp"] = "true",
                ["Worker__PreviewInterval"] = TimeSpan.FromSeconds(interval).ToString("c", CultureInfo.InvariantCulture),
            }
            : new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["Worker__Renderer"] = "Null",
                ["Worker__WarmUp"] = "false",
            };
        if (unitReports is not null)
            workerSettings["Worker__UnitReports"] = BenchOptions.UnitReportModes[unitReports];
        await using var farm = await FarmSession.StartAsync(
            new FarmSpec(workerCount, options.Storage, coordinatorSettings, workerSettings, WarmModel: previewSeconds is null ? null : "tiny-sd"), settings, hosts, ct);
        var http = farm.Http;
        var coordinator = farm.Coordinator;

        var job = new JsonObject
        {
            ["prompt"] = "farm bench",
            ["width"] = previewSeconds is null ? 64 : PreviewRunSide,
            ["height"] = previewSeconds is null ? 64 : PreviewRunSide,
            ["steps"] = previewSeconds is null ? 1 : PreviewRunSteps,
            ["guidanceScale"] = previewSeconds is null ? 1.0 : 7.5,
            ["sampler"] = "euler",
            ["sweep"] = new JsonObject { ["seeds"] = new JsonArray(Enumerable.Range(0, options.Items).Select(i => (JsonNode)JsonValue.Create((long)i)!).ToArray()) },
        };

        // Started before the POST: a job pushed whole floods the broker at submission.
        await using var sampler = RunSampler.Start(farm.Management, farm.VirtualHost);
        var cpuBefore = ProcessCpu.Snapshot();
        var clock = Stopwatch.StartNew();
        using var content = new StringContent(job.ToJsonString(), Encoding.UTF8, "application/json");
        using var posted = await http.PostAsync("v1/jobs", content, ct);
        var body = await posted.Content.ReadAsStringAsync(ct);
        if (posted.StatusCode != HttpStatusCode.Accepted)
            throw new InvalidOperationException($"POST /v1/jobs answered {(int)posted.StatusCode}: {body}");
        var submitTime = clock.Elapsed;
        var jobId = JsonDocument.Parse(body).RootElement.GetProperty("id").GetGuid();
        var loadAtStart = Machine.LoadAverage();
        using var stopFollowing = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var previewsSeen = previewSeconds is null ? Task.FromResult(0) : CountPreviewEventsAsync(http, jobId, stopFollowing.Token);

        string state = "";
        long lastDone = -1;
        var lastProgress = Stopwatch.StartNew();
        while (true)
        {
            var detail = JsonDocument.Parse((await FarmSession.TryGetAsync(http, $"v1/jobs/{jobId}?imagesLimit=1", ct))!).RootElement;
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
                throw new TimeoutException($"No progress for 2 minutes at {done}/{options.Items}; logs in {farm.Logs}");
            }

            await Task.Delay(100, ct);
        }

        var elapsed = clock.Elapsed;
        var loadAtEnd = Machine.LoadAverage();
        var cpuAfter = ProcessCpu.Snapshot();
        await sampler.StopAsync();
        var coordinatorCpu = ProcessCpu.Seconds(cpuBefore, cpuAfter, coordinator.Id);
        var byProcess = ProcessCpu.ByCategory(cpuBefore, cpuAfter, coordinator.Id, farm.Workers.Select(p => p.Id).ToHashSet());
        var peakRss = ProcessCpu.PeakRssMiB(coordinator.Id);
        var (endToEnd, workerSide) = await Latencies.ReadAsync(farm.Postgres, jobId, ct);
        // The stream ends after job-done; a stream that lags is cut off rather than waited for.
        stopFollowing.CancelAfter(TimeSpan.FromSeconds(10));
        var previews = await previewsSeen;
        var outcome = await RunOutcome.ReadAsync(farm, jobId, ct);
        return new RunResult(workerCount, ledgerBatch, spinLimit, options.Items, submitTime, elapsed, options.Items / elapsed.TotalSeconds,
            Latencies.Percentiles(endToEnd), Latencies.Percentiles(workerSide), coordinatorCpu, peakRss, byProcess, state)
        {
            PreviewSeconds = previewSeconds,
            PreviewsSeen = previews,
            UnitsPerWorker = unitsPerWorker,
            UnitReports = unitReports,
            Load = (loadAtStart, loadAtEnd),
            PeakLoad = Math.Max(sampler.PeakLoad, loadAtEnd),
            Lost = outcome.Lost,
            Duplicated = outcome.Duplicated,
            StoredImages = outcome.StoredImages,
            PeakBrokerDepth = sampler.PeakBrokerDepth,
            PeakSharedQueueDepth = sampler.PeakSharedQueueDepth,
            BrokerSamples = sampler.BrokerSamples,
        };
    }

    private static async Task<int> CountPreviewEventsAsync(HttpClient http, Guid jobId, CancellationToken ct)
    {
        var count = 0;
        try
        {
            using var response = await http.GetAsync($"v1/jobs/{jobId}/events", HttpCompletionOption.ResponseHeadersRead, ct);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                if (line == "event: preview")
                    count++;
            }
        }
        catch (OperationCanceledException)
        {
            // Cut off after the job finished: what was counted stands.
        }

        return count;
    }
}

internal static class Machine
{
    /// <summary>The 1-minute load average (<c>/proc/loadavg</c>): how busy the shared machine was during a run.</summary>
    public static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
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

    /// <summary>Resets the process's peak RSS (VmHWM) to its current RSS (<c>/proc/PID/clear_refs</c>, value 5).</summary>
    public static void ResetPeakRss(int pid) => File.WriteAllText($"/proc/{pid}/clear_refs", "5");

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
        s.AppendLine(options.PreviewIntervals.Count > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{options.Items} items (seed sweep, 128×128, 20 steps, euler, guidance 7.5), Engine renderer on the tiny model (1 slot, 1 ONNX Runtime thread per worker), storage {options.Storage}, work unit size {(options.UnitSize > 0 ? options.UnitSize.ToString(CultureInfo.InvariantCulture) : "default")}; processor count {Environment.ProcessorCount}")
            : string.Create(CultureInfo.InvariantCulture, $"{options.Items} items (seed sweep, 64×64, 1 step), Null renderer, storage {options.Storage}, work unit size {(options.UnitSize > 0 ? options.UnitSize.ToString(CultureInfo.InvariantCulture) : "default")}"));
        s.AppendLine();
        s.AppendLine("| unit reports | units per worker | ledger batch | spin limit | previews | previews seen | worker processes | final state | POST (s) | submit → done (s) | completions/s | e2e p50 / p95 / p99 / max (s) | worker-side p50 / p95 / p99 (ms) | coordinator CPU (s) | coordinator peak RSS (MiB) | lost / duplicated | peak broker depth (all queues / shared) | load 1m start → end (peak) | CPU s by process |");
        s.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var e = r.EndToEndPercentiles;
            var w = r.WorkerSidePercentiles;
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.UnitReports ?? "default"} | {r.UnitsPerWorker?.ToString(CultureInfo.InvariantCulture) ?? "default"} | {r.LedgerBatch?.ToString(CultureInfo.InvariantCulture) ?? "default"} | {r.SpinLimit?.ToString(CultureInfo.InvariantCulture) ?? "default"} | {(r.PreviewSeconds is { } ps ? (ps == 0 ? "off" : $"every {F(ps, "0.##")} s") : "-")} | {(r.PreviewSeconds is null ? "-" : r.PreviewsSeen.ToString(CultureInfo.InvariantCulture))} | {r.Workers} | {r.FinalState} | {F(r.SubmitTime.TotalSeconds, "F2")} | {F(r.SubmitToDone.TotalSeconds, "F1")} | **{F(r.CompletionsPerSecond)}** | {F(e[0], "F1")} / {F(e[1], "F1")} / {F(e[2], "F1")} / {F(e[3], "F1")} | {F(w[0] * 1000)} / {F(w[1] * 1000)} / {F(w[2] * 1000)} | {F(r.CoordinatorCpuSeconds, "F1")} | {F(r.PeakRssMiB)} | {r.Lost} / {r.Duplicated} | {r.PeakBrokerDepth} / {r.PeakSharedQueueDepth} ({r.BrokerSamples} samples) | {F(r.Load.Start, "F2")} → {F(r.Load.End, "F2")} ({F(r.PeakLoad, "F2")}) | {string.Join(", ", r.CpuSecondsByProcess.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {F(p.Value, "F1")}"))} |");
        }

        return s.ToString();
    }
}

internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;

    private ChildProcess(string name, Process process, StreamWriter log)
    {
        Name = name;
        _process = process;
        _log = log;
    }

    public string Name { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

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
        return new ChildProcess(name, process, log);
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
