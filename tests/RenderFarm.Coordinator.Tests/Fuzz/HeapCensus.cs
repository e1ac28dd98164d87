using System.Numerics;
using Microsoft.Diagnostics.Runtime;

namespace RenderFarm.Coordinator.Tests.Fuzz;

/// <summary>
/// The test process's managed heap after a full compacting collection, read from a snapshot of the process itself (on
/// Linux ClrMD writes a core dump to the temp folder and reads it), split into what ArrayPool.Shared may be holding and
/// everything else. The split is what a memory bound on a server needs: the shared pool keeps up to 32 returned arrays
/// per core and one per thread for each power-of-two size up to 1 GiB, so a few requests with large bodies leave
/// hundreds of MiB in it by design (a dump after a fuzz run that grew 287 MiB held 36 pooled byte arrays of 1 to 8 MiB
/// and four of 64 MiB), and that retention keeps growing as more threads and cores return buffers. GC.GetTotalMemory
/// cannot tell those buffers from memory the server keeps.
/// </summary>
internal static class HeapCensus
{
    public readonly record struct Census(long PoolSizedArrayBytes, long OtherBytes);

    public static Census Take()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        using var target = DataTarget.CreateSnapshotAndAttach(Environment.ProcessId);
        // The running runtime's own DAC, beside it in the shared framework; ClrMD would otherwise look for one on a
        // symbol server. Its version check is skipped because the snapshot's module reads as version 0.0 here, while
        // this DAC is by construction the one of the runtime that wrote the snapshot.
        var dac = Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), OperatingSystem.IsWindows() ? "mscordaccore.dll" : "libmscordaccore.so");
        using var runtime = target.ClrVersions.Single().CreateRuntime(dac, ignoreMismatch: true);
        long pooled = 0;
        long other = 0;
        foreach (var obj in runtime.Heap.EnumerateObjects())
        {
            if (!obj.IsValid || obj.IsFree)
            {
                continue;
            }

            if (IsPoolSized(obj))
            {
                pooled += (long)obj.Size;
            }
            else
            {
                other += (long)obj.Size;
            }
        }

        return new Census(pooled, other);
    }

    /// <summary>
    /// A byte or char array of one of the pool's bucket lengths (16 · 2^n). An array the server kept per request is
    /// counted here only if its length happens to be such a power of two; a request's own data (bodies, strings) is not.
    /// </summary>
    private static bool IsPoolSized(ClrObject obj) =>
        obj.Type?.Name is "System.Byte[]" or "System.Char[]"
        && obj.AsArray().Length is var length && length >= 16 && BitOperations.IsPow2(length);
}
