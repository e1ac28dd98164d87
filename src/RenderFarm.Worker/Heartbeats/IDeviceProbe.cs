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

/// <summary>A probe that can also read a GPU's sensors (NVML); CPU and nvidia-smi probes do not implement it.</summary>
public interface IGpuSensors
{
    /// <summary>The sensors now; a reading NVML refuses (unsupported on the board, no permission) is null.</summary>
    GpuReading ReadSensors();
}

/// <summary>One reading of a GPU's sensors.</summary>
/// <param name="Utilization">Fraction of the last sample period a kernel ran, 0–1.</param>
/// <param name="TemperatureCelsius">Core temperature.</param>
/// <param name="PowerWatts">Board power draw.</param>
public sealed record GpuReading(double? Utilization, double? TemperatureCelsius, double? PowerWatts)
{
    /// <summary>From NVML's units: utilisation in percent, power in milliwatts.</summary>
    public static GpuReading FromNvml(uint? utilizationPercent, uint? temperatureCelsius, uint? powerMilliwatts) =>
        new(utilizationPercent / 100.0, temperatureCelsius, powerMilliwatts / 1000.0);
}
