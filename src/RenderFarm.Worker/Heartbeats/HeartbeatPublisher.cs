using MassTransit;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Models;
using RenderFarm.Worker.Slots;

namespace RenderFarm.Worker.Heartbeats;

/// <summary>Builds and sends a slot's <see cref="WorkerHeartbeat"/>.</summary>
public sealed class HeartbeatPublisher(IDeviceProbe probe, WorkerLifecycle lifecycle, IOptions<WorkerOptions> options, TimeProvider time)
{
    /// <summary>Every session loaded and kept loaded; the memory planner (issue 5) adds the others.</summary>
    public const string ResidentStrategy = "resident";

    public WorkerHeartbeat Create(WorkerSlot slot)
    {
        ArgumentNullException.ThrowIfNull(slot);
        var device = probe.Probe();
        var settings = options.Value;
        return new WorkerHeartbeat(
            WorkerId: slot.WorkerId,
            Host: Environment.MachineName,
            DeviceName: device.Name,
            MemoryTotalBytes: device.MemoryTotalBytes,
            MemoryFreeBytes: device.MemoryFreeBytes,
            MemoryBudgetBytes: settings.MemoryBudgetBytes ?? device.MemoryTotalBytes,
            ExecutionProviders: ExecutionProviders.Available,
            LoadedModels: [.. slot.Renderer.LoadedModels],
            CurrentItemIds: slot.CurrentItemIds,
            State: slot.StateWhen(lifecycle.IsDraining),
            Strategy: ResidentStrategy,
            Pool: settings.Pool,
            Timestamp: time.GetUtcNow());
    }

    public Task PublishAsync(WorkerSlot slot, IPublishEndpoint endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return endpoint.Publish(Create(slot), cancellationToken);
    }
}
