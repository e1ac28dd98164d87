namespace RenderFarm.Worker.Heartbeats;

/// <summary>
/// What the worker renders on. The CPU probe ships now; the NVML probe (issue 5) implements the same interface,
/// so heartbeats and placement do not change when it arrives.
/// </summary>
public interface IDeviceProbe
{
    /// <summary>The device as it is now; called once per heartbeat, so it must be cheap.</summary>
    DeviceReport Probe();
}

/// <summary>A device and its memory at one moment.</summary>
/// <param name="Name">Model name (e.g. NVIDIA H100, or the CPU's model name).</param>
/// <param name="MemoryTotalBytes">Memory in all.</param>
/// <param name="MemoryFreeBytes">Memory available to a new allocation now.</param>
public sealed record DeviceReport(string Name, long MemoryTotalBytes, long MemoryFreeBytes);
