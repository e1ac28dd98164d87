using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;

/// <summary>Settings of the hires bench (<c>--hires SIZE</c> and the flags that go with it).</summary>
/// <param name="Size">Side of the square final image.</param>
/// <param name="Rounds">Times every worker count is run; the order of the counts reverses every other round (1,2 then 2,1 …).</param>
/// <param name="Steps">Denoising steps of the base; a tile runs about steps × strength of them.</param>
/// <param name="Strength">Tile refinement strength.</param>
/// <param name="Tile">Tile side in pixels of the final image.</param>
/// <param name="Overlap">Least overlap between neighbouring tiles.</param>
/// <param name="Guidance">Classifier-free guidance (above 1 runs the UNet on 2 rows).</param>
/// <param name="Sampler">Sampler name.</param>
/// <param name="Seed">Seed of the job.</param>
/// <param name="BaseSize">Side of the base render; null for the coordinator's default (about 512²).</param>
/// <param name="MemoryBudget">Each worker's <c>Worker:MemoryBudget</c>; null for none.</param>
/// <param name="Threads">Each worker's <c>Worker:IntraOpThreads</c> (0 = every core).</param>
/// <param name="RenderTimeout">Each worker's <c>Worker:RenderTimeout</c>: the stitch of a very large image is one long item.</param>
/// <param name="StallLimit">A run with no item finished for this long is abandoned.</param>
/// <param name="KeepArtifacts">Leave the run's images in the store instead of deleting them.</param>
/// <param name="WarmUp">Before the timed job, render a small hires job with the same tile and base sizes on the same farm,
/// large enough that every worker takes a tile, so the timed job runs on warm sessions.</param>
internal sealed record HiresOptions(
    int Size,
    int Rounds,
    int Steps,
    double Strength,
    int Tile,
    int Overlap,
    double Guidance,
    string Sampler,
    long Seed,
    int? BaseSize,
    string? MemoryBudget,
    int Threads,
    TimeSpan RenderTimeout,
    TimeSpan StallLimit,
    bool KeepArtifacts,
    bool WarmUp)
{
    /// <summary>Side of the warm-up job: a grid of k×k tiles with k² at least <paramref name="workers"/> (and 2×2 at least).</summary>
    public int WarmUpSide(int workers)
    {
        var k = (int)Math.Ceiling(Math.Sqrt(workers)) + (workers == 1 ? 1 : 0);
        k = Math.Max(k, 2);
        return Math.Min(Size, Tile + ((Tile - Overlap) * (k - 1)));
    }
}

/// <summary>Where the time of one hires job went, from the ledger's timestamps (coordinator clock), in seconds.</summary>
/// <param name="Ledger">Job created → job finished.</param>
/// <param name="BaseWait">Job created → base started.</param>
/// <param name="Base">Base started → finished.</param>
/// <param name="TilesRelease">Base finished → first tile started.</param>
/// <param name="Tiles">First tile started → last tile finished.</param>
/// <param name="TileMean">Mean of one tile's started → finished, leaving out each worker's first tile.</param>
/// <param name="FirstTiles">Each worker's first tile, started → finished: a worker pays ONNX Runtime's first run of each shape there.</param>
/// <param name="TileSum">Sum of the tiles' started → finished: the tiles' work in worker-seconds.</param>
/// <param name="StitchRelease">Last tile finished → stitch started.</param>
/// <param name="Stitch">Stitch started → finished (the final image stored).</param>
/// <param name="ExtraAttempts">Attempts beyond the first over all items (retries).</param>
internal sealed record HiresTimings(
    double Ledger,
    double BaseWait,
    double Base,
    double TilesRelease,
    double Tiles,
    double TileMean,
    IReadOnlyList<double> FirstTiles,
    double TileSum,
    double StitchRelease,
    double Stitch,
    int ExtraAttempts);

/// <summary>The 1-minute load average while a run went on.</summary>
internal sealed record LoadSample(double AtStart, double Mean, double Max);

internal sealed record HiresRunResult(
    int Workers,
    int Round,
    string State,
    double WallSeconds,
    int TileCount,
    HiresTimings? Timings,
    IReadOnlyDictionary<string, int> TilesPerWorker,
    double CoordinatorPeakMiB,
    IReadOnlyList<double> WorkerPeakMiB,
    IReadOnlyDictionary<string, double> CpuByProcess,
    LoadSample Load,
    PngInfo? Image,
    double ImageCheckSeconds,
    string? ImageError);

internal static class HiresBench
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Every worker count, <see cref="HiresOptions.Rounds"/> times, back to back in this one invocation.</summary>
    public static async Task<IReadOnlyList<HiresRunResult>> RunAllAsync(BenchOptions options, HiresOptions hires, ServiceSettings settings, HostPaths hosts, CancellationToken ct)
    {
        var results = new List<HiresRunResult>();
        for (var round = 1; round <= hires.Rounds; round++)
        {
            // Reversing the order every other round spreads a drift of the machine (others' builds) over both counts.
            var order = round % 2 == 1 ? options.WorkerCounts : options.WorkerCounts.Reverse().ToList();
            foreach (var workers in order)
            {
                Console.Error.WriteLine($"[farmbench] hires {hires.Size}², {workers} worker process(es), round {round}/{hires.Rounds}, storage {options.Storage}");
                var result = await RunAsync(options, hires, workers, round, settings, hosts, ct);
                Console.Error.WriteLine($"[farmbench]   {result.State} in {result.WallSeconds:F1} s; tiles per worker {string.Join(", ", result.TilesPerWorker.Values)}; load avg {result.Load.Mean:F1}");
                results.Add(result);
            }
        }

        return results;
    }

    private static async Task<HiresRunResult> RunAsync(BenchOptions options, HiresOptions hires, int workerCount, int round, ServiceSettings settings, HostPaths hosts, CancellationToken ct)
    {
        var workerSettings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Worker__Renderer"] = "Engine",
            ["Worker__Slots"] = "1",
            ["Worker__IntraOpThreads"] = hires.Threads.ToString(CultureInfo.InvariantCulture),
            ["Worker__WarmUp"] = "true",
            ["Worker__RenderTimeout"] = hires.RenderTimeout.ToString("c", CultureInfo.InvariantCulture),
        };
        if (hires.MemoryBudget is { } budget)
            workerSettings["Worker__MemoryBudget"] = budget;
        await using var farm = await FarmSession.StartAsync(
            new FarmSpec(workerCount, options.Storage, new Dictionary<string, string>(StringComparer.Ordinal), workerSettings, WarmModel: "tiny-sd"),
            settings, hosts, ct);
        try
        {
            return await MeasureAsync(farm, hires, workerCount, round, ct);
        }
        finally
        {
            if (!hires.KeepArtifacts)
                await farm.DeleteArtifactsAsync(CancellationToken.None);
        }
    }

    private static JsonObject Job(HiresOptions hires, int side)
    {
        var job = new JsonObject
        {
            ["prompt"] = "a lighthouse on a cliff above a stormy sea, detailed",
            ["mode"] = "hires",
            ["width"] = side,
            ["height"] = side,
            ["steps"] = hires.Steps,
            ["strength"] = hires.Strength,
            ["tile"] = hires.Tile,
            ["overlap"] = hires.Overlap,
            ["guidanceScale"] = hires.Guidance,
            ["sampler"] = hires.Sampler,
            ["seed"] = hires.Seed,
        };
        if (hires.BaseSize is { } baseSide)
        {
            job["baseWidth"] = baseSide;
            job["baseHeight"] = baseSide;
        }

        return job;
    }

    /// <summary>Posts <paramref name="job"/> and polls until it has its final image or fails; samples the load average meanwhile.</summary>
    private static async Task<(Guid JobId, string State, string? ResultImage)> SubmitAndWaitAsync(
        FarmSession farm, JsonObject job, TimeSpan stallLimit, List<double> loads, CancellationToken ct)
    {
        using var content = new StringContent(job.ToJsonString(), Encoding.UTF8, "application/json");
        using var posted = await farm.Http.PostAsync("v1/jobs", content, ct);
        var body = await posted.Content.ReadAsStringAsync(ct);
        if (posted.StatusCode != HttpStatusCode.Accepted)
            throw new InvalidOperationException($"POST /v1/jobs answered {(int)posted.StatusCode}: {body}");
        var jobId = JsonDocument.Parse(body).RootElement.GetProperty("id").GetGuid();

        long lastDone = -1;
        var lastProgress = Stopwatch.StartNew();
        while (true)
        {
            loads.Add(LoadAverage());
            var text = await FarmSession.TryGetAsync(farm.Http, $"v1/jobs/{jobId}?imagesLimit=1&tilesLimit=0", ct)
                ?? throw new InvalidOperationException($"GET /v1/jobs/{jobId} failed; logs in {farm.Logs}");
            using var detail = JsonDocument.Parse(text);
            var root = detail.RootElement;
            var state = root.GetProperty("state").GetString()!;
            var resultImage = root.TryGetProperty("resultImage", out var image) && image.ValueKind == JsonValueKind.String ? image.GetString() : null;
            if (state is "Failed" or "Canceled" || (state == "Succeeded" && resultImage is not null))
                return (jobId, state, resultImage);
            var done = root.GetProperty("progress").GetProperty("done").GetInt64();
            if (done != lastDone)
            {
                lastDone = done;
                lastProgress.Restart();
            }
            else if (lastProgress.Elapsed > stallLimit)
            {
                throw new TimeoutException($"No item of job {jobId} finished for {stallLimit} at {done} done; logs in {farm.Logs}");
            }

            await Task.Delay(PollInterval, ct);
        }
    }

    private static async Task<HiresRunResult> MeasureAsync(FarmSession farm, HiresOptions hires, int workerCount, int round, CancellationToken ct)
    {
        if (hires.WarmUp)
        {
            var side = hires.WarmUpSide(workerCount);
            Console.Error.WriteLine($"[farmbench]   warm-up job {side}²");
            var (_, warmState, _) = await SubmitAndWaitAsync(farm, Job(hires, side), hires.StallLimit, [], ct);
            if (warmState != "Succeeded")
                throw new InvalidOperationException($"The warm-up job ended {warmState}; logs in {farm.Logs}");

            // Peaks from here on are the timed job's own.
            foreach (var process in farm.Workers.Append(farm.Coordinator))
                ProcessCpu.ResetPeakRss(process.Id);
        }

        var loads = new List<double>();
        var loadAtStart = LoadAverage();
        var cpuBefore = ProcessCpu.Snapshot();
        var clock = Stopwatch.StartNew();
        var (jobId, state, resultImage) = await SubmitAndWaitAsync(farm, Job(hires, hires.Size), hires.StallLimit, loads, ct);
        var wall = clock.Elapsed.TotalSeconds;
        var cpuAfter = ProcessCpu.Snapshot();
        var coordinatorPeak = ProcessCpu.PeakRssMiB(farm.Coordinator.Id);
        var workerPeaks = farm.Workers.Select(w => ProcessCpu.PeakRssMiB(w.Id)).ToList();
        var byProcess = ProcessCpu.ByCategory(cpuBefore, cpuAfter, farm.Coordinator.Id, farm.Workers.Select(p => p.Id).ToHashSet());
        var (timings, tileCount, tilesPerWorker) = await ReadLedgerAsync(farm.Postgres, jobId, ct);
        var load = new LoadSample(loadAtStart, loads.Count == 0 ? loadAtStart : loads.Average(), loads.Count == 0 ? loadAtStart : loads.Max());

        PngInfo? png = null;
        string? imageError = null;
        double checkSeconds = 0;
        if (resultImage is not null)
        {
            // The user's path: the coordinator's image URL, which redirects to the store (HttpClient follows it).
            var check = Stopwatch.StartNew();
            try
            {
                using var response = await farm.Http.GetAsync(resultImage.TrimStart('/'), HttpCompletionOption.ResponseHeadersRead, ct);
                response.EnsureSuccessStatusCode();
                await using var stream = await response.Content.ReadAsStreamAsync(ct);
                png = await PngCheck.ReadAsync(stream, ct);
                if (png.Width != hires.Size || png.Height != hires.Size)
                    imageError = $"the image is {png.Width}×{png.Height}, not {hires.Size}²";
            }
            catch (Exception ex) when (ex is InvalidDataException or HttpRequestException or EndOfStreamException)
            {
                imageError = ex.Message;
            }

            checkSeconds = check.Elapsed.TotalSeconds;
        }

        return new HiresRunResult(workerCount, round, state, wall, tileCount, timings, tilesPerWorker, coordinatorPeak, workerPeaks, byProcess,
            load, png, checkSeconds, imageError);
    }

    /// <summary>Per-stage times and tiles per worker from the items: index 0 is the base, the last the stitch, the rest tiles.</summary>
    private static async Task<(HiresTimings? Timings, int TileCount, IReadOnlyDictionary<string, int> TilesPerWorker)> ReadLedgerAsync(
        string postgres, Guid jobId, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(postgres);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(
            """
            SELECT i.index, i.worker_id, i.attempt,
                   EXTRACT(EPOCH FROM i.started_at - j.created_at)::float8,
                   EXTRACT(EPOCH FROM i.finished_at - j.created_at)::float8,
                   EXTRACT(EPOCH FROM j.finished_at - j.created_at)::float8
            FROM items i JOIN jobs j ON j.id = i.job_id
            WHERE i.job_id = @job
            ORDER BY i.index
            """, connection);
        command.Parameters.AddWithValue("job", jobId);
        var rows = new List<(long Index, string? Worker, int Attempt, double? Started, double? Finished)>();
        double? ledger = null;
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                rows.Add((reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt32(2),
                    reader.IsDBNull(3) ? null : reader.GetDouble(3), reader.IsDBNull(4) ? null : reader.GetDouble(4)));
                ledger = reader.IsDBNull(5) ? null : reader.GetDouble(5);
            }
        }

        var tiles = rows.Skip(1).SkipLast(1).ToList();
        var tilesPerWorker = tiles.GroupBy(t => t.Worker ?? "(none)").OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        if (rows.Count < 3 || ledger is null || rows.Any(r => r.Started is null || r.Finished is null))
            return (null, tiles.Count, tilesPerWorker);

        var baseItem = rows[0];
        var stitch = rows[^1];
        var firstTile = tiles.Min(t => t.Started!.Value);
        var lastTile = tiles.Max(t => t.Finished!.Value);
        var tileTimes = tiles.Select(t => t.Finished!.Value - t.Started!.Value).ToList();
        var firstTiles = tiles.GroupBy(t => t.Worker).Select(g => g.MinBy(t => t.Started!.Value)).OrderBy(t => t.Worker, StringComparer.Ordinal).ToList();
        var laterTiles = tiles.Except(firstTiles).Select(t => t.Finished!.Value - t.Started!.Value).DefaultIfEmpty(double.NaN).ToList();
        var timings = new HiresTimings(
            Ledger: ledger.Value,
            BaseWait: baseItem.Started!.Value,
            Base: baseItem.Finished!.Value - baseItem.Started.Value,
            TilesRelease: firstTile - baseItem.Finished.Value,
            Tiles: lastTile - firstTile,
            TileMean: laterTiles.Average(),
            FirstTiles: firstTiles.Select(t => t.Finished!.Value - t.Started!.Value).ToList(),
            TileSum: tileTimes.Sum(),
            StitchRelease: stitch.Started!.Value - lastTile,
            Stitch: stitch.Finished!.Value - stitch.Started.Value,
            ExtraAttempts: rows.Sum(r => r.Attempt - 1));
        return (timings, tiles.Count, tilesPerWorker);
    }

    private static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
}

internal static class HiresReport
{
    public static string Markdown(BenchOptions options, HiresOptions hires, IReadOnlyList<HiresRunResult> results)
    {
        var s = new StringBuilder();
        string F(double v, string format = "F1") => double.IsNaN(v) ? "—" : v.ToString(format, CultureInfo.InvariantCulture);
        var tileSteps = (int)(hires.Steps * hires.Strength);
        s.AppendLine(CultureInfo.InvariantCulture,
            $"Hires {hires.Size}×{hires.Size}, tile {hires.Tile} overlap {hires.Overlap}, base {(hires.BaseSize is { } b ? $"{b}²" : "default (≈512²)")}, {hires.Steps} steps (≈{tileSteps} per tile at strength {F(hires.Strength, "0.##")}), {hires.Sampler}, guidance {F(hires.Guidance, "0.##")}, seed {hires.Seed}; tiny model, Engine renderer, {hires.Threads} intra-op thread(s) and 1 slot per worker, memory budget {hires.MemoryBudget ?? "none"}, storage {options.Storage}; {hires.Rounds} round(s) of {string.Join(",", options.WorkerCounts)} worker(s), back to back in one invocation{(hires.Rounds > 1 ? ", the order reversed every other round" : "")}, each on a fresh farm{(hires.WarmUp ? " warmed by one small hires job first (peaks reset after it)" : " (cold: the first job of freshly started workers)")}; processor count {Environment.ProcessorCount}.");
        s.AppendLine();
        s.AppendLine("| workers | round | state | submit → final image (s) | base (s) | tiles: span / mean per tile / each worker's first (s) | stitch (s) | waits: base / tiles / stitch (s) | tiles per worker | coordinator peak RSS (MiB) | worker peak RSS (MiB) | load avg start / mean / max | CPU s by process |");
        s.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var t = r.Timings;
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Workers} | {r.Round} | {r.State}{(t is { ExtraAttempts: > 0 } ? $" ({t.ExtraAttempts} retries)" : "")} | **{F(r.WallSeconds)}** | {F(t?.Base ?? double.NaN)} | {F(t?.Tiles ?? double.NaN)} / {F(t?.TileMean ?? double.NaN, "F2")} / {(t is null ? "—" : string.Join(", ", t.FirstTiles.Select(x => F(x, "F1"))))} | {F(t?.Stitch ?? double.NaN)} | {F(t?.BaseWait ?? double.NaN, "F2")} / {F(t?.TilesRelease ?? double.NaN, "F2")} / {F(t?.StitchRelease ?? double.NaN, "F2")} | {string.Join(" + ", r.TilesPerWorker.Values)} of {r.TileCount} | {F(r.CoordinatorPeakMiB, "F0")} | {string.Join(", ", r.WorkerPeakMiB.Select(m => F(m, "F0")))} | {F(r.Load.AtStart)} / {F(r.Load.Mean)} / {F(r.Load.Max)} | {string.Join(", ", r.CpuByProcess.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {F(p.Value)}"))} |");
        }

        s.AppendLine();
        var byCount = results.Where(r => r.State == "Succeeded").GroupBy(r => r.Workers).OrderBy(g => g.Key).ToList();
        if (byCount.Count > 1)
        {
            var reference = byCount[0];
            var referenceWall = Median(reference.Select(r => r.WallSeconds));
            var referenceTiles = Median(reference.Select(r => r.Timings?.Tiles ?? double.NaN));
            s.AppendLine(CultureInfo.InvariantCulture, $"| workers | runs | median submit → final image (s) | speed-up vs {reference.Key} | efficiency | median tiles span (s) | tiles speed-up |");
            s.AppendLine("|---|---|---|---|---|---|---|");
            foreach (var group in byCount)
            {
                var wall = Median(group.Select(r => r.WallSeconds));
                var tiles = Median(group.Select(r => r.Timings?.Tiles ?? double.NaN));
                var speedUp = referenceWall / wall;
                s.AppendLine(CultureInfo.InvariantCulture,
                    $"| {group.Key} | {group.Count()} | {F(wall)} | **{F(speedUp, "F2")}×** | {F(speedUp / group.Key * reference.Key * 100, "F0")} % | {F(tiles)} | {F(referenceTiles / tiles, "F2")}× |");
            }

            s.AppendLine();
        }

        foreach (var r in results.Where(r => r.Image is not null || r.ImageError is not null))
        {
            s.AppendLine(r.Image is { } png
                ? string.Create(CultureInfo.InvariantCulture, $"- {r.Workers} worker(s), round {r.Round}: final PNG {png.Width}×{png.Height}, {png.BitDepth}-bit colour type {png.ColorType}, {png.Bytes:N0} bytes ({png.Bytes / 1048576.0:F1} MiB), {png.Chunks} chunks with valid CRCs, IDAT inflated to {png.InflatedBytes:N0} bytes = every row ({r.ImageCheckSeconds:F1} s to stream and check){(r.ImageError is { } e ? $"; **{e}**" : "")}")
                : $"- {r.Workers} worker(s), round {r.Round}: final image check **failed**: {r.ImageError}");
        }

        return s.ToString();
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN
            : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
