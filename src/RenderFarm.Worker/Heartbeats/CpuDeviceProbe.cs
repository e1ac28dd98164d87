namespace RenderFarm.Worker.Heartbeats;

/// <summary>
/// The CPU and the RAM a render may use: the model name from <c>/proc/cpuinfo</c> and <c>MemTotal</c> /
/// <c>MemAvailable</c> from <c>/proc/meminfo</c>, falling back to what the GC knows (which also honours a
/// container's memory limit) where those files do not exist.
/// </summary>
public sealed class CpuDeviceProbe : IDeviceProbe
{
    public const string GenericName = "CPU";

    private readonly string _cpuInfoPath;
    private readonly string _memInfoPath;
    private readonly Lazy<string> _name;

    public CpuDeviceProbe()
        : this("/proc/cpuinfo", "/proc/meminfo")
    {
    }

    internal CpuDeviceProbe(string cpuInfoPath, string memInfoPath)
    {
        _cpuInfoPath = cpuInfoPath;
        _memInfoPath = memInfoPath;
        _name = new Lazy<string>(ReadName);
    }

    public DeviceReport Probe()
    {
        var (total, free) = ReadMemory();
        return new DeviceReport(_name.Value, total, free);
    }

    private string ReadName()
    {
        try
        {
            if (File.Exists(_cpuInfoPath))
            {
                foreach (var line in File.ReadLines(_cpuInfoPath))
                {
                    var colon = line.IndexOf(':', StringComparison.Ordinal);
                    if (colon > 0 && line.AsSpan(0, colon).Trim().SequenceEqual("model name"))
                    {
                        var name = line[(colon + 1)..].Trim();
                        if (name.Length > 0)
                        {
                            return name;
                        }
                    }
                }
            }
        }
        catch (IOException)
        {
            // A heartbeat with a generic name is better than none.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }

        return GenericName;
    }

    private (long Total, long Free) ReadMemory()
    {
        var gc = GC.GetGCMemoryInfo();
        // The GC's figure includes a container limit, which /proc/meminfo does not show.
        var limit = gc.TotalAvailableMemoryBytes;
        long? total = null;
        long? available = null;
        try
        {
            if (File.Exists(_memInfoPath))
            {
                foreach (var line in File.ReadLines(_memInfoPath))
                {
                    if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                    {
                        total = ParseKilobytes(line);
                    }
                    else if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    {
                        available = ParseKilobytes(line);
                    }
                }
            }
        }
        catch (IOException)
        {
            // Fall back to the GC's view below.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }

        var totalBytes = total is { } t ? Math.Min(t, limit) : limit;
        var freeBytes = available is { } a
            ? Math.Min(a, totalBytes)
            : Math.Max(0, totalBytes - gc.MemoryLoadBytes);
        return (totalBytes, freeBytes);
    }

    private static long? ParseKilobytes(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length >= 2 && long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var kb)
            ? kb * 1024
            : null;
    }
}
