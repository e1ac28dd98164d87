using System.Runtime.InteropServices;
using System.Text;

namespace RenderFarm.Worker.Heartbeats;

/// <summary>
/// An NVIDIA GPU through NVML, the library behind nvidia-smi. No maintained .NET wrapper is served here
/// (environment.md), and we need five functions, so they are bound by hand; the library is loaded with
/// <see cref="NativeLibrary.TryLoad(string, out IntPtr)"/> so a machine without a driver simply gets no probe.
/// </summary>
public sealed unsafe class NvmlDeviceProbe : IDeviceProbe, IGpuSensors, IDisposable
{
    private const int Success = 0;
    private const int NameBufferSize = 96; // NVML_DEVICE_NAME_V2_BUFFER_SIZE
    private const int DriverBufferSize = 80; // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE
    private const int TemperatureGpu = 0; // NVML_TEMPERATURE_GPU

    private static readonly string[] LibraryNames = ["libnvidia-ml.so.1", "libnvidia-ml.so", "nvml.dll"];

    private readonly IntPtr _library;
    private readonly IntPtr _device;
    private readonly delegate* unmanaged<IntPtr, NvmlMemory*, int> _getMemoryInfo;
    private readonly delegate* unmanaged<int> _shutdown;
    private readonly Sensors _sensors;
    private readonly string _name;
    private int _disposed;

    private NvmlDeviceProbe(IntPtr library, IntPtr device, string name, string driver, string computeCapability,
        delegate* unmanaged<IntPtr, NvmlMemory*, int> getMemoryInfo, delegate* unmanaged<int> shutdown, Sensors sensors)
    {
        _sensors = sensors;
        _library = library;
        _device = device;
        _name = name;
        Driver = driver;
        ComputeCapability = computeCapability;
        _getMemoryInfo = getMemoryInfo;
        _shutdown = shutdown;
    }

    public string Driver { get; }
    /// <summary>e.g. <c>9.0</c> for Hopper; decides which kernels (and fp16/bf16 paths) the CUDA provider can use.</summary>
    public string ComputeCapability { get; }

    /// <summary>Opens the card with NVML index <paramref name="index"/>, or returns null with the reason when NVML or the GPU is not there.</summary>
    public static NvmlDeviceProbe? TryCreate(int index, out string reason) => TryCreate(new GpuSelection(index, index, null), out reason);

    /// <summary>
    /// Opens the card <paramref name="gpu"/> names (by UUID when it has one, else by NVML index), or returns null with
    /// the reason when NVML or the GPU is not there.
    /// </summary>
    public static NvmlDeviceProbe? TryCreate(GpuSelection gpu, out string reason)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        IntPtr library = IntPtr.Zero;
        if (!LibraryNames.Any(n => NativeLibrary.TryLoad(n, out library)))
        {
            reason = "NVML (libnvidia-ml.so.1) is not installed: no NVIDIA driver on this machine.";
            return null;
        }

        var init = (delegate* unmanaged<int>)Export(library, "nvmlInit_v2");
        var shutdown = (delegate* unmanaged<int>)Export(library, "nvmlShutdown");
        var getCount = (delegate* unmanaged<uint*, int>)Export(library, "nvmlDeviceGetCount_v2");
        var getHandle = (delegate* unmanaged<uint, IntPtr*, int>)Export(library, "nvmlDeviceGetHandleByIndex_v2");
        var getHandleByUuid = (delegate* unmanaged<byte*, IntPtr*, int>)Export(library, "nvmlDeviceGetHandleByUUID");
        var getName = (delegate* unmanaged<IntPtr, byte*, uint, int>)Export(library, "nvmlDeviceGetName");
        var getMemory = (delegate* unmanaged<IntPtr, NvmlMemory*, int>)Export(library, "nvmlDeviceGetMemoryInfo");
        var getDriver = (delegate* unmanaged<byte*, uint, int>)Export(library, "nvmlSystemGetDriverVersion");
        var getCapability = (delegate* unmanaged<IntPtr, int*, int*, int>)Export(library, "nvmlDeviceGetCudaComputeCapability");
        if (init is null || shutdown is null || getCount is null || getHandle is null || getName is null || getMemory is null)
        {
            NativeLibrary.Free(library);
            reason = "NVML is too old: it lacks the _v2 entry points (driver 450 or later is needed).";
            return null;
        }

        var status = init();
        if (status != Success)
        {
            NativeLibrary.Free(library);
            reason = $"nvmlInit_v2 failed with NVML error {status} (driver not loaded, or no permission on /dev/nvidia*).";
            return null;
        }

        uint count = 0;
        IntPtr device = IntPtr.Zero;
        var found = gpu.Uuid is { } uuid
            ? getHandleByUuid is not null && HandleByUuid(getHandleByUuid, uuid, &device)
            : getCount(&count) == Success && gpu.NvmlIndex is { } index && index >= 0 && index < count && getHandle((uint)index, &device) == Success;
        if (!found)
        {
            shutdown();
            NativeLibrary.Free(library);
            reason = gpu.Uuid is null
                ? $"{gpu} is not there (NVML sees {count} device(s))."
                : $"{gpu} is not there (NVML knows no device by that UUID; a shortened UUID works for CUDA but not for NVML: give the full one).";
            return null;
        }

        var nameBuffer = stackalloc byte[NameBufferSize];
        var name = getName(device, nameBuffer, NameBufferSize) == Success ? Text(nameBuffer, NameBufferSize) : "";
        var driverBuffer = stackalloc byte[DriverBufferSize];
        var driver = getDriver is not null && getDriver(driverBuffer, DriverBufferSize) == Success ? Text(driverBuffer, DriverBufferSize) : "";
        var capability = "";
        int major, minor;
        if (getCapability is not null && getCapability(device, &major, &minor) == Success)
        {
            capability = $"{major}.{minor}";
        }

        // Optional: a board or driver without one of these still renders; its gauge is then simply absent.
        var sensors = new Sensors(
            (delegate* unmanaged<IntPtr, NvmlUtilization*, int>)Export(library, "nvmlDeviceGetUtilizationRates"),
            (delegate* unmanaged<IntPtr, int, uint*, int>)Export(library, "nvmlDeviceGetTemperature"),
            (delegate* unmanaged<IntPtr, uint*, int>)Export(library, "nvmlDeviceGetPowerUsage"));
        reason = "";
        return new NvmlDeviceProbe(library, device, name.Length > 0 ? name : "NVIDIA GPU", driver, capability, getMemory, shutdown, sensors);
    }

    public DeviceReport Probe()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        NvmlMemory memory;
        var status = _getMemoryInfo(_device, &memory);
        if (status != Success)
        {
            throw new InvalidOperationException($"nvmlDeviceGetMemoryInfo failed with NVML error {status}.");
        }

        return new DeviceReport(_name, checked((long)memory.Total), checked((long)memory.Free));
    }

    public GpuReading ReadSensors()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        uint? utilization = null, temperature = null, power = null;
        NvmlUtilization rates;
        if (_sensors.GetUtilization is not null && _sensors.GetUtilization(_device, &rates) == Success)
        {
            utilization = rates.Gpu;
        }

        uint value;
        if (_sensors.GetTemperature is not null && _sensors.GetTemperature(_device, TemperatureGpu, &value) == Success)
        {
            temperature = value;
        }

        if (_sensors.GetPowerUsage is not null && _sensors.GetPowerUsage(_device, &value) == Success)
        {
            power = value;
        }

        return GpuReading.FromNvml(utilization, temperature, power);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _shutdown();
            NativeLibrary.Free(_library);
        }
    }

    private static bool HandleByUuid(delegate* unmanaged<byte*, IntPtr*, int> getHandleByUuid, string uuid, IntPtr* device)
    {
        var bytes = Encoding.ASCII.GetBytes(uuid + "\0");
        fixed (byte* text = bytes)
        {
            return getHandleByUuid(text, device) == Success;
        }
    }

    private static IntPtr Export(IntPtr library, string name) =>
        NativeLibrary.TryGetExport(library, name, out var address) ? address : IntPtr.Zero;

    /// <summary>A NUL-terminated string NVML wrote into a fixed buffer.</summary>
    private static string Text(byte* buffer, int size)
    {
        var bytes = new ReadOnlySpan<byte>(buffer, size);
        var end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end >= 0 ? bytes[..end] : bytes);
    }

    private readonly struct Sensors(
        delegate* unmanaged<IntPtr, NvmlUtilization*, int> getUtilization,
        delegate* unmanaged<IntPtr, int, uint*, int> getTemperature,
        delegate* unmanaged<IntPtr, uint*, int> getPowerUsage)
    {
        public readonly delegate* unmanaged<IntPtr, NvmlUtilization*, int> GetUtilization = getUtilization;
        public readonly delegate* unmanaged<IntPtr, int, uint*, int> GetTemperature = getTemperature;
        public readonly delegate* unmanaged<IntPtr, uint*, int> GetPowerUsage = getPowerUsage;
    }

    /// <summary>nvmlUtilization_t: percent of the last sample period the GPU and its memory were busy.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlUtilization
    {
        public uint Gpu;
        public uint Memory;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlMemory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }
}
