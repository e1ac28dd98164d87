using System.Diagnostics;
using System.Globalization;

namespace RenderFarm.Worker.Heartbeats;

/// <summary>
/// The fallback when NVML cannot be loaded in-process (e.g. a container that mounts only the nvidia-smi binary):
/// one <c>nvidia-smi --query-gpu</c> per probe. Slower (a process per heartbeat) but still exact.
/// </summary>
public sealed class NvidiaSmiDeviceProbe(string executable, string id) : IDeviceProbe
{
    public const string Query = "name,memory.total,memory.free,driver_version,compute_cap";
    private const long MiB = 1L << 20;

    /// <summary>Runs nvidia-smi once; null with the reason when it is missing or lists no GPU <paramref name="index"/>.</summary>
    public static NvidiaSmiDeviceProbe? TryCreate(int index, out string reason, string executable = "nvidia-smi") =>
        TryCreate(new GpuSelection(index, index, null), out reason, executable);

    /// <summary>Runs nvidia-smi once for the card <paramref name="gpu"/> names (its UUID or NVML index); null with the reason when it is missing or lists no such GPU.</summary>
    public static NvidiaSmiDeviceProbe? TryCreate(GpuSelection gpu, out string reason, string executable = "nvidia-smi")
    {
        ArgumentNullException.ThrowIfNull(gpu);
        var probe = new NvidiaSmiDeviceProbe(executable, gpu.SmiId);
        try
        {
            probe.Probe();
            reason = "";
            return probe;
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or FormatException)
        {
            reason = $"nvidia-smi: {ex.Message}";
            return null;
        }
    }

    public DeviceReport Probe()
    {
        using var process = Process.Start(new ProcessStartInfo(executable, $"--query-gpu={Query} --format=csv,noheader,nounits --id={id}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        }) ?? throw new InvalidOperationException($"could not start '{executable}'.");
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{executable}' exited with {process.ExitCode}: {process.StandardError.ReadToEnd().Trim()}");
        }

        return Parse(output).Report;
    }

    /// <summary>Parses one CSV line of the query above (MiB, no units, no header).</summary>
    public static (DeviceReport Report, string Driver, string ComputeCapability) Parse(string csvLine)
    {
        var line = csvLine.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault()
            ?? throw new FormatException("nvidia-smi printed nothing: no GPU at that index.");
        var fields = line.Split(',', StringSplitOptions.TrimEntries);
        if (fields.Length < 3
            || !long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var totalMiB)
            || !long.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var freeMiB))
        {
            throw new FormatException($"unexpected nvidia-smi output '{line}'; expected '{Query}' as CSV without units.");
        }

        return (new DeviceReport(fields[0], totalMiB * MiB, freeMiB * MiB),
            fields.Length > 3 ? fields[3] : "",
            fields.Length > 4 ? fields[4] : "");
    }
}
