using System.Text.Json;
using System.Text.Json.Serialization;

/// <summary>
/// The throughput runs as JSON (<c>--json FILE</c>), for scripts and for comparing invocations: one object per run, in
/// the order the runs went, with what the table shows plus the raw figures behind its rounded columns.
/// </summary>
internal static class JsonReport
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // A run with no finished items has NaN percentiles; written as "NaN" rather than failing the whole report.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Write(BenchOptions options, IReadOnlyList<RunResult> results) => JsonSerializer.Serialize(new
    {
        items = options.Items,
        storage = options.Storage,
        renderer = options.PreviewIntervals.Count > 0 ? "Engine" : "Null",
        unitSize = options.UnitSize > 0 ? options.UnitSize : (int?)null,
        processorCount = Environment.ProcessorCount,
        startedAt = DateTimeOffset.UtcNow,
        runs = results.Select(r => new
        {
            items = r.Items,
            workers = r.Workers,
            unitsPerWorker = r.UnitsPerWorker,
            unitReports = r.UnitReports,
            ledgerBatch = r.LedgerBatch,
            spinLimit = r.SpinLimit,
            previewSeconds = r.PreviewSeconds,
            previewsSeen = r.PreviewSeconds is null ? (int?)null : r.PreviewsSeen,
            finalState = r.FinalState,
            lost = r.Lost,
            duplicated = r.Duplicated,
            storedImages = r.StoredImages,
            submitSeconds = r.SubmitTime.TotalSeconds,
            submitToDoneSeconds = r.SubmitToDone.TotalSeconds,
            completionsPerSecond = r.CompletionsPerSecond,
            coordinatorCpuSeconds = r.CoordinatorCpuSeconds,
            coordinatorPeakRssMiB = r.PeakRssMiB,
            peakBrokerQueueDepth = r.PeakBrokerDepth,
            peakSharedQueueDepth = r.PeakSharedQueueDepth,
            brokerSamples = r.BrokerSamples,
            loadAverage = new { start = r.Load.Start, end = r.Load.End, peak = r.PeakLoad },
            endToEndSeconds = Percentiles(r.EndToEndPercentiles),
            workerSideSeconds = Percentiles(r.WorkerSidePercentiles),
            cpuSecondsByProcess = r.CpuSecondsByProcess,
        }),
    }, Options);

    private static object Percentiles(double[] p) => new { p50 = p[0], p95 = p[1], p99 = p[2], max = p[3] };
}
