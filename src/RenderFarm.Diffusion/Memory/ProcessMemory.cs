using System.Globalization;

namespace RenderFarm.Diffusion.Memory;

/// <summary>
/// This process's resident memory from <c>/proc/self/status</c>. ONNX Runtime's C# API exposes no arena statistics
/// (the C API's <c>AllocatorGetStats</c> is not bound), and process RSS is what a budget protects anyway — the
/// machine runs out of physical memory, not of arena — so peaks are measured as RSS: <c>VmHWM</c>, reset between
/// measurements by writing 5 to <c>/proc/self/clear_refs</c> (Linux ≥ 4.0), which sets the high-water mark to the
/// current RSS.
/// </summary>
public static class ProcessMemory
{
    /// <summary>Current resident bytes (VmRSS), or 0 where /proc is not available.</summary>
    public static long CurrentBytes => Read("VmRSS:");

    /// <summary>Peak resident bytes since start or the last <see cref="TryResetPeak"/> (VmHWM), or 0 where /proc is not available.</summary>
    public static long PeakBytes => Read("VmHWM:");

    /// <summary>Resets the peak to the current RSS; false where the kernel does not allow it.</summary>
    public static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long Read(string key)
    {
        const string Status = "/proc/self/status";
        if (!File.Exists(Status))
        {
            return 0;
        }

        foreach (var line in File.ReadLines(Status))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                var kilobytes = line[key.Length..].Trim().Split(' ')[0];
                return long.Parse(kilobytes, CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }
}
