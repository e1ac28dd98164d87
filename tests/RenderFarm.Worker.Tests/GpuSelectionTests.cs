using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RenderFarm.Worker.Extensions;
using RenderFarm.Worker.Heartbeats;
using RenderFarm.Worker.Memory;
using RenderFarm.Worker.Models;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// <c>--gpu N</c> on multi-GPU hosts, tested up to the hardware boundary (no GPU here): which card ONNX Runtime's CUDA
/// provider is given and which card NVML / nvidia-smi are asked about, under every form of <c>CUDA_VISIBLE_DEVICES</c>.
/// </summary>
public sealed class GpuSelectionTests
{
    [Fact]
    public void Without_cuda_visible_devices_the_ordinal_is_the_nvml_index()
    {
        var gpu = GpuSelection.Resolve(3, visibleDevices: null);

        gpu.ShouldBe(new GpuSelection(3, 3, null));
        gpu.SmiId.ShouldBe("3");
    }

    [Fact]
    public void An_index_list_maps_the_ordinal_to_the_listed_card()
    {
        var gpu = GpuSelection.Resolve(1, "2, 3");

        gpu.CudaOrdinal.ShouldBe(1);
        gpu.NvmlIndex.ShouldBe(3);
        gpu.SmiId.ShouldBe("3");
    }

    [Fact]
    public void A_uuid_list_asks_nvml_for_the_card_by_its_uuid()
    {
        var gpu = GpuSelection.Resolve(1, "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6,GPU-0d4c3a1b-1111-2222-3333-444455556666");

        gpu.ShouldBe(new GpuSelection(1, null, "GPU-0d4c3a1b-1111-2222-3333-444455556666"));
        gpu.SmiId.ShouldBe("GPU-0d4c3a1b-1111-2222-3333-444455556666");
        gpu.IndexOrderMayDiffer(deviceOrder: null).ShouldBeFalse();
    }

    [Fact]
    public void An_unreadable_entry_ends_the_visible_list_as_cuda_reads_it()
    {
        GpuSelection.Visible("0,2,none,1").ShouldBe(["0", "2"]);
        GpuSelection.Resolve(1, "0,2,none,1").NvmlIndex.ShouldBe(2);

        var error = Should.Throw<ArgumentException>(() => GpuSelection.Resolve(2, "0,2,none,1"));
        error.Message.ShouldContain("leaves 2 GPU(s) (--gpu 0 to 1)");
    }

    [Fact]
    public void An_empty_cuda_visible_devices_hides_every_gpu()
    {
        Should.Throw<ArgumentException>(() => GpuSelection.Resolve(0, "")).Message.ShouldContain("hides every GPU");
    }

    [Fact]
    public void A_negative_gpu_is_refused() =>
        Should.Throw<ArgumentException>(() => GpuSelection.Resolve(-1, null)).Message.ShouldContain("numbered from 0");

    [Fact]
    public void Indices_agree_with_nvml_only_in_pci_bus_order()
    {
        var gpu = GpuSelection.Resolve(0, "1");

        gpu.IndexOrderMayDiffer(deviceOrder: null).ShouldBeTrue();
        gpu.IndexOrderMayDiffer("FASTEST_FIRST").ShouldBeTrue();
        gpu.IndexOrderMayDiffer("PCI_BUS_ID").ShouldBeFalse();
    }

    [Fact]
    public void The_gpu_switch_reaches_the_cuda_provider_options_of_the_engine()
    {
        var configuration = new ConfigurationBuilder()
            .AddCommandLine(["--gpu", "2"], WorkerExtensions.CommandLineSwitches())
            .Build();
        var options = Options.Create(configuration.GetSection(WorkerOptions.SectionName).Get<WorkerOptions>()!);
        options.Value.Gpu.ShouldBe(2);

        var renderer = new EngineItemRenderer(new ModelCatalog(options), options,
            new WorkerMemory(options, new CpuDeviceProbe(), NullLogger<WorkerMemory>.Instance), NullLogger<EngineItemRenderer>.Instance);

        renderer.Execution.CudaDeviceId.ShouldBe(2);
    }

    [Fact]
    public void The_nvidia_smi_fallback_asks_for_the_selected_card()
    {
        var scratch = Directory.CreateTempSubdirectory("renderfarm-gpu-").FullName;
        try
        {
            // A stand-in nvidia-smi that answers only for --id=GPU-b (the second visible card).
            var fake = Path.Combine(scratch, "fake-smi");
            File.WriteAllText(fake, "#!/bin/sh\ncase \"$*\" in *--id=GPU-b*) echo 'NVIDIA L4, 23034, 22000, 550.54.15, 8.9';; *) echo 'No devices were found' >&2; exit 6;; esac\n");
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            var probe = NvidiaSmiDeviceProbe.TryCreate(GpuSelection.Resolve(1, "GPU-a,GPU-b"), out var reason, fake);

            reason.ShouldBeEmpty();
            probe.ShouldNotBeNull().Probe().Name.ShouldBe("NVIDIA L4");
            NvidiaSmiDeviceProbe.TryCreate(GpuSelection.Resolve(0, "GPU-a,GPU-b"), out var other, fake).ShouldBeNull();
            other.ShouldContain("No devices were found");
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }
}
