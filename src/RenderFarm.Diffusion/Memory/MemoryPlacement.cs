using RenderFarm.Diffusion.Models;

namespace RenderFarm.Diffusion.Memory;

/// <summary>Where each component's sessions run under a memory strategy.</summary>
public static class MemoryPlacement
{
    /// <summary>
    /// The VAE's session options: under <see cref="MemoryStrategies.VaeCpu"/> the CPU provider whatever the UNet
    /// uses, and no device arena limit (its memory is then host memory, outside a GPU budget).
    /// </summary>
    public static ExecutionOptions ForVae(ExecutionOptions execution, MemoryStrategy strategy)
    {
        ArgumentNullException.ThrowIfNull(execution);
        ArgumentNullException.ThrowIfNull(strategy);
        if (!strategy.Has(MemoryStrategies.VaeCpu) || execution.Provider == ExecutionProviderPreference.Cpu)
        {
            return execution;
        }

        // On a CPU-only build Auto already resolves to the CPU, where the budget is the process's: keep its cap.
        var onDevice = execution.Provider == ExecutionProviderPreference.Cuda || ExecutionProviders.CudaAvailable;
        return execution with { Provider = ExecutionProviderPreference.Cpu, ArenaLimitBytes = onDevice ? null : execution.ArenaLimitBytes };
    }
}
