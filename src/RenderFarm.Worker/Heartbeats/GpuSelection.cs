using System.Globalization;

namespace RenderFarm.Worker.Heartbeats;

/// <summary>
/// The GPU a worker renders on, named twice: as the CUDA ordinal ONNX Runtime's <c>device_id</c> takes (counted among
/// the devices <c>CUDA_VISIBLE_DEVICES</c> leaves visible) and as the NVML device that is the same card (NVML ignores
/// <c>CUDA_VISIBLE_DEVICES</c> and counts every GPU in the machine), so the memory the worker reports is the memory of
/// the card it renders on.
/// </summary>
/// <param name="CudaOrdinal">ONNX Runtime's CUDA <c>device_id</c>: <c>--gpu N</c> as given.</param>
/// <param name="NvmlIndex">The card's NVML index, when it is known by index.</param>
/// <param name="Uuid">The card's UUID (<c>GPU-…</c> or <c>MIG-…</c>), when <c>CUDA_VISIBLE_DEVICES</c> names it so.</param>
public sealed record GpuSelection(int CudaOrdinal, int? NvmlIndex, string? Uuid)
{
    public const string VisibleDevicesVariable = "CUDA_VISIBLE_DEVICES";
    public const string DeviceOrderVariable = "CUDA_DEVICE_ORDER";

    /// <summary>What <c>nvidia-smi --id=</c> takes for this card: its UUID or its index.</summary>
    public string SmiId => Uuid ?? NvmlIndex!.Value.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The card <c>--gpu <paramref name="gpu"/></c> means under <paramref name="visibleDevices"/> (the value of
    /// <c>CUDA_VISIBLE_DEVICES</c>; null when unset). Throws <see cref="ArgumentException"/> naming the fix when that
    /// ordinal is not visible.
    /// </summary>
    public static GpuSelection Resolve(int gpu, string? visibleDevices)
    {
        if (gpu < 0)
        {
            throw new ArgumentException($"GPU {gpu} does not exist: GPUs are numbered from 0.", nameof(gpu));
        }

        if (visibleDevices is null)
        {
            return new GpuSelection(gpu, gpu, null);
        }

        var visible = Visible(visibleDevices);
        if (gpu >= visible.Count)
        {
            throw new ArgumentException(visible.Count == 0
                ? $"GPU {gpu} is not visible: {VisibleDevicesVariable}='{visibleDevices}' hides every GPU from this process."
                : $"GPU {gpu} is not visible: {VisibleDevicesVariable}='{visibleDevices}' leaves {visible.Count} GPU(s) (--gpu 0 to {visible.Count - 1}).",
                nameof(gpu));
        }

        var entry = visible[gpu];
        return int.TryParse(entry, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            ? new GpuSelection(gpu, index, null)
            : new GpuSelection(gpu, null, entry);
    }

    /// <summary>
    /// The visible devices in CUDA's order, read as the CUDA runtime reads the variable: comma-separated indices or
    /// UUIDs (<c>GPU-…</c>, <c>MIG-…</c>), and an entry it cannot read ends the list (the devices before it stay visible).
    /// </summary>
    public static IReadOnlyList<string> Visible(string visibleDevices)
    {
        ArgumentNullException.ThrowIfNull(visibleDevices);
        var result = new List<string>();
        foreach (var raw in visibleDevices.Split(','))
        {
            var entry = raw.Trim();
            var valid = int.TryParse(entry, NumberStyles.None, CultureInfo.InvariantCulture, out _)
                || entry.StartsWith("GPU-", StringComparison.Ordinal)
                || entry.StartsWith("MIG-", StringComparison.Ordinal);
            if (!valid)
            {
                break;
            }

            result.Add(entry);
        }

        return result;
    }

    /// <summary>The selection for this process's environment.</summary>
    public static GpuSelection FromEnvironment(int gpu) => Resolve(gpu, Environment.GetEnvironmentVariable(VisibleDevicesVariable));

    /// <summary>
    /// An index (in <c>CUDA_VISIBLE_DEVICES</c> or implied when it is unset) counts CUDA's devices in CUDA's order,
    /// which is NVML's (PCI bus) order only under <c>CUDA_DEVICE_ORDER=PCI_BUS_ID</c>: CUDA's default makes the card it
    /// guesses fastest device 0 and leaves the rest unspecified. A UUID is exact under either order.
    /// </summary>
    public bool IndexOrderMayDiffer(string? deviceOrder) =>
        Uuid is null && !string.Equals(deviceOrder, "PCI_BUS_ID", StringComparison.Ordinal);

    public override string ToString() =>
        Uuid is null ? $"GPU {CudaOrdinal} (NVML index {NvmlIndex})" : $"GPU {CudaOrdinal} ({Uuid})";
}
