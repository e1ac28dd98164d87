using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Worker.Heartbeats;
using RenderFarm.Worker.Outages;
using RenderFarm.Worker.Slots;

namespace RenderFarm.Worker.Telemetry;

/// <summary>
/// The worker's readiness beyond its bus (MassTransit adds its own bus check): unhealthy while its slots warm up or
/// once it drains, degraded while the object store cannot be reached (rendered items wait at their upload) or a slot
/// lacks the default model it was told to load, healthy otherwise.
/// </summary>
internal sealed class WorkerHealthCheck(WorkerSlotPool pool, WorkerLifecycle lifecycle, StoreOutage storeOutage, IOptions<WorkerOptions> options) : IHealthCheck
{
    public const string Name = "worker-slots";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var settings = options.Value;
        var states = pool.Slots.Select(s => s.StateWhen(lifecycle.IsDraining)).ToList();
        var data = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["slots"] = states.Count,
            ["busy"] = states.Count(s => s == WorkerState.Busy),
            ["idle"] = states.Count(s => s == WorkerState.Idle),
            ["models"] = string.Join(",", pool.Slots.SelectMany(s => s.Renderer.LoadedModels).Distinct(StringComparer.Ordinal)),
        };

        if (states.Contains(WorkerState.Draining))
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("Draining: finishing current items, taking no new ones.", data: data));
        }

        if (states.Contains(WorkerState.Starting))
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("Starting: slots are still warming up.", data: data));
        }

        if (storeOutage.UnreachableSince is { } since)
        {
            data["storeUnreachableSince"] = since.ToString("O", CultureInfo.InvariantCulture);
            return Task.FromResult(HealthCheckResult.Degraded(
                $"The object store cannot be reached since {since:O}: rendered items wait at their upload (for at most {settings.StoreOutageDeadline}).", data: data));
        }

        var missing = settings.WarmUp && settings.Renderer == ItemRendererKind.Engine
            ? pool.Slots.Where(s => !s.Renderer.LoadedModels.Contains(settings.DefaultModel)).Select(s => s.WorkerId).ToList()
            : [];
        return Task.FromResult(missing.Count > 0
            ? HealthCheckResult.Degraded($"Model '{settings.DefaultModel}' is not loaded on {string.Join(", ", missing)}.", data: data)
            : HealthCheckResult.Healthy($"{states.Count} slot(s) ready.", data));
    }
}
