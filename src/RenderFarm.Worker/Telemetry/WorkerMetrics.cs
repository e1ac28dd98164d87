using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using RenderFarm.Telemetry;
using RenderFarm.Worker.Heartbeats;
using RenderFarm.Worker.Outages;

namespace RenderFarm.Worker.Telemetry;

/// <summary>
/// The worker's instruments (meter <c>RenderFarm.Worker</c>): render durations and denoising steps recorded by the
/// render consumer; memory and GPU gauges read from the last heartbeat's device report, so a scrape never probes the
/// device itself (the heartbeat already does, once per interval).
/// </summary>
public sealed class WorkerMetrics
{
    // A 64×64 test render takes milliseconds, an SDXL 1024² render on a CPU many minutes.
    private static readonly double[] RenderBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200];

    private readonly Histogram<double> _renderDuration;
    private readonly Counter<long> _denoiseSteps;
    private readonly ConcurrentDictionary<string, Reading> _readings = new(StringComparer.Ordinal);

    /// <param name="meters">The host's meter factory.</param>
    /// <param name="storeOutage">The store-outage policy whose wait the <c>renderfarm.worker.store.unreachable</c> gauge reports; absent in hosts without uploads.</param>
    /// <param name="time">The clock the gauge measures with.</param>
    /// <param name="options">The worker's settings: its id labels the store gauge (the store is the process's, not a slot's).</param>
    public WorkerMetrics(IMeterFactory meters, StoreOutage? storeOutage = null, TimeProvider? time = null, IOptions<WorkerOptions>? options = null)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var clock = time ?? TimeProvider.System;
        var process = new KeyValuePair<string, object?>(RenderFarmTags.Worker, options?.Value.Id);
        var meter = meters.Create(RenderFarmDiagnostics.Worker);
        _renderDuration = meter.CreateHistogram("renderfarm.item.render.duration", "s",
            "Time a worker spent on an item: inputs, engine, PNG encode and upload (a batch's time is each of its items').",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = RenderBuckets });
        _denoiseSteps = meter.CreateCounter<long>("renderfarm.worker.denoise.steps", "{step}",
            "Denoising steps run, one per image per step; its rate is the worker's steps per second.");
        meter.CreateObservableGauge("renderfarm.worker.memory.total", () => Measure(r => r.Device.MemoryTotalBytes), "By", "Device memory in all.");
        meter.CreateObservableGauge("renderfarm.worker.memory.free", () => Measure(r => r.Device.MemoryFreeBytes), "By", "Device memory free at the last heartbeat.");
        meter.CreateObservableGauge("renderfarm.worker.memory.budget", () => Measure(r => r.BudgetBytes), "By", "The memory budget renders are planned against.");
        meter.CreateObservableGauge("renderfarm.worker.gpu.utilization", () => MeasureGpu(g => g.Utilization), "1", "GPU busy fraction over NVML's last sample period (NVML only).");
        meter.CreateObservableGauge("renderfarm.worker.gpu.temperature", () => MeasureGpu(g => g.TemperatureCelsius), "Cel", "GPU core temperature (NVML only).");
        meter.CreateObservableGauge("renderfarm.worker.gpu.power", () => MeasureGpu(g => g.PowerWatts), "W", "GPU power draw (NVML only).");
        if (storeOutage is not null)
        {
            meter.CreateObservableGauge("renderfarm.worker.store.unreachable",
                () => new Measurement<double>(storeOutage.UnreachableSince is { } since ? Math.Max(0, (clock.GetUtcNow() - since).TotalSeconds) : 0, process), "s",
                "How long this worker's calls to the object store have failed as unreachable (uploads wait meanwhile); 0 while it answers.");
        }
    }

    /// <summary>Keeps a slot's device report (and GPU sensors, where there are any) for the gauges.</summary>
    public void Observe(string workerId, DeviceReport device, long budgetBytes, GpuReading? gpu) =>
        _readings[workerId] = new Reading(device, budgetBytes, gpu);

    public void Rendered(string workerId, string model, int width, int height, string sampler, TimeSpan duration) =>
        _renderDuration.Record(duration.TotalSeconds,
            new KeyValuePair<string, object?>(RenderFarmTags.Worker, workerId),
            new KeyValuePair<string, object?>(RenderFarmTags.Model, model),
            new KeyValuePair<string, object?>(RenderFarmTags.SizeClass, RenderFarmTags.SizeClassOf(width, height)),
            new KeyValuePair<string, object?>(RenderFarmTags.Sampler, sampler));

    public void DenoiseSteps(string workerId, int steps) =>
        _denoiseSteps.Add(steps, new KeyValuePair<string, object?>(RenderFarmTags.Worker, workerId));

    private IEnumerable<Measurement<long>> Measure(Func<Reading, long> value) =>
        _readings.Select(r => new Measurement<long>(value(r.Value), new KeyValuePair<string, object?>(RenderFarmTags.Worker, r.Key)));

    private IEnumerable<Measurement<double>> MeasureGpu(Func<GpuReading, double?> value)
    {
        foreach (var (worker, reading) in _readings)
        {
            if (reading.Gpu is { } gpu && value(gpu) is { } measured)
            {
                yield return new Measurement<double>(measured, new KeyValuePair<string, object?>(RenderFarmTags.Worker, worker));
            }
        }
    }

    private sealed record Reading(DeviceReport Device, long BudgetBytes, GpuReading? Gpu);
}
