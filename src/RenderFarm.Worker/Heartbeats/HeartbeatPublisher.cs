using MassTransit;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Models;
using RenderFarm.Messaging;
using RenderFarm.Worker.Memory;
using RenderFarm.Worker.Models;
using RenderFarm.Worker.Outages;
using RenderFarm.Worker.Slots;
using RenderFarm.Worker.Telemetry;

namespace RenderFarm.Worker.Heartbeats;

/// <summary>
/// Builds and sends a slot's <see cref="WorkerHeartbeat"/>: the device, the memory budget and what it holds of the
/// default model, the slot's current strategy, the models on disk, the process's own render queue and whether the
/// object store can be reached.
/// </summary>
public sealed class HeartbeatPublisher(
    IDeviceProbe probe,
    WorkerLifecycle lifecycle,
    WorkerMemory memory,
    ModelCatalog catalog,
    IOptions<WorkerOptions> options,
    TimeProvider time,
    WorkerMetrics metrics,
    StoreOutage storeOutage)
{
    public WorkerHeartbeat Create(WorkerSlot slot)
    {
        ArgumentNullException.ThrowIfNull(slot);
        var device = probe.Probe();
        var settings = options.Value;
        var capacity = memory.Capacity(device);
        metrics.Observe(slot.WorkerId, device, memory.ReportedBudgetBytes(device), (probe as IGpuSensors)?.ReadSensors());
        return new WorkerHeartbeat(
            WorkerId: slot.WorkerId,
            Host: Environment.MachineName,
            DeviceName: device.Name,
            MemoryTotalBytes: device.MemoryTotalBytes,
            MemoryFreeBytes: device.MemoryFreeBytes,
            MemoryBudgetBytes: memory.ReportedBudgetBytes(device),
            ExecutionProviders: ExecutionProviders.Available,
            LoadedModels: [.. slot.Renderer.LoadedModels],
            CurrentItemIds: slot.CurrentItemIds,
            State: slot.StateWhen(lifecycle.IsDraining),
            // The slot's current or last render; before its first, what a default-sized render would use.
            Strategy: slot.Renderer.MemoryStrategy ?? capacity.Strategy,
            Pool: settings.Pool,
            Timestamp: time.GetUtcNow(),
            MaxPixels: capacity.MaxPixels,
            ResidentMaxPixels: capacity.ResidentMaxPixels,
            InstalledModels: catalog.Installed(),
            RenderQueue: QueueNames.WorkerQueue(settings.Id),
            StoreUnreachableSince: storeOutage.UnreachableSince);
    }

    public Task PublishAsync(WorkerSlot slot, IPublishEndpoint endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return endpoint.Publish(Create(slot), cancellationToken);
    }
}
