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
    /// <summary>
    /// The probe for the card <c>--gpu <paramref name="gpu"/></c> means under this process's <c>CUDA_VISIBLE_DEVICES</c>
    /// (see <see cref="GpuSelection"/>), or the CPU's when the sessions will not run on CUDA.
    /// </summary>
    public static IDeviceProbe Create(ExecutionProviderPreference preference, int gpu, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        if (ExecutionProviders.Resolve(preference) != ExecutionProviders.Cuda)
        {
            return new CpuDeviceProbe();
        }

        return Create(GpuSelection.FromEnvironment(gpu), logger);
    }

    private static IDeviceProbe Create(GpuSelection gpu, ILogger logger)
    {
        if (gpu.IndexOrderMayDiffer(Environment.GetEnvironmentVariable(GpuSelection.DeviceOrderVariable)))
        {
            logger.LogInformation("{Gpu}: CUDA counts devices in NVML's order only with {Variable}=PCI_BUS_ID (or a UUID in CUDA_VISIBLE_DEVICES); set it on hosts with several GPUs",
                gpu, GpuSelection.DeviceOrderVariable);
        }

        if (NvmlDeviceProbe.TryCreate(gpu, out var nvmlReason) is { } nvml)
        {
            logger.LogInformation("Device: {Gpu}, {Name} via NVML (driver {Driver}, compute capability {Capability})", gpu, nvml.Probe().Name, nvml.Driver, nvml.ComputeCapability);
            return nvml;
        }

        if (NvidiaSmiDeviceProbe.TryCreate(gpu, out var smiReason) is { } smi)
        {
            logger.LogWarning("NVML unavailable ({Reason}); probing {Gpu} with nvidia-smi", nvmlReason, gpu);
            return smi;
        }

        logger.LogWarning("CUDA renders but no GPU probe works ({Nvml}; {Smi}); reporting host memory instead", nvmlReason, smiReason);
        return new CpuDeviceProbe();
    }
}
