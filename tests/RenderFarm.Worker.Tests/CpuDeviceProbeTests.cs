using RenderFarm.Worker.Heartbeats;

namespace RenderFarm.Worker.Tests;

public sealed class CpuDeviceProbeTests
{
    [Fact]
    public void Reads_model_name_and_available_memory_from_proc_files()
    {
        using var files = new TempFolder();
        var cpuInfo = Path.Combine(files.Path, "cpuinfo");
        var memInfo = Path.Combine(files.Path, "meminfo");
        File.WriteAllText(cpuInfo, "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Example CPU @ 3.00GHz\n");
        File.WriteAllText(memInfo, "MemTotal:        1024 kB\nMemFree:          100 kB\nMemAvailable:     512 kB\n");

        var report = new CpuDeviceProbe(cpuInfo, memInfo).Probe();

        report.Name.ShouldBe("Example CPU @ 3.00GHz");
        report.MemoryTotalBytes.ShouldBe(1024 * 1024);
        report.MemoryFreeBytes.ShouldBe(512 * 1024);
    }

    [Fact]
    public void Falls_back_to_a_generic_name_and_the_runtime_view_of_memory()
    {
        var report = new CpuDeviceProbe("/nonexistent/cpuinfo", "/nonexistent/meminfo").Probe();

        report.Name.ShouldBe(CpuDeviceProbe.GenericName);
        report.MemoryTotalBytes.ShouldBeGreaterThan(0);
        report.MemoryFreeBytes.ShouldBeInRange(0, report.MemoryTotalBytes);
    }

    [Fact]
    public void This_machine_reports_a_cpu_with_memory()
    {
        var report = new CpuDeviceProbe().Probe();

        report.Name.ShouldNotBeNullOrWhiteSpace();
        report.MemoryTotalBytes.ShouldBeGreaterThan(0);
        report.MemoryFreeBytes.ShouldBeInRange(1, report.MemoryTotalBytes);
    }
}

internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "renderfarm-worker-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder is not a test failure.
        }
    }
}
