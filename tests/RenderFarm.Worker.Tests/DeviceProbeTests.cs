using Microsoft.Extensions.Logging.Abstractions;
using RenderFarm.Diffusion.Models;
using RenderFarm.Worker.Heartbeats;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// The GPU probes, tested up to the hardware boundary: this machine has no NVIDIA driver, so NVML must decline with a
/// reason, and nvidia-smi's process path runs against a stand-in executable that prints what the real one prints.
/// </summary>
public sealed class DeviceProbeTests : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("renderfarm-probe-").FullName;

    [Fact]
    public void Nvidia_smi_csv_is_parsed_to_bytes_driver_and_compute_capability()
    {
        var (report, driver, capability) = NvidiaSmiDeviceProbe.Parse("NVIDIA H100 80GB HBM3, 81559, 80800, 550.54.15, 9.0\n");

        report.ShouldBe(new DeviceReport("NVIDIA H100 80GB HBM3", 81559L << 20, 80800L << 20));
        driver.ShouldBe("550.54.15");
        capability.ShouldBe("9.0");
    }

    [Theory]
    [InlineData("")]
    [InlineData("NVIDIA GeForce RTX 3060, [N/A], 100")]
    [InlineData("just a name")]
    public void Unexpected_nvidia_smi_output_is_a_format_error_naming_the_query(string output) =>
        Should.Throw<FormatException>(() => NvidiaSmiDeviceProbe.Parse(output));

    [Fact]
    public void The_nvidia_smi_probe_runs_the_executable_per_probe()
    {
        var fake = Script("fake-smi", "echo 'NVIDIA GeForce RTX 3060, 12288, 11000, 535.104.05, 8.6'");

        var probe = NvidiaSmiDeviceProbe.TryCreate(0, out var reason, fake);

        reason.ShouldBeEmpty();
        probe.ShouldNotBeNull().Probe().ShouldBe(new DeviceReport("NVIDIA GeForce RTX 3060", 12288L << 20, 11000L << 20));
    }

    [Fact]
    public void A_failing_nvidia_smi_declines_with_its_message()
    {
        var fake = Script("broken-smi", "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2; exit 9");

        NvidiaSmiDeviceProbe.TryCreate(0, out var reason, fake).ShouldBeNull();
        reason.ShouldContain("could not communicate");
    }

    [Fact]
    public void A_missing_nvidia_smi_declines()
    {
        NvidiaSmiDeviceProbe.TryCreate(0, out var reason, Path.Combine(_scratch, "no-such-smi")).ShouldBeNull();
        reason.ShouldStartWith("nvidia-smi:");
    }

    [Fact]
    public void Nvml_reports_a_gpu_where_a_driver_exists_and_declines_with_a_reason_elsewhere()
    {
        using var probe = NvmlDeviceProbe.TryCreate(0, out var reason);

        if (probe is null)
        {
            reason.ShouldNotBeNullOrWhiteSpace();
            File.Exists("/dev/nvidiactl").ShouldBeFalse($"a driver is present but NVML declined: {reason}");
        }
        else
        {
            var report = probe.Probe();
            report.MemoryTotalBytes.ShouldBeGreaterThan(0);
            report.MemoryFreeBytes.ShouldBeInRange(0, report.MemoryTotalBytes);
            // Every data-centre card NVML supports reports its temperature; utilisation and power vary by board.
            var sensors = probe.ReadSensors();
            sensors.TemperatureCelsius.ShouldNotBeNull();
            sensors.TemperatureCelsius.Value.ShouldBeInRange(1, 120);
            if (sensors.Utilization is { } utilization)
            {
                utilization.ShouldBeInRange(0, 1);
            }
        }
    }

    [Fact]
    public void Without_cuda_in_the_runtime_the_worker_reports_the_cpu()
    {
        DeviceProbes.Create(ExecutionProviderPreference.Cpu, 0, NullLogger.Instance).ShouldBeOfType<CpuDeviceProbe>();
        if (!ExecutionProviders.CudaAvailable)
        {
            DeviceProbes.Create(ExecutionProviderPreference.Auto, 0, NullLogger.Instance).ShouldBeOfType<CpuDeviceProbe>();
        }
    }

    private string Script(string name, string body)
    {
        var path = Path.Combine(_scratch, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return path;
    }

    public void Dispose() => Directory.Delete(_scratch, recursive: true);
}
