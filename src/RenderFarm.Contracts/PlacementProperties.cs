namespace RenderFarm.Contracts;

/// <summary>
/// Names of the worker properties that placement matches work against. The worker publishes them and the
/// coordinator's placement strategy reads them; both use these constants so the two sides cannot drift.
/// </summary>
public static class PlacementProperties
{
    /// <summary>Bytes of accelerator memory the worker's memory policy lets the engine use.</summary>
    public const string MemoryBudgetBytes = "memoryBudgetBytes";

    /// <summary>Bytes of accelerator memory currently free on the worker's device.</summary>
    public const string MemoryFreeBytes = "memoryFreeBytes";

    /// <summary>Total bytes of accelerator memory on the worker's device.</summary>
    public const string MemoryTotalBytes = "memoryTotalBytes";

    /// <summary>Models whose sessions are loaded now; placement prefers these workers to avoid a reload.</summary>
    public const string LoadedModels = "loadedModels";

    /// <summary>ONNX Runtime execution providers the worker can run (e.g. CUDAExecutionProvider).</summary>
    public const string ExecutionProviders = "executionProviders";

    /// <summary>Named pool the worker belongs to, so operators can fence work onto a set of machines.</summary>
    public const string Pool = "pool";

    /// <summary>Pool a worker is in when its operator names none.</summary>
    public const string DefaultPool = "default";
}
