using Microsoft.ML.OnnxRuntime;

namespace RenderFarm.Diffusion.Models;

/// <summary>
/// The CPU side of <see cref="ExecutionOptions.ArenaLimitBytes"/>. ONNX Runtime has no per-session CPU arena limit,
/// so capped sessions share one arena registered with the process's <see cref="OrtEnv"/> (<c>OrtArenaCfg</c>'s
/// <c>max_mem</c>, growing by what is requested) and opt in with <c>session.use_env_allocators</c>; uncapped sessions
/// keep their own default arenas. A new limit replaces the arena for sessions created afterwards (loaded ones keep
/// theirs). The managed <c>OrtArenaCfg</c> takes a 32-bit <c>max_mem</c>, so a limit above 4 GiB − 1 cannot be
/// expressed: such sessions use the shared arena uncapped, and the pipeline's pre-flight check against the plan is
/// the only guard (the CUDA limit has no such ceiling).
/// </summary>
public static class CpuArena
{
    private const int SameAsRequested = 1;
    private static readonly Lock Gate = new();
    private static long? _registered;
    // ONNX Runtime matches env allocators to sessions by memory info: the CPU device with the arena allocator type.
    private static readonly OrtMemoryInfo ArenaInfo = new(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.ArenaAllocator, 0, OrtMemType.Default);

    /// <summary>The limit of the arena capped sessions currently get (null before the first).</summary>
    public static long? RegisteredLimit
    {
        get
        {
            lock (Gate)
            {
                return _registered;
            }
        }
    }

    /// <summary>The cap the arena enforces for <paramref name="limitBytes"/> (0 = uncapped).</summary>
    public static uint ArenaMaxBytes(long limitBytes) => limitBytes >= uint.MaxValue ? 0u : (uint)limitBytes;

    internal static void Use(SessionOptions sessionOptions, long limitBytes)
    {
        lock (Gate)
        {
            if (_registered != limitBytes)
            {
                var env = OrtEnv.Instance();
                if (_registered is not null)
                {
                    env.UnregisterAllocator(ArenaInfo);
                }

                using var config = new OrtArenaCfg(ArenaMaxBytes(limitBytes), SameAsRequested, -1, -1);
                env.CreateAndRegisterAllocator(ArenaInfo, config);
                _registered = limitBytes;
            }
        }

        sessionOptions.AddSessionConfigEntry("session.use_env_allocators", "1");
    }
}
