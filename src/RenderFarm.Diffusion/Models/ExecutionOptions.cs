using Microsoft.ML.OnnxRuntime;

namespace RenderFarm.Diffusion.Models;

/// <summary>Which execution provider runs the sessions.</summary>
public enum ExecutionProviderPreference
{
    /// <summary>CUDA when the native runtime offers it, CPU otherwise.</summary>
    Auto,
    Cpu,
    /// <summary>CUDA or fail: for workers that must not silently fall back to a CPU that is 100× slower.</summary>
    Cuda,
}

/// <summary>How the engine creates ONNX Runtime sessions.</summary>
public sealed record ExecutionOptions
{
    public ExecutionProviderPreference Provider { get; init; } = ExecutionProviderPreference.Auto;
    public int CudaDeviceId { get; init; }
    /// <summary>Intra-op threads per session; 0 lets ONNX Runtime use every core.</summary>
    public int IntraOpThreads { get; init; }
    /// <summary>
    /// The memory a render must fit: process memory on the CPU, device memory on CUDA (null: unlimited). With a
    /// budget the pipeline plans a strategy (or checks the requested one) against the model's memory profile and
    /// refuses what will not fit before running, and caps ONNX Runtime's arenas (<see cref="ArenaLimitBytes"/>).
    /// </summary>
    public long? MemoryBudgetBytes { get; init; }
    /// <summary>
    /// Cap on what ONNX Runtime may allocate for these sessions (null: no cap, ONNX Runtime's defaults). On CUDA it is
    /// the provider's <c>gpu_mem_limit</c>; on the CPU a process-wide arena with this limit that capped sessions share
    /// (see <see cref="CpuArena"/>). An allocation past it fails the run instead of exhausting the machine. The
    /// pipeline derives it from <see cref="MemoryBudgetBytes"/> (the budget less the runtime's own base).
    /// </summary>
    public long? ArenaLimitBytes { get; init; }

    public static ExecutionOptions Default { get; } = new();
}

/// <summary>What the native runtime in this process can actually run.</summary>
public static class ExecutionProviders
{
    public const string Cpu = "CPUExecutionProvider";
    public const string Cuda = "CUDAExecutionProvider";

    /// <summary>Providers of the loaded native build (the CPU package lists only the CPU provider).</summary>
    public static IReadOnlyList<string> Available { get; } = OrtEnv.Instance().GetAvailableProviders();

    public static bool CudaAvailable => Available.Contains(Cuda);

    /// <summary>The provider a session will use for <paramref name="preference"/>, or an error naming the fix.</summary>
    public static string Resolve(ExecutionProviderPreference preference) => preference switch
    {
        ExecutionProviderPreference.Cpu => Cpu,
        ExecutionProviderPreference.Auto => CudaAvailable ? Cuda : Cpu,
        ExecutionProviderPreference.Cuda when CudaAvailable => Cuda,
        _ => throw new InvalidOperationException(
            "CUDA was requested but this ONNX Runtime build offers only " + string.Join(", ", Available) +
            ". Build the worker with -p:OrtFlavor=Gpu (the CUDA image does) or choose the CPU provider."),
    };
}
