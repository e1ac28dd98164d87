using Microsoft.Extensions.Logging;
using RenderFarm.Diffusion.Models;

namespace RenderFarm.Worker.Heartbeats;

/// <summary>
/// Chooses the probe for the device the engine will actually render on: a GPU probe only when the sessions will
/// run on CUDA (a GPU next to a CPU-only ONNX Runtime build renders nothing, and reporting its memory would make
/// the coordinator place work that does not fit the CPU).
/// </summary>
public static class DeviceProbes
{
    public static IDeviceProbe Create(ExecutionProviderPreference preference, int gpuIndex, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        if (ExecutionProviders.Resolve(preference) != ExecutionProviders.Cuda)
        {
            return new CpuDeviceProbe();
        }

        if (NvmlDeviceProbe.TryCreate(gpuIndex, out var nvmlReason) is { } nvml)
        {
            logger.LogInformation("Device: {Name} via NVML (driver {Driver}, compute capability {Capability})", nvml.Probe().Name, nvml.Driver, nvml.ComputeCapability);
            return nvml;
        }

        if (NvidiaSmiDeviceProbe.TryCreate(gpuIndex, out var smiReason) is { } smi)
        {
            logger.LogWarning("NVML unavailable ({Reason}); probing GPU {Index} with nvidia-smi", nvmlReason, gpuIndex);
            return smi;
        }

        logger.LogWarning("CUDA renders but no GPU probe works ({Nvml}; {Smi}); reporting host memory instead", nvmlReason, smiReason);
        return new CpuDeviceProbe();
    }
}
